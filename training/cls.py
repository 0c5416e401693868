"""Train an EfficientViT classifier: `accelerate launch training/cls.py [--config RECIPE.yaml] [--field value ...]`.

With no arguments it trains a B0 classifier from scratch on the built-in synthetic shapes (offline).
`python training/cls.py --help` lists every field.
"""

import sys

from evit_hf.training.classification import main

if __name__ == "__main__":
    sys.exit(main())
