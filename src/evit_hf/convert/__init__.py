"""Conversion of original (mit-han-lab) and timm checkpoints to evit-hf models. Never shipped to the Hub."""

from . import (
    sam,  # noqa: F401  (registers the sam-* variants)
    segmentation,  # noqa: F401  (registers the seg-* variants)
)
from .checkpoint import load_checkpoint, unwrap_state_dict
from .original import (
    VARIANTS,
    Variant,
    from_original,
    from_original_backbone,
    from_timm,
    get_variant,
    register_variant,
)

__all__ = [
    "VARIANTS",
    "Variant",
    "from_original",
    "from_original_backbone",
    "from_timm",
    "get_variant",
    "load_checkpoint",
    "register_variant",
    "unwrap_state_dict",
]
