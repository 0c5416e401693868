"""Train EfficientViT super-resolution: `accelerate launch training/sr.py [--config RECIPE.yaml] [--field value ...]`.

With no arguments it trains the light x2 model on the photographs scikit-image ships (offline).
`python training/sr.py --help` lists every field.
"""

import sys

from evit_hf.training.super_resolution import main

if __name__ == "__main__":
    sys.exit(main())
