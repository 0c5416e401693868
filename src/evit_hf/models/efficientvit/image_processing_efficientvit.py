"""Classification preprocessing of the original EfficientViT evaluation, on the PIL backend.

Owns `EfficientViTImageProcessor`: bicubic resize of the shorter side to `ceil(resolution / crop_pct)`,
center crop to `resolution`, rescale to [0, 1], ImageNet mean/std. The crop ratio is 0.95 for B0/B1 and
1.0 for the other variants, as in the original evaluation script. PIL-based: no torchvision needed.
"""

from __future__ import annotations

import math

from transformers.image_processing_backends import PilBackend
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, PILImageResampling

# crop ratio of the original evaluation (assets/eval_efficientvit_cls_model.sh)
CROP_PCT = {"b0": 0.95, "b1": 0.95, "b2": 1.0, "b3": 1.0, "l1": 1.0, "l2": 1.0, "l3": 1.0}


class EfficientViTImageProcessor(PilBackend):
    r"""
    Image processor for EfficientViT classifiers.

    Defaults reproduce the original 224-pixel evaluation of B2/B3/L models (crop ratio 1.0); use
    `EfficientViTImageProcessor.for_variant("b1", resolution=256)` for another variant or resolution.
    Images may be PIL images, numpy arrays or tensors; grayscale and RGBA inputs are converted to RGB.
    """

    # `save_pretrained` writes the `auto_map` and this file (with the files it imports) into the folder, so
    # that `AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)` works where evit-hf is not installed.
    _auto_class = "AutoImageProcessor"

    model_input_names = ["pixel_values"]
    resample = PILImageResampling.BICUBIC
    image_mean = list(IMAGENET_DEFAULT_MEAN)
    image_std = list(IMAGENET_DEFAULT_STD)
    size = {"shortest_edge": 224}
    crop_size = {"height": 224, "width": 224}
    default_to_square = False
    do_resize = True
    do_center_crop = True
    do_rescale = True
    do_normalize = True
    do_convert_rgb = True

    @classmethod
    def for_resolution(cls, resolution: int = 224, crop_pct: float = 1.0, **kwargs) -> EfficientViTImageProcessor:
        """The original evaluation at `resolution`: bicubic resize of the short side to
        `ceil(resolution / crop_pct)` (as the original's torchvision pipeline), center crop to `resolution`."""
        if resolution <= 0:
            raise ValueError(f"`resolution` must be positive, got {resolution}.")
        if not 0 < crop_pct <= 1:
            raise ValueError(f"`crop_pct` must be in (0, 1], got {crop_pct}.")
        return cls(size={"shortest_edge": math.ceil(resolution / crop_pct)},
                   crop_size={"height": resolution, "width": resolution}, **kwargs)

    @classmethod
    def for_variant(cls, variant: str = "b1", resolution: int = 224, **kwargs) -> EfficientViTImageProcessor:
        """The original evaluation preprocessing of `variant` (`b0`-`b3`, `l1`-`l3`, or `cls-b1`) at `resolution`."""
        name = variant.removeprefix("cls-")
        if name not in CROP_PCT:
            raise ValueError(f"Unknown classification variant {variant!r}; expected one of {sorted(CROP_PCT)}.")
        return cls.for_resolution(resolution, CROP_PCT[name], **kwargs)


__all__ = ["EfficientViTImageProcessor", "CROP_PCT"]
