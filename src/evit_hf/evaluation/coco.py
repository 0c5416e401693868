"""COCO-format instance data for the SAM evaluation: reading it, and scoring masks with COCOeval.

Owns the two input layouts (a COCO instances JSON with its image folder, or an SA-1B-format dataset with an
`annotations` column, read through `load_split`) as one stream of `ImageRecord`s, the
COCO ground truth they imply (built on the fly for datasets), detector results files, and `coco_mask_ap`:
pycocotools COCOeval `segm` AP, AP50, AP75 and AP small/medium/large.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.sa1b import decode_segmentation
from .runner import load_columns

# COCO's area ranges (pixels): small < 32^2 <= medium < 96^2 <= large.
AREA_RANGES = (("small", 0.0, 32.0**2), ("medium", 32.0**2, 96.0**2), ("large", 96.0**2, math.inf))
AP_NAMES = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large")


def area_name(area: float) -> str:
    """`small`, `medium` or `large` by COCO's thresholds."""
    return next(name for name, low, high in AREA_RANGES if low <= area < high)


@dataclass
class ImageRecord:
    """One image and its instance annotations (area >= 1), COCO style: `bbox` XYWH, `segmentation`, `area`."""

    image_id: int
    image: Any  # PIL image
    annotations: list[dict[str, Any]] = field(default_factory=list)

    def mask(self, annotation: dict[str, Any]) -> np.ndarray:
        """The (H, W) bool ground-truth mask of `annotation`."""
        return decode_segmentation(annotation["segmentation"], self.image.height, self.image.width)


def image_file_name(info: dict[str, Any]) -> str:
    """An image entry's path under `--images`: `file_name`, or for LVIS (which has only `coco_url`) the COCO
    2017 split folder and file, e.g. `val2017/000000397133.jpg`."""
    if info.get("file_name"):
        return info["file_name"]
    if info.get("coco_url"):
        return "/".join(info["coco_url"].split("/")[-2:])
    raise ValueError(f"Image entry {info.get('id')} has neither file_name nor coco_url.")


class CocoSource:
    """A COCO instances JSON and its image folder: `records()` streams the images with their annotations."""

    def __init__(self, annotation_file: str | Path, images: str | Path | None, max_samples: int | None = None):
        path = Path(annotation_file)
        try:
            self.dataset = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"Cannot read COCO JSON {str(path)!r}: {err}") from err
        if not isinstance(self.dataset, dict) or not {"images", "annotations"} <= self.dataset.keys():
            raise ValueError(f"{str(path)!r} is not a COCO instances file (needs 'images' and 'annotations').")
        if images is None:
            raise ValueError("A COCO JSON needs --images, the folder its file_name entries are relative to.")
        self.images = Path(images)
        if not self.images.is_dir():
            raise ValueError(f"--images {str(self.images)!r} is not a folder.")
        self.image_infos = self.dataset["images"][:max_samples] if max_samples else self.dataset["images"]
        self.by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for annotation in self.dataset["annotations"]:
            self.by_image[annotation["image_id"]].append(annotation)
        self.dataset.setdefault("categories", [{"id": c} for c in sorted(
            {a.get("category_id", 1) for a in self.dataset["annotations"]})])

    def size(self) -> int | None:
        """Images to evaluate."""
        return len(self.image_infos)

    def records(self) -> Iterator[ImageRecord]:
        from PIL import Image

        for info in self.image_infos:
            file = self.images / image_file_name(info)
            if not file.is_file():
                raise ValueError(f"Image {str(file)!r} of image_id {info['id']} does not exist.")
            with Image.open(file) as image:
                rgb = image.convert("RGB")
            # As the original protocol: every annotation with area >= 1 is prompted, crowd regions included
            # (COCOeval ignores masks matched to crowd regions when it computes AP).
            annotations = [a for a in self.by_image.get(info["id"], []) if a.get("area", 1) >= 1]
            yield ImageRecord(info["id"], rgb, annotations)

    def ground_truth(self) -> dict[str, Any]:
        """The COCO ground-truth dict (all images; evaluation is restricted to the streamed ones)."""
        return self.dataset


class DatasetSource:
    """An SA-1B-format dataset (`image` + `annotations` with RLE `segmentation`, `bbox`, `area`, optional
    `category_id`): a parquet file/glob, a local folder, a Hub id, or the raw SA-1B jpg+json folder."""

    def __init__(self, data: str, split: str, max_samples: int | None = None) -> None:
        self.dataset = load_columns(data, split, {"image": "image", "annotations": "annotations"}, max_samples)
        self.images: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []

    def size(self) -> int | None:
        """Images to evaluate, unknown for a stream."""
        return None

    def records(self) -> Iterator[ImageRecord]:
        for image_id, example in enumerate(self.dataset):
            image = example["image"].convert("RGB")
            self.images.append({"id": image_id, "height": image.height, "width": image.width})
            annotations = []
            for annotation in example["annotations"]:
                annotation = dict(annotation, image_id=image_id, id=len(self.annotations) + 1, iscrowd=0,
                                  category_id=annotation.get("category_id") or 1)
                annotation.pop("point_coords", None)
                self.annotations.append(annotation)
                annotations.append(annotation)
            yield ImageRecord(image_id, image, annotations)

    def ground_truth(self) -> dict[str, Any]:
        categories = sorted({a["category_id"] for a in self.annotations}) or [1]
        return {"images": self.images, "annotations": self.annotations,
                "categories": [{"id": c} for c in categories]}


def open_source(data: str, images: str | None, split: str, max_samples: int | None) -> CocoSource | DatasetSource:
    """A COCO JSON (`data` ends in .json) with its `images` folder, else an SA-1B-format dataset."""
    if data.endswith(".json"):
        return CocoSource(data, images, max_samples)
    return DatasetSource(data, split, max_samples)


def load_detections(path: str | Path) -> dict[int, list[dict[str, Any]]]:
    """A COCO results JSON (a list of `image_id`, `bbox` XYWH, `score`, `category_id`) grouped by image."""
    try:
        detections = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"Cannot read detections {str(path)!r}: {err}") from err
    if not isinstance(detections, list) or any(
            not isinstance(d, dict) or not {"image_id", "bbox", "score"} <= d.keys() for d in detections):
        raise ValueError(f"{str(path)!r} is not a COCO results list (image_id, bbox, score, category_id).")
    by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for detection in detections:
        by_image[detection["image_id"]].append(detection)
    return by_image


def xywh_to_xyxy(boxes: list[list[float]], height: int, width: int) -> np.ndarray:
    """(N, 4) XYXY boxes from COCO XYWH ones, clipped to the image."""
    array = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    xyxy = np.concatenate([array[:, :2], array[:, :2] + array[:, 2:]], axis=1)
    return np.clip(xyxy, 0, [width, height, width, height])


def segm_evaluation(ground_truth: dict[str, Any], results: list[dict[str, Any]], image_ids: list[int],
                    max_dets: list[int], evaluator_class: type | None = None):
    """A pycocotools `segm` evaluation (`evaluator_class`, default COCOeval) of `results` (COCO results with RLE
    `segmentation` and `score`) on `image_ids`, evaluated and accumulated. Ground-truth annotations without an
    `iscrowd` field (LVIS has none) count as not crowd."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco = COCO()
        coco.dataset = {key: list(value) for key, value in ground_truth.items() if isinstance(value, list)}
        coco.dataset["annotations"] = [{"iscrowd": 0, **a} for a in coco.dataset["annotations"]]
        coco.createIndex()
        # Copies: loadRes adds numpy `bbox` / `area` fields to the dicts it is given.
        detections = coco.loadRes([{k: v for k, v in r.items() if k not in ("bbox", "area")} for r in results])
        evaluator = (evaluator_class or COCOeval)(coco, detections, "segm")
        evaluator.params.imgIds = sorted(image_ids)
        evaluator.params.maxDets = list(max_dets)
        evaluator.evaluate()
        evaluator.accumulate()
    return evaluator


def coco_mask_ap(ground_truth: dict[str, Any], results: list[dict[str, Any]], image_ids: list[int],
                 max_dets: int = 100) -> dict[str, float]:
    """COCOeval `segm` stats of `results` (COCO results with RLE `segmentation` and `score`) on `image_ids`.

    Returns AP, AP50, AP75, AP_small, AP_medium and AP_large in [0, 1] (NaN where COCOeval has no ground
    truth, its -1), at `max_dets` detections per image.
    """
    if not results:
        raise ValueError("No masks were predicted, so there is nothing to score.")
    evaluator = segm_evaluation(ground_truth, results, image_ids, [1, 10, max_dets])
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.summarize()
    return {name: (float(v) if v >= 0 else math.nan) for name, v in zip(AP_NAMES, evaluator.stats[:6])}


__all__ = ["AP_NAMES", "AREA_RANGES", "CocoSource", "DatasetSource", "ImageRecord", "area_name", "coco_mask_ap",
           "image_file_name", "load_detections", "open_source", "segm_evaluation", "xywh_to_xyxy"]
