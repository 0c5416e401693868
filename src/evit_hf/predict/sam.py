"""Promptable segmentation with a SAM-style model: `SamPredictor` (segment-anything's predictor, transformers models).

Owns prompting one image: `set_image` runs the image encoder once and keeps the embedding (`SamImageEmbedding`,
which can also be cached and handed back with `set_embedding`); `predict` (one prompt) and `predict_batch`
(N prompts, decoded `prompt_batch_size` at a time) run only the prompt encoder and mask decoder on it. Prompts
are in original-image pixels: points (x, y) with labels (1 foreground, 0 background), boxes (x0, y0, x1, y1),
and a low-resolution mask logit map from an earlier prediction; they are checked with the image processor's
`check_prompts` and mapped to the prompt frame as `SamProcessor` maps them (x * new_w / old_w,
y * new_h / old_h). A `SamPrediction` holds the masks at the image's size, the predicted IoUs and the
low-resolution logits. The same predictor serves `evit-hf sam`, the app and the COCO / LVIS evaluation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

PROMPT_BATCH_SIZE = 16  # prompts decoded at once: bounds the memory of the full-resolution masks


@dataclass
class SamImageEmbedding:
    """One image's encoder output and the sizes its prompts and masks are mapped with."""

    embeddings: torch.Tensor                # (1, C, h, w) from `model.get_image_embeddings`
    original_size: tuple[int, int]          # (height, width) of the image
    reshaped_input_size: tuple[int, int]    # (height, width) of the image in the prompt frame
    encode_ms: float = 0.0                  # what running the image encoder took


@dataclass
class SamPrediction:
    """Masks of one prompt (`predict`: leading shape `()`) or N prompts (`predict_batch`: `(N,)`)."""

    masks: torch.Tensor           # (..., C, H, W) bool at the image's size (float logits with `return_logits`)
    iou_scores: torch.Tensor      # (..., C) the model's predicted IoU of each mask
    low_res_logits: torch.Tensor  # (..., C, h, w) mask logits, the `mask_input` of a follow-up prediction

    def best(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(masks (..., H, W), scores (...)): the mask with the highest predicted IoU of each prompt."""
        index = self.iou_scores.argmax(-1, keepdim=True)
        masks = self.masks.gather(-3, index[..., None, None].expand(*index.shape, *self.masks.shape[-2:]))
        return masks.squeeze(-3), self.iou_scores.gather(-1, index).squeeze(-1)


def default_processor(model):
    """The EfficientViT-SAM image processor of `model`'s configuration (for models saved without one)."""
    from ..models.efficientvit import EfficientViTSamImageProcessor, EfficientViTSamModel

    if EfficientViTSamImageProcessor is None:
        raise RuntimeError("SAM prompting needs transformers >= 5 (PIL image processors).")
    if not isinstance(model, EfficientViTSamModel):
        raise ValueError(f"A {type(model).__name__} needs its image processor: pass `processor`.")
    return EfficientViTSamImageProcessor.for_config(model.config)


def check_prompts(processor, size: tuple[int, int], point_coords=None, point_labels=None, boxes=None) -> None:
    """A `ValueError` naming the problem for prompts the model cannot use on an image of `size` (height, width):
    point sets (N, K, 2) with labels (N, K), boxes (N, 4), in image pixels.

    Another SAM processor (transformers' own) has no `check_prompts`: the EfficientViT-SAM processor's rules
    are the same."""
    if not hasattr(processor, "check_prompts"):
        from ..models.efficientvit import EfficientViTSamImageProcessor

        processor = EfficientViTSamImageProcessor()
    processor.check_prompts(size, input_points=point_coords, input_labels=point_labels, input_boxes=boxes)


def _array(value, dtype, ndim: int) -> np.ndarray | None:
    """`value` as an array with `ndim` dimensions (one leading prompt axis added to a single prompt)."""
    if value is None:
        return None
    array = np.asarray(value, dtype=dtype)
    return array[None] if array.ndim == ndim - 1 else array


class SamPredictor:
    """Masks for prompts on one image, whose embedding is computed once (`set_image`) and reused."""

    def __init__(self, model, processor=None, prompt_batch_size: int = PROMPT_BATCH_SIZE) -> None:
        self.model = model
        self.processor = processor if processor is not None else default_processor(model)
        self.prompt_batch_size = prompt_batch_size
        self._embedding: SamImageEmbedding | None = None

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def is_image_set(self) -> bool:
        return self._embedding is not None

    @property
    def embedding(self) -> SamImageEmbedding:
        """The embedding of the current image."""
        if self._embedding is None:
            raise RuntimeError("No image: call `set_image` (or `set_embedding`) before predicting masks.")
        return self._embedding

    def set_image(self, image) -> SamImageEmbedding:
        """Run the image encoder on `image` (PIL or array) once; every prediction until the next image reuses it."""
        inputs = self.processor(images=image, return_tensors="pt")
        with torch.inference_mode():
            start = time.perf_counter()
            embeddings = self.model.get_image_embeddings(inputs["pixel_values"].to(self.device))
            encode_ms = (time.perf_counter() - start) * 1e3
        original = tuple(int(v) for v in inputs["original_sizes"][0])
        reshaped = tuple(int(v) for v in inputs["reshaped_input_sizes"][0])
        self._embedding = SamImageEmbedding(embeddings, original, reshaped, encode_ms)
        return self._embedding

    def set_embedding(self, embedding: SamImageEmbedding) -> None:
        """Predict on an embedding computed before (by this or another predictor of the same model)."""
        self._embedding = embedding

    def reset_image(self) -> None:
        self._embedding = None

    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None, multimask_output: bool = True,
                return_logits: bool = False) -> SamPrediction:
        """The masks of one prompt: points (K, 2) with labels (K,) (default: all foreground) and/or a box (4,),
        optionally with `mask_input` (1, h, w) low-resolution logits of an earlier prediction. Three masks with
        `multimask_output` (ambiguous prompts such as one click), else one."""
        prediction = self.predict_batch(
            _array(point_coords, np.float64, 3), _array(point_labels, np.int64, 2), _array(box, np.float64, 2),
            mask_input, multimask_output, return_logits,
        )
        return SamPrediction(prediction.masks[0], prediction.iou_scores[0], prediction.low_res_logits[0])

    def predict_batch(self, point_coords=None, point_labels=None, boxes=None, mask_input=None,
                      multimask_output: bool = True, return_logits: bool = False,
                      best_only: bool = False) -> SamPrediction:
        """The masks of N prompts: point sets (N, K, 2) with labels (N, K) and/or boxes (N, 4), each prompt one
        object. `best_only` keeps only the mask with the highest predicted IoU of each prompt (C = 1), before
        the masks are brought to the image's size (cheaper; the same masks, as that is done per mask)."""
        embedding = self.embedding
        points = None if point_coords is None else np.asarray(point_coords, np.float64)
        labels = None if point_labels is None else np.asarray(point_labels, np.int64)
        if points is not None and labels is None:
            labels = np.ones(points.shape[:2], np.int64)
        boxes = None if boxes is None else np.asarray(boxes, np.float64)
        check_prompts(self.processor, embedding.original_size, points, labels, boxes)
        (height, width), (new_h, new_w) = embedding.original_size, embedding.reshaped_input_size
        scale = np.array([new_w / width, new_h / height])
        count = len(points) if points is not None else len(boxes)
        parts = [self._decode(points, labels, boxes, scale, slice(start, start + self.prompt_batch_size),
                              mask_input, multimask_output, return_logits, best_only)
                 for start in range(0, count, self.prompt_batch_size)]
        return SamPrediction(*(torch.cat([getattr(part, key) for part in parts])
                               for key in ("masks", "iou_scores", "low_res_logits")))

    def _decode(self, points, labels, boxes, scale: np.ndarray, part: slice, mask_input, multimask_output: bool,
                return_logits: bool, best_only: bool) -> SamPrediction:
        """The prompt encoder and mask decoder on one batch of prompts (the prompt frame: x `scale`)."""
        embedding = self.embedding
        prompts: dict[str, Any] = {}
        if points is not None:
            prompts["input_points"] = torch.from_numpy(points[part] * scale).float()[None]
            prompts["input_labels"] = torch.from_numpy(labels[part])[None]
        if boxes is not None:
            prompts["input_boxes"] = torch.from_numpy(boxes[part] * np.tile(scale, 2)).float()[None]
        if mask_input is not None:  # one low-resolution mask for the image, (h, w) or (1, h, w)
            mask = torch.as_tensor(mask_input, dtype=torch.float32)
            prompts["input_masks"] = mask.reshape(1, 1, *mask.shape[-2:])
        with torch.inference_mode():
            outputs = self.model(image_embeddings=embedding.embeddings, multimask_output=multimask_output,
                                 **{key: value.to(self.device) for key, value in prompts.items()})
        logits = outputs.pred_masks[0].float().cpu()  # (n, C, h, w)
        scores = outputs.iou_scores[0].float().cpu()  # (n, C)
        if best_only:
            best = scores.argmax(-1, keepdim=True)
            scores = scores.gather(-1, best)
            logits = logits.gather(1, best[..., None, None].expand(-1, -1, *logits.shape[-2:]))
        masks = self.processor.post_process_masks(logits[None], [embedding.original_size],
                                                  [embedding.reshaped_input_size], binarize=not return_logits)[0]
        return SamPrediction(masks, scores, logits)


__all__ = ["PROMPT_BATCH_SIZE", "SamImageEmbedding", "SamPrediction", "SamPredictor", "check_prompts",
           "default_processor"]
