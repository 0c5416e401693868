"""What evit-hf is compared against: the original implementation, the peer models and reference weights.

`original` builds the original mit-han-lab models without their training stack (with `placeholders` for the
packages they import but never call); `peers` builds the transformers peers of the benchmarks (SegFormer,
SAM ViT-B, Swin2SR); `randomize` gives any model deterministic weights of realistic scale. Benchmarks,
export and tests import these; nothing here imports them back.
"""

from __future__ import annotations

from .randomize import randomize_

__all__ = ["randomize_"]
