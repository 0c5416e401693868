"""Accuracy the original authors report for their released checkpoints (data; not re-measured here).

Source: the READMEs of mit-han-lab/efficientvit at HEAD de7d773 (`applications/efficientvit_{cls,seg,sam}`),
transcribed in `../shared/reference/original-efficientvit.md` section 6. Cards label every number from here
"reported by the original authors (not re-measured)".
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE_NAME = "EfficientViT (original authors, mit-han-lab/efficientvit README)"
SOURCE_URL = "https://github.com/mit-han-lab/efficientvit"


@dataclass(frozen=True)
class Reported:
    """One reported result: a metric on a dataset split under a protocol."""

    metric: str        # model-index metric type: "accuracy", "mIoU", "mAP"
    name: str          # what the card calls it: "Top-1 accuracy"
    value: float       # in percent
    dataset: str       # human-readable dataset name
    dataset_type: str  # Hub dataset id / type
    split: str
    protocol: str      # how it was measured, in the authors' words


def _imagenet(top1: float, top5: float, resolution: int) -> tuple[Reported, ...]:
    protocol = f"single crop at {resolution}x{resolution}"
    return (
        Reported("accuracy", "Top-1 accuracy", top1, "ImageNet-1k", "imagenet-1k", "validation", protocol),
        Reported("top-5-accuracy", "Top-5 accuracy", top5, "ImageNet-1k", "imagenet-1k", "validation", protocol),
    )


# (model, resolution) -> (top-1, top-5) on ImageNet-1k val. No B0 classifier result was ever published.
_IMAGENET: dict[tuple[str, int], tuple[float, float]] = {
    ("b1", 224): (79.390, 94.346), ("b1", 256): (79.918, 94.704), ("b1", 288): (80.410, 94.984),
    ("b2", 224): (82.100, 95.782), ("b2", 256): (82.698, 96.096), ("b2", 288): (83.086, 96.302),
    ("b3", 224): (83.468, 96.356), ("b3", 256): (83.806, 96.514), ("b3", 288): (84.150, 96.732),
    ("l1", 224): (84.484, 96.862),
    ("l2", 224): (85.050, 97.090), ("l2", 256): (85.366, 97.216), ("l2", 288): (85.630, 97.364),
    ("l2", 320): (85.734, 97.438), ("l2", 384): (85.978, 97.518),
    ("l3", 224): (85.814, 97.198), ("l3", 256): (85.938, 97.318), ("l3", 288): (86.070, 97.440),
    ("l3", 320): (86.230, 97.474), ("l3", 384): (86.408, 97.632),
}
# segmentation variant -> mIoU on the validation set (Cityscapes at 1024x2048, ADE20K short side 512; single scale)
_SEG_MIOU: dict[str, float] = {
    "seg-b0-cityscapes": 75.653, "seg-b1-cityscapes": 80.547, "seg-b2-cityscapes": 82.073,
    "seg-b3-cityscapes": 83.016, "seg-l1-cityscapes": 82.716, "seg-l2-cityscapes": 83.228,
    "seg-b1-ade20k": 42.840, "seg-b2-ade20k": 45.941, "seg-b3-ade20k": 49.013,
    "seg-l1-ade20k": 49.191, "seg-l2-ade20k": 50.702,
}
_SEG_DATASETS = {
    "cityscapes": ("Cityscapes", "cityscapes", "single scale at 1024x2048, 19 classes"),
    "ade20k": ("ADE20K", "scene_parse_150", "single scale, short side 512, 150 classes"),
}
# SAM variant -> (COCO val2017 mask mAP, LVIS v1 val mask mAP), zero-shot, ViTDet boxes as prompts
_SAM_MAP: dict[str, tuple[float, float]] = {
    "sam-l0": (45.7, 41.8), "sam-l1": (46.2, 42.1), "sam-l2": (46.6, 42.7),
    "sam-xl0": (47.5, 43.9), "sam-xl1": (47.8, 44.4),
}


def reported_results(variant: str, resolution: int | None = None) -> tuple[Reported, ...]:
    """The original authors' results for a release target (empty when they published none)."""
    if variant.startswith("cls-"):
        numbers = _IMAGENET.get((variant.removeprefix("cls-"), resolution))
        return _imagenet(*numbers, resolution) if numbers else ()
    if variant in _SEG_MIOU:
        name, dataset_type, protocol = _SEG_DATASETS[variant.rsplit("-", 1)[-1]]
        return (Reported("mIoU", "mIoU", _SEG_MIOU[variant], name, dataset_type, "validation", protocol),)
    if variant in _SAM_MAP:
        coco, lvis = _SAM_MAP[variant]
        protocol = "zero-shot instance segmentation, ViTDet-predicted boxes as prompts"
        return (
            Reported("mAP", "Mask mAP", coco, "COCO 2017", "coco", "val2017", protocol + " (maxDets 100)"),
            Reported("mAP", "Mask mAP", lvis, "LVIS v1", "lvis", "validation", protocol + " (maxDets 300)"),
        )
    return ()
