"""Semantic segmentation of one image: `segment_image` (the class of every pixel at the image's own size).

Owns running a semantic segmentation model and its image processor on one PIL image, and the one setting
users change on the processor, the inference size (`set_short_side`: smaller is faster). On a large image the
long part is upsampling the scores to the image size: `class_map` does it a few classes at a time where all of
them would not fit its memory budget, reporting progress.
"""

from __future__ import annotations

import numpy as np

from ..progress import ProgressCallback


def set_short_side(processor, short_side: int | None) -> None:
    """Resize the short side to `short_side` (the long side to a multiple of 32) instead of the processor's own
    size; `None` leaves the processor as it is."""
    if short_side is None:
        return
    if short_side < 32:
        raise ValueError(f"The short side must be at least 32 pixels, got {short_side}.")
    from transformers.image_utils import SizeDict

    processor.size = SizeDict(shortest_edge=short_side)


def segment_image(image, model, processor, progress: ProgressCallback | None = None) -> np.ndarray:
    """The (H, W) int64 class map of a PIL image at its own size.

    The scores are upsampled to the image size a few classes at a time (`class_map`), which bounds memory and
    reports `progress(classes done, classes)`: on a large photograph that, not the model, is the long part.
    """
    import torch

    if processor is None:
        raise RuntimeError("Segmenting an image needs transformers >= 5 (PIL image processors).")
    inputs = processor(image, return_tensors="pt").to(model.device)
    with torch.inference_mode():
        outputs = model(**inputs)
    return class_map(outputs.logits, image.size[::-1], processor, progress)


# Upsampled scores held at once, in values (fp32: 256 MB): a 6000x4000 photograph takes 2 classes at a time
# instead of all 19 Cityscapes classes (1.8 GB) or 150 ADE20K classes (14 GB) at once.
SCORES_BUDGET = 2**26


def class_map(logits, size: tuple[int, int], processor, progress: ProgressCallback | None = None) -> np.ndarray:
    """The argmax over classes of one image's `logits` (1, classes, h, w), upsampled to `size` (height, width)
    by `processor.post_process_semantic_segmentation`: in one call where all classes fit `SCORES_BUDGET`, else
    `SCORES_BUDGET // (height * width)` classes at a time.

    Exactly the processor's class map on all classes at once: the upsampling treats each class on its own,
    and ties go to the lower class id as in `argmax` (the running maximum is replaced only where strictly
    larger)."""
    import torch

    classes = logits.shape[1]
    step = max(1, SCORES_BUDGET // (size[0] * size[1]))
    if progress is not None:
        progress(0, classes)
    if step >= classes:  # every class fits the budget: the processor's own labels (it upsamples only the classes
        # that can win a pixel, `upsampled_argmax`, and all of them at most)
        (labels,) = processor.post_process_semantic_segmentation(logits, target_sizes=[size])
        if progress is not None:
            progress(classes, classes)
        return labels.cpu().numpy()
    best_class = best_score = None
    for start in range(0, classes, step):
        (result,) = processor.post_process_semantic_segmentation(
            logits[:, start : start + step], target_sizes=[size], return_segmentation_scores=True)
        index = result.segmentation
        score = result.segmentation_scores.gather(0, index[None])[0]
        if best_class is None:
            best_class, best_score = index, score
        else:
            better = score > best_score
            best_class = torch.where(better, index + start, best_class)
            best_score = torch.where(better, score, best_score)
        if progress is not None:
            progress(min(start + step, classes), classes)
    return best_class.cpu().numpy()


__all__ = ["SCORES_BUDGET", "class_map", "segment_image", "set_short_side"]
