"""SAM zero-shot evaluation: box prompts scored with COCOeval, and the interactive click protocol.

Owns the box protocol (ground-truth or detector boxes -> the best of three masks of each, from
`evit_hf.predict.SamPredictor` with one image embedding per image -> COCO mask AP; with ground-truth boxes
also the mean IoU per instance, split by area, as the paper's GT-box table), and the click protocol
(`next_click`: RITM's clicker, as the original evaluation: each click goes to the error pixel farthest from
the error region's boundary, positive in a missed region, negative in a wrongly added one; mIoU after N
clicks). Data reading and
COCOeval live in `evaluation.coco`; IoU is `training.sam_objectives.mask_iou`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..data.sa1b import encode_mask
from ..predict import SamPredictor
from ..progress import track
from ..training.metrics import PromptedMaskMetrics
from ..training.sam_objectives import mask_iou
from .coco import (
    AP_NAMES,
    AREA_RANGES,
    ImageRecord,
    area_name,
    coco_mask_ap,
    load_detections,
    open_source,
    xywh_to_xyxy,
)
from .lvis import LVIS_AP_NAMES, is_lvis, lvis_mask_ap
from .runner import EvalResult, positive


def next_click(truth: np.ndarray, prediction: np.ndarray, clicked: np.ndarray) -> tuple[np.ndarray, int]:
    """The next click of the interactive protocol: ((x, y), label) with label 1 positive, 0 negative.

    Missed pixels (truth, not predicted) and wrongly added ones (predicted, not truth) are distance
    transformed with the image border counted as boundary; the click goes to the farthest pixel of the
    region type that reaches farther (ties: negative), skipping pixels already clicked. With an empty
    prediction the first click is the mask pixel farthest from the mask's boundary.
    """
    from scipy.ndimage import distance_transform_edt

    def distances(region: np.ndarray) -> np.ndarray:
        return distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1] * ~clicked

    missed = distances(truth & ~prediction)
    added = distances(prediction & ~truth)
    region = missed if missed.max() > added.max() else added
    y, x = np.unravel_index(int(np.argmax(region)), region.shape)
    return np.array([x, y], dtype=np.float64), int(region is missed)


def click_ious(predictor: SamPredictor, truth: np.ndarray, num_clicks: int) -> list[float]:
    """IoU of the predicted mask after 1 .. `num_clicks` clicks on the (H, W) bool mask `truth`."""
    prediction = np.zeros_like(truth)
    clicked = np.zeros_like(truth)
    points: list[np.ndarray] = []
    labels: list[int] = []
    ious = []
    for _ in range(num_clicks):
        point, label = next_click(truth, prediction, clicked)
        clicked[int(point[1]), int(point[0])] = True
        points.append(point)
        labels.append(label)
        mask = predictor.predict_batch(np.stack(points)[None], np.array(labels)[None], best_only=True).masks[0, 0]
        prediction = mask.numpy()
        ious.append(float(mask_iou(mask, torch.from_numpy(truth))))
    return ious


def _miou_table(metrics: dict[str, PromptedMaskMetrics], prefix: str) -> tuple[dict[str, float], list[str]]:
    """Per-area mean IoUs of `metrics` (keys: all/small/medium/large) as results and one table row."""
    values = {area: metrics[area].compute()["point_miou"] for area in metrics}
    results = {f"{prefix}_miou_{area}": value for area, value in values.items()}
    row = [_percent(v) for v in values.values()]
    return results, row


def _percent(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.2f}"


def _area_metrics() -> dict[str, PromptedMaskMetrics]:
    return {"all": PromptedMaskMetrics(), **{name: PromptedMaskMetrics() for name, _, _ in AREA_RANGES}}


def _add_iou(metrics: dict[str, PromptedMaskMetrics], area: float, iou: float) -> None:
    for key in ("all", area_name(area)):
        metrics[key].update("point", torch.tensor([iou]))


def evaluate_sam(model_name: str, data: str, *, images: str | None = None, split: str = "validation",
                 detections: str | None = None, clicks: Sequence[int] | None = None, max_dets: int | None = None,
                 max_samples: int | None = None, device: str = "cpu") -> EvalResult:
    """COCO mask AP of box-prompted masks (ground-truth boxes, or `detections`), GT-box mIoU by area, and
    with `clicks` the mIoU after each requested number of clicks. LVIS ground truth (images with
    `neg_category_ids`) is scored the federated LVIS way, with APr/APc/APf; `max_dets` defaults to 100 for
    COCO and 300 for LVIS."""
    from ..resolve import load_model

    if max_dets is not None:
        positive("--max-dets", max_dets)
    clicks = sorted(set(clicks or []))
    if clicks and clicks[0] < 1:
        raise ValueError(f"--points must be positive click counts, got {clicks}.")
    detected = load_detections(detections) if detections else None
    source = open_source(data, images, split, max_samples)
    model, processor, _ = load_model(model_name, "mask-generation")
    model.to(device)
    predictor = SamPredictor(model, processor)
    results: list[dict[str, Any]] = []
    image_ids: list[int] = []
    box_metrics = _area_metrics()
    click_metrics = {n: _area_metrics() for n in clicks}
    for record in track(source.records(), "eval sam", total=source.size()):
        image_ids.append(record.image_id)
        predictor.set_image(record.image)
        results += _box_prompts(predictor, record, detected, box_metrics)
        for annotation in record.annotations if clicks else []:
            truth = record.mask(annotation)
            if truth.any():
                ious = click_ious(predictor, truth, clicks[-1])
                for n in clicks:
                    _add_iou(click_metrics[n], annotation["area"], ious[n - 1])
    if not image_ids:
        raise ValueError(f"No images in {data!r}.")
    metrics: dict[str, Any] = {"images": len(image_ids), "prompts": "gt_boxes" if detected is None else "detections"}
    ground_truth = source.ground_truth()
    if is_lvis(ground_truth):  # federated LVIS scoring, 300 detections per image unless told otherwise
        max_dets = max_dets or 300
        metrics.update(lvis_mask_ap(ground_truth, results, image_ids, max_dets))
        names = LVIS_AP_NAMES
    else:
        max_dets = max_dets or 100
        metrics.update(coco_mask_ap(ground_truth, results, image_ids, max_dets))
        names = AP_NAMES
    lines = ["| metric | value (%) |", "|---|---:|"]
    lines += [f"| mask {name} | {_percent(metrics[name])} |" for name in names]
    miou_header = ["", "| prompt | mIoU all | small | medium | large |", "|---|---:|---:|---:|---:|"]
    miou_rows = []
    if detected is None:
        box_results, row = _miou_table(box_metrics, "box")
        metrics.update(box_results)
        miou_rows.append(f"| GT box | {' | '.join(row)} |")
    for n in clicks:
        click_results, row = _miou_table(click_metrics[n], f"click{n}")
        metrics.update(click_results)
        miou_rows.append(f"| {n} click{'s' if n > 1 else ''} | {' | '.join(row)} |")
    table = "\n".join(lines + (miou_header + miou_rows if miou_rows else []))
    settings = {"images_dir": images, "split": split, "detections": detections, "clicks": clicks,
                "max_dets": max_dets}
    return EvalResult("sam", model_name, data, metrics, table, settings=settings)


def _box_prompts(predictor: SamPredictor, record: ImageRecord, detected: dict[int, list[dict]] | None,
                 box_metrics: dict[str, PromptedMaskMetrics]) -> list[dict[str, Any]]:
    """COCO results for one image's box prompts; with ground-truth boxes, their IoUs go to `box_metrics`."""
    height, width = record.image.height, record.image.width
    prompts = detected.get(record.image_id, []) if detected is not None else [
        a for a in record.annotations if a.get("area", 1) >= 1]
    if not prompts:
        return []
    boxes = xywh_to_xyxy([p["bbox"] for p in prompts], height, width)
    prediction = predictor.predict_batch(boxes=boxes, best_only=True)
    results = []
    for prompt, mask, score in zip(prompts, prediction.masks[:, 0], prediction.iou_scores[:, 0]):
        results.append({"image_id": record.image_id, "category_id": prompt.get("category_id", 1),
                        "segmentation": encode_mask(mask.numpy()),
                        "score": float(prompt["score"]) if detected is not None else float(score)})
        if detected is None:
            iou = float(mask_iou(mask, torch.from_numpy(record.mask(prompt))))
            _add_iou(box_metrics, prompt["area"], iou)
    return results


__all__ = ["click_ious", "evaluate_sam", "next_click"]
