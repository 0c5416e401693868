"""Semantic segmentation of one image: `segment_image` (the class of every pixel at the image's own size).

Owns running a semantic segmentation model and its image processor on one PIL image, and the one setting
users change on the processor, the inference size (`set_short_side`: smaller is faster).
"""

from __future__ import annotations

import numpy as np


def set_short_side(processor, short_side: int | None) -> None:
    """Resize the short side to `short_side` (the long side to a multiple of 32) instead of the processor's own
    size; `None` leaves the processor as it is."""
    if short_side is None:
        return
    if short_side < 32:
        raise ValueError(f"The short side must be at least 32 pixels, got {short_side}.")
    from transformers.image_utils import SizeDict

    processor.size = SizeDict(shortest_edge=short_side)


def segment_image(image, model, processor) -> np.ndarray:
    """The (H, W) int64 class map of a PIL image at its own size."""
    import torch

    if processor is None:
        raise RuntimeError("Segmenting an image needs transformers >= 5 (PIL image processors).")
    inputs = processor(image, return_tensors="pt").to(model.device)
    with torch.inference_mode():
        outputs = model(**inputs)
    (segmentation,) = processor.post_process_semantic_segmentation(outputs, target_sizes=[image.size[::-1]])
    return segmentation.cpu().numpy()


__all__ = ["segment_image", "set_short_side"]
