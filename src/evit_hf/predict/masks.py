"""Binary-mask utilities of automatic mask generation: point grids, crops, stability, boxes, RLE, small regions.

Owns what segment-anything keeps in `utils/amg.py`, with its semantics (so that our generator and the
original's select the same masks), in torch / numpy / scipy (no OpenCV, no torchvision):
`build_point_grids` and `generate_crop_boxes` (the prompts and crops of a run), `stability_scores` (IoU of a
mask's logits thresholded at `threshold +- offset`), `masks_to_boxes` (XYXY, inclusive pixel indices, zeros for
an empty mask), `near_crop_edge`, uncompressed column-major RLE (`masks_to_rle`, `rle_to_mask`, `rle_area`,
`coco_rle` through pycocotools), `remove_small_regions` (holes / islands under an area, 8-connected) and
`box_nms` (greedy NMS; the pure-torch one of the EfficientViT-SAM image processor).
"""

from __future__ import annotations

import math
from itertools import product
from typing import Any

import numpy as np
import torch


def build_point_grid(points_per_side: int) -> np.ndarray:
    """(n^2, 2) points (x, y) evenly spread over [0, 1]^2, row by row (segment-anything's grid)."""
    offset = 1 / (2 * points_per_side)
    side = np.linspace(offset, 1 - offset, points_per_side)
    xs = np.tile(side[None, :], (points_per_side, 1))
    ys = np.tile(side[:, None], (1, points_per_side))
    return np.stack([xs, ys], axis=-1).reshape(-1, 2)


def build_point_grids(points_per_side: int, crop_n_layers: int, downscale_factor: int) -> list[np.ndarray]:
    """The grid of every crop layer: layer i has `points_per_side / downscale_factor**i` points per side."""
    return [build_point_grid(int(points_per_side / downscale_factor**i)) for i in range(crop_n_layers + 1)]


def generate_crop_boxes(size: tuple[int, int], crop_n_layers: int,
                        overlap_ratio: float) -> tuple[list[list[int]], list[int]]:
    """(crop boxes XYXY, their layer indices) of an image of `size` (height, width): the whole image, then
    (2^i)^2 overlapping crops in layer i (segment-anything's `generate_crop_boxes`)."""
    height, width = size
    boxes, layers = [[0, 0, width, height]], [0]
    for layer in range(crop_n_layers):
        per_side = 2 ** (layer + 1)
        overlap = int(overlap_ratio * min(height, width) * (2 / per_side))
        crop_w = int(math.ceil((overlap * (per_side - 1) + width) / per_side))
        crop_h = int(math.ceil((overlap * (per_side - 1) + height) / per_side))
        lefts = [int((crop_w - overlap) * i) for i in range(per_side)]
        tops = [int((crop_h - overlap) * i) for i in range(per_side)]
        for left, top in product(lefts, tops):
            boxes.append([left, top, min(left + crop_w, width), min(top + crop_h, height)])
            layers.append(layer + 1)
    return boxes, layers


def stability_scores(logits: torch.Tensor, mask_threshold: float, offset: float) -> torch.Tensor:
    """(K,) IoU of the masks `logits > threshold + offset` and `logits > threshold - offset` of (K, H, W) logits
    (the first is inside the second, so the IoU is a ratio of pixel counts; 0 where both are empty)."""
    inner = (logits > mask_threshold + offset).flatten(1).sum(-1)
    outer = (logits > mask_threshold - offset).flatten(1).sum(-1)
    return inner / outer.clamp(min=1)


def masks_to_boxes(masks: torch.Tensor) -> torch.Tensor:
    """(K, 4) XYXY boxes (first and last pixel index with the mask set) of (K, H, W) bool masks; 0s if empty."""
    if masks.numel() == 0:
        return torch.zeros(*masks.shape[:-2], 4, dtype=torch.long)
    rows, cols = masks.any(-1), masks.any(-2)  # (K, H), (K, W)
    boxes = []
    for present in (cols, rows):
        index = torch.arange(present.shape[-1])
        first = torch.where(present, index, present.shape[-1]).amin(-1)
        last = torch.where(present, index, -1).amax(-1)
        boxes.append((first, last))
    (x0, x1), (y0, y1) = boxes
    out = torch.stack([x0, y0, x1, y1], dim=-1)
    return out * (x1 >= x0)[:, None]


def near_crop_edge(boxes: torch.Tensor, crop_box: list[int], image_box: list[int], atol: float = 20.0) -> torch.Tensor:
    """(K,) bool: boxes (image coordinates) within `atol` pixels of an edge of the crop that is not an image edge
    (a mask cut by the crop: the other crops see the whole object)."""
    crop = torch.as_tensor(crop_box, dtype=torch.float32)[None]
    image = torch.as_tensor(image_box, dtype=torch.float32)[None]
    boxes = boxes.float()
    near_crop = torch.isclose(boxes, crop, atol=atol, rtol=0)
    near_image = torch.isclose(boxes, image, atol=atol, rtol=0)
    return (near_crop & ~near_image).any(dim=1)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Kept indices, by decreasing score, of greedy NMS (torchvision's `nms` semantics)."""
    from ..models.efficientvit.image_processing_efficientvit_sam import nms

    return nms(boxes, scores, iou_threshold)


def masks_to_rle(masks: torch.Tensor) -> list[dict[str, Any]]:
    """Uncompressed RLE (COCO's column-major order: `{"size": [h, w], "counts": [...]}`, starting with a run of
    zeros) of (K, H, W) bool masks."""
    count, height, width = masks.shape
    flat = masks.transpose(1, 2).reshape(count, height * width)
    changes = (flat[:, 1:] != flat[:, :-1]).nonzero()
    per_mask = torch.bincount(changes[:, 0], minlength=count).tolist()
    ends = (changes[:, 1] + 1).split(per_mask)
    out = []
    for i, cut in enumerate(ends):
        bounds = torch.cat([torch.zeros(1, dtype=cut.dtype), cut, torch.full((1,), height * width, dtype=cut.dtype)])
        counts = ([] if not bool(flat[i, 0]) else [0]) + bounds.diff().tolist()
        out.append({"size": [height, width], "counts": counts})
    return out


def rle_to_mask(rle: dict[str, Any]) -> np.ndarray:
    """The (H, W) bool mask of an uncompressed RLE."""
    height, width = rle["size"]
    counts = np.asarray(rle["counts"], dtype=np.int64)
    values = np.arange(len(counts)) % 2 == 1
    return np.repeat(values, counts).reshape(width, height).T


def rle_area(rle: dict[str, Any]) -> int:
    return int(sum(rle["counts"][1::2]))


def coco_rle(rle: dict[str, Any]) -> dict[str, Any]:
    """COCO's compressed RLE (`counts` a string, JSON-ready) of an uncompressed one; needs pycocotools."""
    try:
        from pycocotools import mask as mask_utils
    except ImportError as err:
        raise ImportError("COCO RLE output needs pycocotools: `pip install pycocotools`.") from err
    height, width = rle["size"]
    encoded = mask_utils.frPyObjects(rle, height, width)
    encoded["counts"] = encoded["counts"].decode("utf-8")
    return encoded


def remove_small_regions(mask: np.ndarray, area: float, mode: str) -> tuple[np.ndarray, bool]:
    """(mask, changed): `mode="holes"` fills background regions under `area` pixels, `"islands"` removes
    foreground regions under it (keeping the largest if all are); 8-connected, as segment-anything with OpenCV."""
    from scipy import ndimage

    if mode not in ("holes", "islands"):
        raise ValueError(f"mode must be 'holes' or 'islands', got {mode!r}.")
    holes = mode == "holes"
    labels, count = ndimage.label(holes ^ mask, structure=np.ones((3, 3), dtype=int))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    small = [i + 1 for i, size in enumerate(sizes) if size < area]
    if not small:
        return mask, False
    fill = [0, *small]
    if not holes:
        fill = [i for i in range(count + 1) if i not in fill] or [int(np.argmax(sizes)) + 1]
    return np.isin(labels, fill), True


__all__ = [
    "box_area",
    "box_nms",
    "build_point_grid",
    "build_point_grids",
    "coco_rle",
    "generate_crop_boxes",
    "masks_to_boxes",
    "masks_to_rle",
    "near_crop_edge",
    "remove_small_regions",
    "rle_area",
    "rle_to_mask",
    "stability_scores",
]
