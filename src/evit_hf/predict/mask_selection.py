"""Choosing the masks of one crop on the decoder's low-resolution logits, as segment-anything chooses them at
full resolution: `CropCandidates`.

segment-anything upsamples every candidate mask (three per grid point) to the image before its stability
filter, its boxes and its box NMS. Here those decisions are taken on the low-resolution logits (4h x 4w: the
256x256 grid of SAM, 4x coarser than a 1024-pixel image) and a mask is upsampled only when it is kept, or
when its low-resolution measure falls within a margin of a decision threshold; there the decision is taken
again on the upsampled mask, exactly as segment-anything takes it:

- stability: `|s_low - threshold| <= STABILITY_MARGIN`;
- box NMS (greedy, by predicted IoU): a pair whose low-resolution box IoU is within `NMS_MARGIN` of the
  threshold gets both boxes measured at full resolution (a pair of measured boxes is compared exactly);
- the crop-edge filter (crops only): a box edge within `EDGE_MARGIN_CELLS` cells of its decision distance.

A kept mask is upsampled anyway; one whose full-resolution stability or crop-edge test then fails is dropped.
The margins were measured on the trained shapes model of `tests/test_mask_generation.py` (64x64 logits, a
256-pixel image): the low-resolution stability was within 0.03 of the full-resolution one for 90% of the
candidates, box edges within 2 cells for 99%. Outside the margins a decision can still go the other way; the
test bounds how often (>= 95% of the masks agree with the original's generator).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .masks import masks_to_boxes, near_crop_edge, stability_scores

STABILITY_MARGIN = 0.03
NMS_MARGIN = 0.03
EDGE_MARGIN_CELLS = 2.0
EDGE_DISTANCE = 20.0  # segment-anything's `is_box_near_crop_edge` tolerance (pixels)


@dataclass(frozen=True)
class SelectionRules:
    """segment-anything's thresholds (`stability_thresh <= 0`: no stability filter)."""

    mask_threshold: float
    stability_thresh: float
    stability_offset: float
    nms_thresh: float


@dataclass
class SelectedMasks:
    """The kept masks of one crop, by decreasing predicted IoU, at the crop's size."""

    masks: list[torch.Tensor]    # (crop_h, crop_w) bool each
    scores: torch.Tensor         # (K,) predicted IoU
    stability: torch.Tensor      # (K,) measured at full resolution
    boxes: torch.Tensor          # (K, 4) XYXY crop pixels, of the full-resolution masks
    prompts: torch.Tensor        # (K, 2) or (K, 4) crop pixels


def _box_iou(box: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    from ..models.efficientvit.image_processing_efficientvit_sam import box_iou

    return box_iou(box[None].float(), others.float())[0]


class CropCandidates:
    """Masks of one crop: `add` each decoded batch (the predicted-IoU filter already applied), then `select`."""

    def __init__(self, upsample: Callable[[torch.Tensor], torch.Tensor], valid: tuple[int, int],
                 crop_size: tuple[int, int], rules: SelectionRules, crop_box: list[int] | None = None,
                 image_box: list[int] | None = None) -> None:
        """`upsample`: (K, 4h, 4w) logits -> (K, crop_h, crop_w) as the processor's `post_process_masks`;
        `valid`: the rows and columns of the low-resolution grid that cover the crop; `crop_box` and `image_box`
        (XYXY image pixels) switch on the crop-edge filter (a crop smaller than the image)."""
        self.upsample, self.valid, self.crop_size, self.rules = upsample, valid, crop_size, rules
        self.crop_box = None if crop_box is None or crop_box == image_box else list(crop_box)
        self.image_box = image_box
        height, width = crop_size
        self.cell = max(height / valid[0], width / valid[1])  # pixels per low-resolution cell
        self._logits: list[torch.Tensor] = []
        self._scores: list[torch.Tensor] = []
        self._prompts: list[torch.Tensor] = []
        self._stability: list[torch.Tensor] = []

    # -------------------------------------------------------------------------------------------- batches
    def add(self, logits: torch.Tensor, scores: torch.Tensor, prompts: torch.Tensor) -> None:
        """One batch of candidates: (K, 4h, 4w) low-resolution logits, predicted IoUs, prompts (crop pixels).
        Those clearly below the stability threshold are dropped now (their logits are not kept)."""
        rows, cols = self.valid
        logits = logits[:, :rows, :cols]
        stability = stability_scores(logits, self.rules.mask_threshold, self.rules.stability_offset)
        if self.rules.stability_thresh > 0.0:
            keep = stability >= self.rules.stability_thresh - STABILITY_MARGIN
            logits, scores, prompts, stability = logits[keep], scores[keep], prompts[keep], stability[keep]
        self._logits.append(logits)
        self._scores.append(scores)
        self._prompts.append(prompts)
        self._stability.append(stability)

    # ------------------------------------------------------------------------------------------- select
    def select(self) -> SelectedMasks:
        """Stability, crop-edge filter and box NMS (refined where ambiguous), then the kept masks upsampled."""
        self.logits = torch.cat(self._logits) if self._logits else torch.zeros(0, *self.valid)
        self.scores = torch.cat(self._scores) if self._scores else torch.zeros(0)
        self.prompts = torch.cat(self._prompts) if self._prompts else torch.zeros(0, 2)
        low_stability = torch.cat(self._stability) if self._stability else torch.zeros(0)
        count = len(self.logits)
        self.boxes = self._low_res_boxes(self.logits > self.rules.mask_threshold)
        self.exact = torch.zeros(count, dtype=torch.bool)
        self.full_masks: dict[int, torch.Tensor] = {}
        self.full_stability = torch.zeros(count)
        alive = torch.ones(count, dtype=torch.bool)
        if self.rules.stability_thresh > 0.0:
            band = (low_stability - self.rules.stability_thresh).abs() <= STABILITY_MARGIN
            self._refine(band.nonzero()[:, 0])
            stability = torch.where(self.exact, self.full_stability, low_stability)
            alive &= stability >= self.rules.stability_thresh
        alive &= ~self._near_crop_edge(alive)
        kept = self._nms(alive.nonzero()[:, 0])
        self._refine(kept)
        kept = [i for i in kept.tolist() if self._passes_exactly(i)]
        index = torch.tensor(kept, dtype=torch.long)
        return SelectedMasks([self.full_masks[i] for i in kept], self.scores[index], self.full_stability[index],
                             self.boxes[index], self.prompts[index])

    def _passes_exactly(self, i: int) -> bool:
        """A kept mask's full-resolution stability and crop-edge test (decided at low resolution before)."""
        if self.rules.stability_thresh > 0.0 and self.full_stability[i] < self.rules.stability_thresh:
            return False
        return not bool(self._edge_test(self.boxes[i : i + 1])[0])

    def _refine(self, index: torch.Tensor) -> None:
        """Upsample the candidates `index` (not yet measured): full-resolution mask, box and stability."""
        index = index[~self.exact[index]]
        if index.numel() == 0:
            return
        for start in range(0, len(index), 16):  # 16 upsampled maps at a time bound the memory
            part = index[start:start + 16]
            logits = self.upsample(self.logits[part])
            self.full_stability[part] = stability_scores(logits, self.rules.mask_threshold,
                                                         self.rules.stability_offset).float()
            binary = logits > self.rules.mask_threshold
            self.boxes[part] = masks_to_boxes(binary).float()
            self.exact[part] = True
            for i, mask in zip(part.tolist(), binary):
                self.full_masks[i] = mask

    # ----------------------------------------------------------------------------------------- boxes
    def _low_res_boxes(self, masks: torch.Tensor) -> torch.Tensor:
        """XYXY crop-pixel boxes of low-resolution masks: from the first to the last pixel whose centre lies in
        a cell that is set (a cell spans `crop_size / valid` pixels)."""
        boxes = masks_to_boxes(masks).float()
        empty = (boxes == 0).all(-1)
        (rows, cols), (height, width) = self.valid, self.crop_size
        scale = torch.tensor([width / cols, height / rows] * 2)
        edges = (boxes + torch.tensor([0.0, 0.0, 1.0, 1.0])) * scale
        first = torch.ceil(edges[:, :2] - 0.5).clamp(min=0)
        last = torch.minimum(torch.floor(edges[:, 2:] - 0.5), torch.tensor([width - 1.0, height - 1.0]))
        return torch.where(empty[:, None], torch.zeros(1, 4), torch.cat([first, last], dim=-1))

    def _edge_test(self, boxes: torch.Tensor) -> torch.Tensor:
        """(K,) bool: segment-anything's `is_box_near_crop_edge` of (K, 4) crop-pixel boxes."""
        if self.crop_box is None:
            return torch.zeros(len(boxes), dtype=torch.bool)
        offset = torch.tensor(self.crop_box[:2] * 2, dtype=torch.float32)
        return near_crop_edge(boxes + offset, self.crop_box, self.image_box, EDGE_DISTANCE)

    def _edge_ambiguous(self, boxes: torch.Tensor, margin: float) -> torch.Tensor:
        """(K,) bool: an edge within `margin` pixels of flipping the crop-edge test."""
        offset = torch.tensor(self.crop_box[:2] * 2, dtype=torch.float32)
        boxes = boxes + offset
        near = torch.zeros(len(boxes), dtype=torch.bool)
        for reference in (self.crop_box, self.image_box):
            distance = (boxes - torch.tensor(reference, dtype=torch.float32)).abs() - EDGE_DISTANCE
            near |= (distance.abs() <= margin).any(-1)
        return near

    def _near_crop_edge(self, alive: torch.Tensor) -> torch.Tensor:
        """(K,) bool: near a crop edge, deciding ambiguous boxes (within the margin) at full resolution."""
        if self.crop_box is None:
            return torch.zeros(len(self.boxes), dtype=torch.bool)
        ambiguous = alive & ~self.exact & self._edge_ambiguous(self.boxes, EDGE_MARGIN_CELLS * self.cell)
        self._refine(ambiguous.nonzero()[:, 0])
        return self._edge_test(self.boxes)

    def _nms(self, candidates: torch.Tensor) -> torch.Tensor:
        """Greedy NMS by decreasing predicted IoU (torchvision's `nms`), a pair within `NMS_MARGIN` of the
        threshold decided on full-resolution boxes."""
        order = candidates[torch.argsort(self.scores[candidates], descending=True, stable=True)]
        threshold = self.rules.nms_thresh
        kept: list[int] = []
        for j in order.tolist():
            if kept:
                others = torch.tensor(kept)
                ious = _box_iou(self.boxes[j], self.boxes[others])
                margin = torch.where(self.exact[others] & self.exact[j], 0.0, NMS_MARGIN)
                if bool((ious > threshold + margin).any()):
                    continue
                ambiguous = (ious - threshold).abs() <= margin
                if bool(ambiguous.any()):
                    self._refine(torch.cat([torch.tensor([j]), others[ambiguous]]))
                    if bool((_box_iou(self.boxes[j], self.boxes[others[ambiguous]]) > threshold).any()):
                        continue
            kept.append(j)
        return torch.tensor(kept, dtype=torch.long)


__all__ = ["EDGE_MARGIN_CELLS", "NMS_MARGIN", "STABILITY_MARGIN", "CropCandidates", "SelectedMasks",
           "SelectionRules"]
