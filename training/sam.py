"""Train EfficientViT-SAM: `accelerate launch training/sam.py --stage distill|finetune [--field value ...]`.

With no arguments it fine-tunes a small EfficientViT-SAM from scratch on the built-in synthetic SA-1B-format
set (offline). `--stage distill --teacher_model M` distills the image encoder from a SAM teacher.
`python training/sam.py --help` lists every field.
"""

import sys

from evit_hf.training.sam import main

if __name__ == "__main__":
    sys.exit(main())
