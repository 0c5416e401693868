"""Automatic mask generation ("segment everything"): `SamAutomaticMaskGenerator`, as segment-anything's.

Owns prompting a SAM-style model with a regular `points_per_side` x `points_per_side` grid of points over the
whole image and keeping the masks whose predicted IoU and stability score pass the thresholds, after
non-maximum suppression. Today the work is done by transformers' `mask-generation` pipeline (one crop, points
decoded `points_per_batch` at a time), which computes its own image embedding; the generator times that
embedding apart from the rest (`GeneratedMasks.embedding_ms` / `mask_ms`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np


@dataclass
class GeneratedMasks:
    """The masks of one image (in the pipeline's order) and what finding them took."""

    masks: list[np.ndarray]  # (H, W) bool each, at the image's size
    scores: list[float]      # predicted IoU of each mask
    embedding_ms: float      # the image encoder
    mask_ms: float           # everything else: grid prompts through the decoder, filtering, NMS


class SamAutomaticMaskGenerator:
    """Masks of every object in an image from a grid of point prompts."""

    def __init__(self, model, processor, points_per_side: int = 32, pred_iou_thresh: float = 0.88,
                 stability_score_thresh: float = 0.95, points_per_batch: int = 64) -> None:
        if points_per_side < 1:
            raise ValueError(f"points_per_side must be at least 1, got {points_per_side}.")
        self.model, self.processor = model, processor
        self.points_per_side = points_per_side
        self.pred_iou_thresh = pred_iou_thresh
        self.stability_score_thresh = stability_score_thresh
        self.points_per_batch = points_per_batch

    def generate(self, image) -> GeneratedMasks:
        """The masks of `image` (PIL) that pass the thresholds.

        The model's `get_image_embeddings` is wrapped (as an instance attribute, removed afterwards) to time
        the pipeline's embedding call: the generator must not run on one model from two threads at once."""
        from transformers import pipeline

        generator = pipeline("mask-generation", model=self.model, image_processor=self.processor,
                             points_per_batch=self.points_per_batch)
        embed_times: list[float] = []
        encoder = self.model.get_image_embeddings

        def timed_embeddings(*args, **kwargs):
            start = time.perf_counter()
            result = encoder(*args, **kwargs)
            embed_times.append((time.perf_counter() - start) * 1e3)
            return result

        self.model.get_image_embeddings = timed_embeddings
        try:
            start = time.perf_counter()
            result = generator(image, points_per_crop=self.points_per_side, pred_iou_thresh=self.pred_iou_thresh,
                               stability_score_thresh=self.stability_score_thresh)
            total_ms = (time.perf_counter() - start) * 1e3
        finally:
            del self.model.get_image_embeddings
        embedding_ms = sum(embed_times)
        return GeneratedMasks([np.asarray(mask, dtype=bool) for mask in result["masks"]],
                              [float(score) for score in result["scores"]], embedding_ms, total_ms - embedding_ms)


__all__ = ["GeneratedMasks", "SamAutomaticMaskGenerator"]
