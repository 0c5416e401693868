"""An original (or timm) checkpoint file -> a Hub-ready folder: `convert_to_folder`.

Owns the whole conversion of one released variant: strict conversion of the state dict, the processor of the
variant (or, for classifiers, of the resolution the checkpoint was evaluated at) and `save_pretrained_with_code`
(safetensors, config, processor, model code for `trust_remote_code`). `evit-hf convert` and the release
builder call it.
"""

from __future__ import annotations

from pathlib import Path

from .checkpoint import load_checkpoint
from .original import from_original, from_timm, get_variant


def convert_to_folder(
    variant: str, checkpoint: Path, out: Path, timm: bool = False, resolution: int | None = None
) -> Path:
    """Convert `checkpoint` of `variant` and save it with its processor and code; returns the folder.

    `resolution` (classifiers only) is the resolution the checkpoint was evaluated at: it sets the
    processor's resize / crop and `config.image_size`.
    """
    from ..hub_utils import save_pretrained_with_code

    spec = get_variant(variant)
    if resolution is not None and not variant.startswith("cls-"):
        raise ValueError(f"--resolution applies to classification variants only, not {variant!r}.")
    state_dict = load_checkpoint(checkpoint)
    model = (from_timm if timm else from_original)(state_dict, variant)
    if resolution is not None:
        from ..models.efficientvit import EfficientViTImageProcessor

        model.config.image_size = resolution
        processor = EfficientViTImageProcessor.for_variant(variant, resolution=resolution)
    else:
        processor = spec.build_processor() if spec.build_processor else None
    return save_pretrained_with_code(model, out, image_processor=processor)


__all__ = ["convert_to_folder"]
