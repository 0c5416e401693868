"""The super-resolution checkpoint embedded in the package, and loading SR models by name.

Owns where the shipped x2 checkpoint lives (`src/evit_hf/weights/efficientvit-sr-x2/`, package data written
by the SR training run), so the trainer, `evit-hf upscale` and the demo agree on it, and
`load_sr_model`, which resolves a folder, Hub id or preset name to a model.
"""

from __future__ import annotations

import warnings
from pathlib import Path

EMBEDDED_SR_NAME = "efficientvit-sr-x2"
# Files a usable embedded checkpoint folder has (what `save_pretrained_with_code` writes).
_REQUIRED_FILES = ("config.json", "model.safetensors")


def embedded_sr_checkpoint() -> Path:
    """Where the embedded x2 checkpoint folder lives (it may not exist yet: see `has_embedded_sr_checkpoint`)."""
    return Path(__file__).resolve().parent / "weights" / EMBEDDED_SR_NAME


def has_embedded_sr_checkpoint() -> bool:
    """Whether the embedded checkpoint folder is there with its config and weights."""
    folder = embedded_sr_checkpoint()
    return all((folder / name).is_file() for name in _REQUIRED_FILES)


def require_embedded_sr_checkpoint() -> Path:
    """The embedded checkpoint folder, or a `ValueError` that says it is missing and what to pass instead."""
    if not has_embedded_sr_checkpoint():
        raise ValueError(
            f"the embedded super-resolution checkpoint is missing ({embedded_sr_checkpoint()} has no "
            f"{' / '.join(_REQUIRED_FILES)}; the SR training run produces it). Pass --model with a saved folder, "
            f"a Hub id, or a preset name such as sr-light-x2 (random weights)."
        )
    return embedded_sr_checkpoint()


def load_sr_model(name: str | Path | None = None, scale: int | None = None):
    """(model, image processor) for a saved folder / Hub id, a preset name (random weights, with a warning),
    or the embedded checkpoint when `name` is None.

    `scale` checks the model's factor; with a preset family name (`"sr-light"`) it picks `sr-light-x{scale}`.
    """
    from .models.efficientvit import (
        SR_PRESETS,
        EfficientViTForImageSuperResolution,
        EfficientViTSRConfig,
        EfficientViTSRImageProcessor,
    )

    if EfficientViTSRImageProcessor is None:
        raise RuntimeError("Super-resolution image processing needs transformers >= 5 (PIL image processors).")
    if name is None:
        name = require_embedded_sr_checkpoint()
    name = str(name)
    if scale is not None and f"{name}-x{scale}" in SR_PRESETS:
        name = f"{name}-x{scale}"
    if name in SR_PRESETS:
        warnings.warn(
            f"{name!r} is a preset name: the model has random weights (an untrained model returns the bicubic "
            f"upsampling). Pass a trained folder or Hub id for real super-resolution.",
            UserWarning,
            stacklevel=2,
        )
        model = EfficientViTForImageSuperResolution(EfficientViTSRConfig.from_preset(name))
        processor = EfficientViTSRImageProcessor()
    else:
        from transformers import AutoImageProcessor, AutoModelForImageToImage

        if not Path(name).exists() and name.startswith("sr-"):
            raise ValueError(f"Unknown SR preset {name!r}; known presets: {', '.join(sorted(SR_PRESETS))}.")
        model = AutoModelForImageToImage.from_pretrained(name)
        try:
            processor = AutoImageProcessor.from_pretrained(name)
        except (OSError, ValueError):
            processor = None
        if not hasattr(processor, "post_process_super_resolution"):
            processor = EfficientViTSRImageProcessor()
    model_scale = getattr(model.config, "upscale", None)
    if scale is not None and model_scale != scale:
        raise ValueError(f"the model {name!r} upscales x{model_scale}, not x{scale}.")
    return model.eval(), processor


__all__ = [
    "EMBEDDED_SR_NAME",
    "embedded_sr_checkpoint",
    "has_embedded_sr_checkpoint",
    "require_embedded_sr_checkpoint",
    "load_sr_model",
]
