"""Train EfficientViT super-resolution: `accelerate launch training/sr.py [--config RECIPE.yaml] [--field value ...]`.

With no arguments it trains the light x2 model on the photographs scikit-image ships (offline).
`python training/sr.py --help` lists every field.

Ctrl-C (or SIGTERM) finishes the current step, saves a checkpoint and prints the command that resumes the run:
`python training/sr.py --output_dir DIR --resume_from_checkpoint latest` (the run's saved arguments are restored).
"""

import sys

from evit_hf.training.super_resolution import main

if __name__ == "__main__":
    sys.exit(main())
