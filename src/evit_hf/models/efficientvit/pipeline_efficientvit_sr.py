"""The `image-super-resolution` pipeline: an image in, its upscaled PIL image out, in tiles for large images.

Owns `SuperResolutionPipeline`. transformers v5 removed the `image-to-image` task (and refuses to revive that
name), so this pipeline has its own task name. `import evit_hf` registers it; folders saved by evit-hf
carry this file and a `custom_pipelines` entry in `config.json`, so that
`pipeline("image-super-resolution", model=folder, trust_remote_code=True)` also works without evit-hf.
Requires transformers >= 5 (the PIL-backend image processor).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from transformers import Pipeline

from .image_processing_efficientvit_sr import EfficientViTSRImageProcessor
from .modeling_efficientvit_sr import (
    DEFAULT_TILE_OVERLAP,
    DEFAULT_TILE_SIZE,
    check_tile_arguments,
    tiled_upscale,
)

try:
    import PIL.Image
    import PIL.ImageOps
except ImportError:  # pragma: no cover - pillow is a transformers vision dependency
    PIL = None


def _load(image: Any, timeout: float | None = None):
    """A PIL image (alpha kept, so the processor can composite it on white), a path, a URL, or an array."""
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        if os.path.isfile(path):
            with PIL.Image.open(path) as opened:
                opened.load()
                return PIL.ImageOps.exif_transpose(opened)
        from transformers.image_utils import load_image

        return load_image(path, timeout=timeout)  # URLs and base64 strings
    if PIL is not None and isinstance(image, PIL.Image.Image):
        return image
    if hasattr(image, "shape"):  # numpy array / tensor: the processor checks it
        return image
    raise ValueError(
        f"Expected a PIL image, a path, a URL or an array, got {type(image).__name__}."
    )


class SuperResolutionPipeline(Pipeline):
    """Super-resolution with an `AutoModelForImageToImage` model that returns `reconstruction`.

    Call it with a PIL image, a path (or URL), or a list of them; it returns the upscaled PIL image (or a
    list). Keyword arguments (at construction or per call):

    - `tile_size` (default 512): images larger than this (in input pixels, either side) are upscaled in
      overlapping `tile_size` tiles, one at a time, which bounds memory; `None` or 0 upscales in one pass.
    - `tile_overlap` (default 16): minimum overlap of neighbouring tiles, cross-faded so seams are invisible
      (see `tiled_upscale`); must be less than half of `tile_size`.
    - `timeout`: for URLs.

    The image processor defaults to `EfficientViTSRImageProcessor()` when the model folder has none.
    """

    _load_processor = False
    _load_image_processor = None  # optional: the default processor is used when the model has none
    _load_video_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.image_processor is None:
            self.image_processor = EfficientViTSRImageProcessor()
        elif not hasattr(self.image_processor, "post_process_super_resolution"):
            # e.g. Swin2SR's processor: the same input convention (RGB in [0, 1]) and padding to a multiple,
            # but no post-processing; ours pads the same way and crops the padding away afterwards.
            self.image_processor = EfficientViTSRImageProcessor(
                do_pad=bool(getattr(self.image_processor, "do_pad", False)),
                size_divisor=int(getattr(self.image_processor, "size_divisor", None) or 8),
            )

    def _sanitize_parameters(self, timeout=None, tile_size="unset", tile_overlap=None, **kwargs):
        if kwargs:
            raise ValueError(
                f"Unknown argument(s) {sorted(kwargs)} for the image-super-resolution pipeline; expected "
                f"tile_size, tile_overlap or timeout."
            )
        preprocess = {"timeout": timeout} if timeout is not None else {}
        forward = {}
        if tile_size != "unset":
            forward["tile_size"] = tile_size
        if tile_overlap is not None:
            forward["tile_overlap"] = tile_overlap
        return preprocess, forward, {}

    def preprocess(self, image, timeout: float | None = None) -> dict[str, torch.Tensor]:
        inputs = self.image_processor(images=[_load(image, timeout)], return_tensors="pt")
        return {"pixel_values": inputs["pixel_values"].to(self.dtype), "original_sizes": inputs["original_sizes"]}

    def _scale(self) -> int:
        scale = getattr(self.model.config, "upscale", None)
        if not isinstance(scale, int) or scale < 1:
            raise ValueError(f"The model's config has no integer `upscale` (got {scale!r}); is it an SR model?")
        return scale

    def _forward(self, model_inputs, tile_size: int | None = DEFAULT_TILE_SIZE,
                 tile_overlap: int = DEFAULT_TILE_OVERLAP) -> dict[str, Any]:
        pixel_values = model_inputs["pixel_values"]
        scale = self._scale()

        def upscale(x: torch.Tensor) -> torch.Tensor:
            return self.model(pixel_values=x).reconstruction

        height, width = pixel_values.shape[-2:]
        if tile_size:
            check_tile_arguments(tile_size, tile_overlap)  # also when the image fits in one tile
        if tile_size and max(height, width) > tile_size:
            reconstruction = tiled_upscale(upscale, pixel_values, scale, tile_size, tile_overlap)
        else:
            reconstruction = upscale(pixel_values)
        return {"reconstruction": reconstruction, "original_sizes": model_inputs["original_sizes"]}

    def postprocess(self, model_outputs):
        (image,) = self.image_processor.post_process_super_resolution(
            model_outputs["reconstruction"], original_sizes=model_outputs["original_sizes"], scale=self._scale()
        )
        return image


__all__ = ["SuperResolutionPipeline", "DEFAULT_TILE_SIZE", "DEFAULT_TILE_OVERLAP"]
