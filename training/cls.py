"""Train an EfficientViT classifier: `accelerate launch training/cls.py [--config RECIPE.yaml] [--field value ...]`.

With no arguments it trains a B0 classifier from scratch on the built-in synthetic shapes (offline).
`python training/cls.py --help` lists every field.

Ctrl-C (or SIGTERM) finishes the current step, saves a checkpoint and prints the command that resumes the run:
`python training/cls.py --output_dir DIR --resume_from_checkpoint latest` (the run's saved arguments are restored).
"""

import sys

from evit_hf.training.classification import main

if __name__ == "__main__":
    sys.exit(main())
