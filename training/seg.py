"""Train EfficientViT-Seg: `accelerate launch training/seg.py [--config configs/train/X.yaml] [--field value ...]`.

With no arguments it trains a B0-sized model from scratch on the built-in synthetic dataset (offline).
`python training/seg.py --help` lists every field.

Ctrl-C (or SIGTERM) finishes the current step, saves a checkpoint and prints the command that resumes the run:
`python training/seg.py --output_dir DIR --resume_from_checkpoint latest` (the run's saved arguments are restored).
"""

import sys

from evit_hf.training.segmentation import main

if __name__ == "__main__":
    sys.exit(main())
