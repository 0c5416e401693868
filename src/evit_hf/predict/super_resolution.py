"""Super-resolution of one image, and the bicubic upsampling it is compared with.

Owns `upscale_image` (the `image-super-resolution` pipeline, tiled for large images) and `bicubic_comparison`:
bicubic upsampling of the same input next to the model's output, labelled. The bicubic input is what the
model saw (the processor composites transparency on white), so the two differ only in the upsampling.
"""

from __future__ import annotations


def upscale_image(image, model, processor, tile_size: int | None = None, tile_overlap: int | None = None,
                  device: str = "cpu"):
    """The model's upscaling of a PIL image; with `tile_size`, in overlapping tiles (bounded memory)."""
    from ..models.efficientvit import SuperResolutionPipeline

    if SuperResolutionPipeline is None or processor is None:
        raise RuntimeError("Super-resolution of images needs transformers >= 5 (PIL image processors).")
    upscaler = SuperResolutionPipeline(model=model, image_processor=processor, device=device)
    options = {} if tile_overlap is None else {"tile_overlap": tile_overlap}
    return upscaler(image, tile_size=tile_size or None, **options)


def bicubic_comparison(image, upscaled, processor, scale: int, name: str):
    """Bicubic upsampling of `image` to the size of `upscaled`, and `upscaled`, side by side with labels."""
    from PIL import Image

    from .drawing import side_by_side

    rgb = processor.post_process_super_resolution(processor(image, return_tensors="pt")["pixel_values"])[0]
    bicubic = rgb.resize(upscaled.size, Image.Resampling.BICUBIC)
    return side_by_side(bicubic, upscaled, f"bicubic x{scale}", f"EfficientViT-SR x{scale} ({name})")


__all__ = ["bicubic_comparison", "upscale_image"]
