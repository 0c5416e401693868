"""LVIS mask AP: COCOeval with LVIS's federated ground truth (for EfficientViT-SAM's LVIS zero-shot table).

LVIS is not exhaustively annotated, so its evaluation differs from COCO's in three ways, all implemented
here on top of pycocotools' COCOeval: in each image only the categories known to be present (those with
annotations) or absent (`neg_category_ids`) are scored, and detections of other categories are dropped; an
unmatched detection of a category listed in the image's `not_exhaustive_category_ids` is ignored rather than
counted as a false positive; and each image keeps its 300 highest-scoring detections. AP is also reported by
category frequency (`APr`, `APc`, `APf` for rare, common and frequent categories).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

from .coco import segm_evaluation

LVIS_AP_NAMES = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "APr", "APc", "APf")


def is_lvis(ground_truth: dict[str, Any]) -> bool:
    """Whether a COCO-style ground truth carries LVIS's federated fields."""
    images = ground_truth.get("images") or []
    return bool(images) and all("neg_category_ids" in image for image in images)


def federated_detections(ground_truth: dict[str, Any], results: list[dict[str, Any]],
                         max_dets: int = 300) -> list[dict[str, Any]]:
    """The detections LVIS scores: per image only categories present or verified absent, the top `max_dets`."""
    positive: dict[int, set[int]] = defaultdict(set)
    for annotation in ground_truth["annotations"]:
        positive[annotation["image_id"]].add(annotation["category_id"])
    allowed = {image["id"]: positive[image["id"]] | set(image.get("neg_category_ids", []))
               for image in ground_truth["images"]}
    by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for result in results:
        if result["category_id"] in allowed.get(result["image_id"], ()):
            by_image[result["image_id"]].append(result)
    kept: list[dict[str, Any]] = []
    for detections in by_image.values():
        kept += sorted(detections, key=lambda r: -r["score"])[:max_dets]
    return kept


def lvis_mask_ap(ground_truth: dict[str, Any], results: list[dict[str, Any]], image_ids: list[int],
                 max_dets: int = 300) -> dict[str, float]:
    """LVIS `segm` AP, AP50, AP75, AP small/medium/large and APr/APc/APf in [0, 1] (NaN without ground truth)."""
    from pycocotools.cocoeval import COCOeval

    not_exhaustive = {image["id"]: set(image.get("not_exhaustive_category_ids", []))
                      for image in ground_truth["images"]}

    class FederatedEval(COCOeval):
        def evaluateImg(self, imgId, catId, aRng, maxDet):  # noqa: N802, N803 - pycocotools' names
            result = super().evaluateImg(imgId, catId, aRng, maxDet)
            if result is not None and catId in not_exhaustive.get(imgId, ()):
                result["dtIgnore"] = np.logical_or(result["dtIgnore"], result["dtMatches"] == 0)
            return result

    detections = federated_detections(ground_truth, results, max_dets)
    if not detections:
        raise ValueError("No predicted mask is of a category LVIS scores in its image, so there is nothing to score.")
    evaluator = segm_evaluation(ground_truth, detections, image_ids, [max_dets], FederatedEval)
    precision = evaluator.eval["precision"]  # (IoU thresholds, recall, categories, areas, max dets)
    thresholds = list(np.round(evaluator.params.iouThrs, 2))
    frequency = {c["id"]: c.get("frequency") for c in ground_truth.get("categories", [])}
    categories = evaluator.params.catIds

    def mean(values: np.ndarray) -> float:
        valid = values[values > -1]
        return float(valid.mean()) if valid.size else math.nan

    def by_frequency(letter: str) -> float:
        index = [k for k, c in enumerate(categories) if frequency.get(c) == letter]
        return mean(precision[:, :, index, 0, -1]) if index else math.nan

    return {
        "AP": mean(precision[:, :, :, 0, -1]),
        "AP50": mean(precision[thresholds.index(0.5), :, :, 0, -1]),
        "AP75": mean(precision[thresholds.index(0.75), :, :, 0, -1]),
        "AP_small": mean(precision[:, :, :, 1, -1]),
        "AP_medium": mean(precision[:, :, :, 2, -1]),
        "AP_large": mean(precision[:, :, :, 3, -1]),
        "APr": by_frequency("r"),
        "APc": by_frequency("c"),
        "APf": by_frequency("f"),
    }


__all__ = ["LVIS_AP_NAMES", "federated_detections", "is_lvis", "lvis_mask_ap"]
