"""Image classification evaluation: top-1 / top-5 with the original preprocessing at any resolution.

Owns batching the split through `EfficientViTImageProcessor.for_resolution(image_size, crop_pct)` (bicubic
resize of the short side to `ceil(size / crop_pct)`, center crop, ImageNet mean/std): the processor the
training saves and the Hub folders carry. Counting is `evit_hf.training.metrics.ClassificationMetrics`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..progress import track
from ..training.data import batched
from ..training.metrics import ClassificationMetrics
from ..training.transforms import classification_eval_transform, image_processor_class
from .runner import EvalResult, load_columns, load_model, positive, split_size


def evaluate_classification(model_name: str, data: str, *, split: str = "validation", image_column: str = "image",
                            label_column: str = "label", image_size: int = 224, crop_pct: float = 1.0,
                            batch_size: int = 32, max_samples: int | None = None,
                            device: str = "cpu", onnx: str | None = None) -> EvalResult:
    """Top-1 / top-5 accuracy of `model_name` (with `onnx`: of that exported file of it, in ONNX Runtime) on a
    split of `data` (integer labels in the model's label ids).

    The original crop ratio is 0.95 for B1 (every resolution) and 1.0 for B2, B3, L1-L3.
    """
    positive("--image-size", image_size)
    positive("--batch-size", batch_size)
    if not 0 < crop_pct <= 1:
        raise ValueError(f"--crop-pct must be in (0, 1], got {crop_pct}.")
    processor = image_processor_class("EfficientViTImageProcessor").for_resolution(image_size, crop_pct)
    model = load_model("AutoModelForImageClassification", model_name, device, onnx=onnx)
    num_labels = model.config.num_labels
    metrics = ClassificationMetrics(num_labels)
    dataset = load_columns(data, split, {image_column: "image", label_column: "label"}, max_samples)
    size = split_size(dataset, max_samples)
    batches = None if size is None else math.ceil(size / batch_size)
    for batch in track(batched(dataset, batch_size), "eval cls", total=batches, unit="batch"):
        labels = torch.tensor([int(example["label"]) for example in batch])
        if labels.min() < 0 or labels.max() >= num_labels:
            raise ValueError(f"Labels must lie in [0, {num_labels}) (the model's classes); got {labels.tolist()}.")
        pixels = np.stack([classification_eval_transform(e["image"], processor) for e in batch])
        with torch.inference_mode():
            logits = model(pixel_values=torch.from_numpy(pixels).to(model.device)).logits
        metrics.update(logits.float(), labels)
    if metrics.compute()["samples"] == 0:
        raise ValueError(f"Split {split!r} of {data!r} is empty.")
    return EvalResult("cls", model_name, data, metrics.compute(), metrics.table(),
                      settings={"split": split, "image_size": image_size, "crop_pct": crop_pct, "onnx": onnx})


__all__ = ["evaluate_classification"]
