"""Super-resolution pre- and post-processing on the PIL backend (no torchvision).

Owns `EfficientViTSRImageProcessor`:

- preprocessing: convert to RGB (transparent pixels are composited on white, as transformers'
  `convert_to_rgb` does; 16-bit images are scaled to 8 bits), rescale to [0, 1], no resizing and no
  normalisation (the model subtracts its own mean). With `do_pad` (or `pad_size=N`, Swin2SR's legacy name)
  the bottom and right edges are reflect-padded to a multiple of `size_divisor`; images of different sizes in
  one call are padded to the largest. `original_sizes` records every image's (height, width).
- `post_process_super_resolution`: crops the upscaled padding away and returns PIL images (clamped to
  [0, 1], times 255, rounded to uint8).

Requires transformers >= 5 (PIL backend); importing it on 4.57 raises ImportError.
"""

from __future__ import annotations

import math

import numpy as np
from transformers.image_processing_backends import PilBackend
from transformers.image_processing_utils import BatchFeature
from transformers.processing_utils import ImagesKwargs

from .image_processing_efficientvit_seg import _HIGH_BIT_MODES, _to_uint8, batch_output, sizes_per_image

try:
    import PIL.Image
except ImportError:  # pragma: no cover - the PIL backend requires pillow
    PIL = None


class EfficientViTSRImageProcessorKwargs(ImagesKwargs, total=False):
    r"""
    size_divisor (`int`, *optional*, defaults to `self.size_divisor`):
        With `do_pad`, height and width are reflect-padded (bottom / right) up to a multiple of this.
    """

    size_divisor: int


def _pad_bottom_right(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Reflect-pad a (C, H, W) array at the bottom and right to (C, height, width)."""
    pad_h, pad_w = height - image.shape[-2], width - image.shape[-1]
    if pad_h == 0 and pad_w == 0:
        return image
    # numpy's reflect mode repeats the reflection when the padding is longer than the image.
    return np.pad(image, ((0, 0), (0, pad_h), (0, pad_w)), mode="reflect")


class EfficientViTSRImageProcessor(PilBackend):
    r"""
    Image processor for EfficientViT super-resolution models: RGB in [0, 1], no resizing, no normalisation.

    Args:
        do_pad (`bool`, *optional*, defaults to `False`):
            Reflect-pad the bottom and right edges to a multiple of `size_divisor`. The model takes any size,
            so this is only needed by exported graphs with fixed multiples.
        size_divisor (`int`, *optional*, defaults to 8):
            The multiple used by `do_pad`. `pad_size=N` (Swin2SR's legacy name) sets it and turns `do_pad` on.
    """

    # `save_pretrained` writes the `auto_map` and this file (with the files it imports) into the folder, so
    # that `AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)` works where evit-hf is not installed.
    _auto_class = "AutoImageProcessor"

    valid_kwargs = EfficientViTSRImageProcessorKwargs
    model_input_names = ["pixel_values"]
    do_resize = False
    do_center_crop = False
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = False
    do_convert_rgb = True
    do_pad = False
    size_divisor = 8

    def __init__(self, **kwargs) -> None:
        kwargs = self._pad_size_alias(kwargs)
        super().__init__(**kwargs)

    @staticmethod
    def _pad_size_alias(kwargs: dict) -> dict:
        pad_size = kwargs.get("pad_size")
        if isinstance(pad_size, int) and not isinstance(pad_size, bool):
            kwargs = dict(kwargs)
            kwargs.pop("pad_size")
            kwargs["size_divisor"] = pad_size
            kwargs.setdefault("do_pad", True)
        return kwargs

    def preprocess(self, images, *args, **kwargs) -> BatchFeature:
        """Images (PIL, numpy, torch; one or a list) -> `pixel_values` (batch, 3, H, W) in [0, 1] and
        `original_sizes` (batch, 2)."""
        return super().preprocess(images, *args, **self._pad_size_alias(kwargs))

    def process_image(self, image, do_convert_rgb: bool | None = None, input_data_format=None, **kwargs):
        """One input as a channels-first RGB uint8 array; rejects empty images."""
        if PIL is not None and isinstance(image, PIL.Image.Image):
            if image.width == 0 or image.height == 0:
                raise ValueError(f"Got an empty image of size {image.width}x{image.height}.")
            if do_convert_rgb and image.mode in _HIGH_BIT_MODES:
                # PIL's own RGB conversion clips 16-bit values at 255; rescale to 8 bits instead.
                image = PIL.Image.fromarray(_to_uint8(np.asarray(image)))
        elif isinstance(image, np.ndarray) and image.size == 0:
            raise ValueError(f"Got an empty image of shape {image.shape}.")
        return super().process_image(image, do_convert_rgb=do_convert_rgb, input_data_format=input_data_format,
                                     **kwargs)

    def _preprocess(
        self,
        images: list[np.ndarray],
        do_rescale: bool,
        rescale_factor: float,
        do_pad: bool | None,
        return_tensors=None,
        size_divisor: int | None = None,
        **kwargs,
    ) -> BatchFeature:
        original_sizes = [list(image.shape[-2:]) for image in images]
        if do_rescale:
            images = [self.rescale(image, rescale_factor) for image in images]
        divisor = int(size_divisor or 1) if do_pad else 1
        if divisor < 1:
            raise ValueError(f"`size_divisor` must be a positive integer, got {size_divisor}.")
        height = max(math.ceil(h / divisor) * divisor for h, _ in original_sizes)
        width = max(math.ceil(w / divisor) * divisor for _, w in original_sizes)
        if do_pad or len({tuple(s) for s in original_sizes}) > 1:
            # Bottom/right padding keeps every image at the top-left, so cropping `original_sizes * scale`
            # from the output removes it exactly.
            images = [_pad_bottom_right(image, height, width) for image in images]
        images = [image.astype(np.float32) for image in images]
        return BatchFeature(data={"pixel_values": images, "original_sizes": original_sizes},
                            tensor_type=return_tensors)

    def post_process_super_resolution(
        self,
        outputs,
        original_sizes: list[tuple[int, int]] | None = None,
        scale: int | None = None,
    ) -> list:
        """
        Turn super-resolution outputs into PIL images.

        Args:
            outputs: model outputs with `reconstruction` (batch, channels, H, W), or that tensor itself.
            original_sizes: one (height, width) per image, the input sizes before padding (the processor's
                `original_sizes`); each output is cropped to (height * scale, width * scale) from the top left.
                Without it the whole reconstruction is returned.
            scale: the model's upscaling factor (`model.config.upscale`); needed with `original_sizes`.

        Returns:
            A list of PIL images (RGB for 3 channels, L for 1): values clamped to [0, 1], times 255, rounded.
        """
        import torch

        reconstruction = batch_output(outputs, "reconstruction")
        original_sizes = sizes_per_image(original_sizes, len(reconstruction), "original sizes")
        if original_sizes is not None:
            if scale is None or isinstance(scale, bool) or int(scale) != scale or scale < 1:
                raise ValueError(
                    f"`scale` must be the model's upscaling factor (model.config.upscale) to crop to the original "
                    f"sizes, got {scale!r}."
                )
        images = []
        for index, image in enumerate(reconstruction):
            if original_sizes is not None:
                height, width = (int(v) * int(scale) for v in original_sizes[index])
                if height > image.shape[-2] or width > image.shape[-1] or min(height, width) < 1:
                    raise ValueError(
                        f"Cannot crop a {image.shape[-2]}x{image.shape[-1]} reconstruction to {height}x{width}: "
                        f"check `original_sizes` and `scale`."
                    )
                image = image[:, :height, :width]
            array = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
            array = np.moveaxis(array, 0, -1)
            images.append(PIL.Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array))
        return images


__all__ = ["EfficientViTSRImageProcessor"]
