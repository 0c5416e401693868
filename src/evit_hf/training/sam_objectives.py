"""What EfficientViT-SAM is trained on and against: prompts sampled from masks, point-sampled mask losses, IoU.

Prompts follow the original stage-2 recipe: per image either the masks' boxes or 1-10 points sampled inside
each mask (optionally negative points outside it). Mask losses follow it too: sigmoid cross-entropy and dice
on points sampled in the mask frame, three quarters where the prediction is least certain (PointRend), one
quarter uniformly, and with several mask outputs only the best one per prompt is trained.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

PADDING_LABEL = -10  # a point slot that holds no point (transformers' SAM gives it a zero embedding)


def mask_box(mask: np.ndarray) -> np.ndarray:
    """Tight (x0, y0, x1, y1) box of a non-empty (H, W) mask, in pixel units (x1, y1 inclusive)."""
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], dtype=np.float32)


def jitter_box(box: np.ndarray, rng: np.random.Generator, fraction: float, max_pixels: float) -> np.ndarray:
    """SAM's box noise: each coordinate moved by N(0, fraction * side), clipped to `max_pixels`."""
    if fraction <= 0:
        return box
    width, height = box[2] - box[0] + 1, box[3] - box[1] + 1
    scale = np.array([width, height, width, height], dtype=np.float32) * fraction
    return box + np.clip(rng.normal(0.0, 1.0, 4) * scale, -max_pixels, max_pixels).astype(np.float32)


def sample_points(mask: np.ndarray, rng: np.random.Generator, num_positive: int, num_negative: int,
                  valid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(points (K, 2) as (x, y), labels (K,)): positives inside `mask`, negatives in the image outside it.

    `valid` is the (height, width) of the image inside the padded frame; negatives stay inside it. Sampling
    is with replacement when a region has fewer pixels than asked for; an empty outside gives no negatives.
    """
    points, labels = [], []
    for wanted, region, label in ((num_positive, mask, 1), (num_negative, ~mask, 0)):
        if wanted <= 0:
            continue
        region = region.copy()
        region[valid[0]:, :] = False
        region[:, valid[1]:] = False
        ys, xs = np.nonzero(region)
        if len(xs) == 0:
            continue
        pick = rng.choice(len(xs), size=wanted, replace=len(xs) < wanted)
        points.append(np.stack([xs[pick], ys[pick]], axis=1).astype(np.float32))
        labels.append(np.full(wanted, label, dtype=np.int64))
    return np.concatenate(points), np.concatenate(labels)


def point_sample(maps: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinear values of (N, C, H, W) `maps` at (N, P, 2) `coords` in [0, 1]^2 (x, y): (N, C, P)."""
    return F.grid_sample(maps, 2.0 * coords.unsqueeze(2) - 1.0, align_corners=False).squeeze(3)


def uncertain_point_coords(logits: torch.Tensor, num_points: int, oversample: float = 3.0,
                           importance: float = 0.75) -> torch.Tensor:
    """(N, num_points, 2) coords: `importance` of them where |logit| is smallest among `oversample` x random
    candidates, the rest uniform (PointRend's training sampler)."""
    n = logits.shape[0]
    candidates = torch.rand(n, int(num_points * oversample), 2, device=logits.device)
    uncertainty = -point_sample(logits, candidates).abs()[:, 0]
    num_uncertain = int(importance * num_points)
    index = uncertainty.topk(num_uncertain, dim=1).indices
    chosen = torch.gather(candidates, 1, index.unsqueeze(-1).expand(-1, -1, 2))
    uniform = torch.rand(n, num_points - num_uncertain, 2, device=logits.device)
    return torch.cat([chosen, uniform], dim=1)


def point_sampled_mask_losses(logits: torch.Tensor, targets: torch.Tensor,
                              num_points: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-mask (sigmoid cross-entropy, dice) of (N, 1, h, w) mask logits against (N, 1, H, W) 0/1 targets.

    Both are evaluated at the same sampled points of the shared frame (the logits bilinearly, the targets
    bilinearly too, so an edge pixel counts half), which costs O(num_points) whatever the mask resolution.
    """
    with torch.no_grad():
        coords = uncertain_point_coords(logits.float(), num_points)
        labels = point_sample(targets.float(), coords)[:, 0]
    point_logits = point_sample(logits.float(), coords)[:, 0]
    bce = F.binary_cross_entropy_with_logits(point_logits, labels, reduction="none").mean(1)
    probabilities = point_logits.sigmoid()
    dice = 1 - (2 * (probabilities * labels).sum(1) + 1) / (probabilities.sum(1) + labels.sum(1) + 1)
    return bce, dice


def mask_iou(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of boolean masks over the last two dimensions (an empty union counts as 1)."""
    predicted, target = predicted.bool(), target.bool()
    intersection = (predicted & target).flatten(-2).sum(-1).float()
    union = (predicted | target).flatten(-2).sum(-1).float()
    return torch.where(union > 0, intersection / union.clamp(min=1), torch.ones_like(union))


__all__ = [
    "PADDING_LABEL",
    "jitter_box",
    "mask_box",
    "mask_iou",
    "point_sample",
    "point_sampled_mask_losses",
    "sample_points",
    "uncertain_point_coords",
]
