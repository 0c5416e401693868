"""An original (or timm) checkpoint file -> a model and its processor (`convert_checkpoint`) -> a Hub-ready
folder (`convert_to_folder`).

Owns the whole conversion of one released variant: strict conversion of the state dict, the processor of the
variant (or, for classifiers, of the resolution the checkpoint was evaluated at) and `save_pretrained_with_code`
(safetensors, config, processor, model code for `trust_remote_code`). `evit-hf convert`, the release builder
and the cache of released checkpoints (`evit_hf.hub`) call it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .checkpoint import load_checkpoint
from .original import from_original, from_timm, get_variant


def convert_checkpoint(variant: str, checkpoint: Path | Mapping, timm: bool = False, resolution: int | None = None):
    """(eval-mode model, image processor) of `checkpoint` (a file, or its state dict) of `variant`, converted
    strictly.

    `resolution` (classifiers only) is the resolution the checkpoint was evaluated at: it sets the
    processor's resize / crop and `config.image_size`.
    """
    spec = get_variant(variant)
    if resolution is not None and not variant.startswith("cls-"):
        raise ValueError(f"--resolution applies to classification variants only, not {variant!r}.")
    from ..models.efficientvit import EfficientViTImageProcessor

    state_dict = checkpoint if isinstance(checkpoint, Mapping) else load_checkpoint(checkpoint)
    model = (from_timm if timm else from_original)(state_dict, variant)
    if resolution is not None:
        model.config.image_size = resolution
    if EfficientViTImageProcessor is None:  # transformers < 5 has no PIL image processors: the folder gets none
        processor = None
    elif resolution is not None:
        processor = EfficientViTImageProcessor.for_variant(variant, resolution=resolution)
    else:
        processor = spec.build_processor() if spec.build_processor else None
    return model, processor


def convert_to_folder(
    variant: str, checkpoint: Path, out: Path, timm: bool = False, resolution: int | None = None
) -> Path:
    """Convert `checkpoint` of `variant` (`convert_checkpoint`) and save it with its processor and code; returns
    the folder."""
    from ..hub_utils import save_pretrained_with_code

    model, processor = convert_checkpoint(variant, checkpoint, timm, resolution)
    return save_pretrained_with_code(model, out, image_processor=processor)


__all__ = ["convert_checkpoint", "convert_to_folder"]
