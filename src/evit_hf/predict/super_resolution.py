"""Super-resolution of one image, and the bicubic upsampling it is compared with.

Owns `upscale_image` (the `image-super-resolution` pipeline, tiled for large images, reporting progress by
tile: `tile_count`) and `bicubic_comparison`: bicubic upsampling of the same input next to the model's output,
labelled. The bicubic input is what the model saw (the processor composites transparency on white), so the
two differ only in the upsampling.
"""

from __future__ import annotations

from ..progress import ProgressCallback


def upscale_image(image, model, processor, tile_size: int | None = None, tile_overlap: int | None = None,
                  device: str = "cpu", progress: ProgressCallback | None = None):
    """The model's upscaling of a PIL image; with `tile_size`, in overlapping tiles (bounded memory).

    `progress(done, total)` is called with the number of model passes (tiles) done and to do: `(0, total)`
    before the first, then after each (an image that fits in one tile is one pass).
    """
    from ..models.efficientvit import SuperResolutionPipeline

    if SuperResolutionPipeline is None or processor is None:
        raise RuntimeError("Super-resolution of images needs transformers >= 5 (PIL image processors).")
    upscaler = SuperResolutionPipeline(model=model, image_processor=processor, device=device)
    options = {"tile_size": tile_size or None} | ({} if tile_overlap is None else {"tile_overlap": tile_overlap})
    if progress is None:
        return upscaler(image, **options)
    # The pipeline's own steps, so that the tiles can be counted from the preprocessed size and each pass of the
    # model reported by a hook (the tiling itself stays in the model code: `tiled_upscale`).
    inputs = upscaler.preprocess(image)
    total = tile_count(inputs["pixel_values"].shape[-2:], tile_size, tile_overlap)
    done = 0

    def tile_done(*_) -> None:
        nonlocal done
        done += 1
        progress(done, total)

    progress(0, total)
    hook = model.register_forward_hook(tile_done)
    try:
        outputs = upscaler.forward(inputs, **options)
    finally:
        hook.remove()
    return upscaler.postprocess(outputs)


def tile_count(size: tuple[int, int], tile_size: int | None, tile_overlap: int | None = None) -> int:
    """How many model passes `tiled_upscale` makes over an input of `size` (height, width) pixels."""
    from ..models.efficientvit.modeling_efficientvit_sr import DEFAULT_TILE_OVERLAP, tile_starts

    if not tile_size or max(size) <= tile_size:
        return 1
    stride = tile_size - (DEFAULT_TILE_OVERLAP if tile_overlap is None else tile_overlap)
    rows, cols = (len(tile_starts(int(length), tile_size, stride)) for length in size)
    return rows * cols


def bicubic_comparison(image, upscaled, processor, scale: int, name: str):
    """Bicubic upsampling of `image` to the size of `upscaled`, and `upscaled`, side by side with labels."""
    from PIL import Image

    from .drawing import side_by_side

    rgb = processor.post_process_super_resolution(processor(image, return_tensors="pt")["pixel_values"])[0]
    bicubic = rgb.resize(upscaled.size, Image.Resampling.BICUBIC)
    return side_by_side(bicubic, upscaled, f"bicubic x{scale}", f"EfficientViT-SR x{scale} ({name})")


__all__ = ["bicubic_comparison", "tile_count", "upscale_image"]
