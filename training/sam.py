"""Train EfficientViT-SAM: `accelerate launch training/sam.py --stage distill|finetune [--field value ...]`.

With no arguments it fine-tunes a small EfficientViT-SAM from scratch on the built-in synthetic SA-1B-format
set (offline). `--stage distill --teacher_model M` distills the image encoder from a SAM teacher.
`python training/sam.py --help` lists every field.

Ctrl-C (or SIGTERM) finishes the current step, saves a checkpoint and prints the command that resumes the run:
`python training/sam.py --output_dir DIR --resume_from_checkpoint latest` (the run's saved arguments are restored).
"""

import sys

from evit_hf.training.sam import main

if __name__ == "__main__":
    sys.exit(main())
