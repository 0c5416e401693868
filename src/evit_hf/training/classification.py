"""Image classification training: `accelerate launch training/cls.py [--config recipe.yaml] [--field value ...]`.

Any streamed dataset with an image column and an integer label column (an image folder, parquet shards,
ImageNet-style Hub datasets). The built-in `synthetic` source reuses the synthetic segmentation images and
labels each with the shape that covers most of it, so the command also works offline as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .arguments import TrainingArguments, run_training
from .data import SYNTHETIC, load_split, rename_columns, synthetic_segmentation_dir
from .metrics import ClassificationMetrics
from .models import build_labelled_model
from .tasks import LabelledImageTask
from .trainer import Trainer
from .transforms import classification_eval_transform, classification_train_transform, image_processor_class

DEFAULT_PRESET = "b0"


@dataclass
class ClassificationArguments(TrainingArguments):
    """Train an EfficientViT classifier on a streamed dataset (image + integer label columns)."""

    num_labels: int | None = field(default=None, metadata={
        "help": "number of classes (default: from the dataset's ClassLabel feature or the model's own labels)"})
    image_size: int = field(default=224, metadata={"help": "training and evaluation resolution"})
    crop_pct: float = field(default=0.95, metadata={
        "help": "evaluation: resize the short side to image_size / crop_pct, then center-crop"})
    min_crop_scale: float = field(default=0.08, metadata={"help": "smallest area fraction of the random crop"})
    label_smoothing: float = field(default=0.1, metadata={"help": "cross-entropy label smoothing"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.image_size < 32:
            raise ValueError(f"image_size must be at least 32, got {self.image_size}.")
        if not 0 < self.crop_pct <= 1:
            raise ValueError(f"crop_pct must be in (0, 1], got {self.crop_pct}.")


def _dominant_shape(annotation) -> int:
    """Synthetic classification label: the shape class covering most pixels (ids shifted past background)."""
    return int(np.bincount(np.asarray(annotation).ravel(), minlength=5)[1:].argmax())


class ClassificationTask(LabelledImageTask):
    metric_name = "top1_accuracy"
    args: ClassificationArguments

    def __init__(self, args: ClassificationArguments) -> None:
        processor_class = image_processor_class("EfficientViTImageProcessor")
        super().__init__(args, processor_class.for_resolution(args.image_size, args.crop_pct))

    def _load(self, split: str):
        args = self.args
        if args.dataset == SYNTHETIC:
            from ..data.synthetic import SYNTHETIC_SEG_LABELS

            self.id2label = dict(enumerate(SYNTHETIC_SEG_LABELS[1:]))
            return load_split(str(synthetic_segmentation_dir()), split, streaming=args.streaming)
        ds = load_split(args.dataset, split, config_name=args.dataset_config, streaming=args.streaming)
        ds = rename_columns(ds, {args.image_column: "image", args.label_column: "label"})
        feature = (ds.features or {}).get("label")
        if self.id2label is None and getattr(feature, "names", None):
            self.id2label = dict(enumerate(feature.names))
        return ds

    def load_datasets(self):
        args = self.args
        train = self._load(args.train_split)
        evaluation = self._load(args.eval_split) if args.eval_split else None
        if self.id2label is None and args.num_labels is not None:
            self.id2label = {i: f"class_{i}" for i in range(args.num_labels)}
        if self.id2label is not None and args.num_labels is not None and args.num_labels != len(self.id2label):
            raise ValueError(f"--num_labels {args.num_labels} disagrees with the dataset's {len(self.id2label)} "
                             f"classes.")
        return train, evaluation

    def build_model(self, train_dataset):
        from ..models.efficientvit import EfficientViTForImageClassification

        args = self.args
        return build_labelled_model(EfficientViTForImageClassification, self.id2label, preset=args.preset,
                                    default_preset=DEFAULT_PRESET, model_name_or_path=args.model_name_or_path)

    def _label(self, example: dict[str, Any]) -> np.int64:
        if self.args.dataset == SYNTHETIC:
            return np.int64(_dominant_shape(example["annotation"]))
        return np.int64(example["label"])

    def train_sample(self, example, rng):
        pixels = classification_train_transform(example["image"], rng, self.processor,
                                                scale=(self.args.min_crop_scale, 1.0))
        return {"pixel_values": pixels, "labels": self._label(example)}

    def eval_sample(self, example):
        return {"pixel_values": classification_eval_transform(example["image"], self.processor),
                "labels": self._label(example)}

    def collate(self, samples):
        return {
            "pixel_values": torch.from_numpy(np.stack([s["pixel_values"] for s in samples])),
            "labels": torch.tensor([int(s["labels"]) for s in samples], dtype=torch.long),
        }

    def loss(self, model, batch):
        logits = model(pixel_values=batch["pixel_values"]).logits
        return torch.nn.functional.cross_entropy(logits.float(), batch["labels"],
                                                 label_smoothing=self.args.label_smoothing)

    def new_metrics(self, model):
        return ClassificationMetrics(model.config.num_labels)

    def update_metrics(self, model, batch, metrics):
        metrics.update(model(pixel_values=batch["pixel_values"]).logits.float(), batch["labels"])


def train_classification(args: ClassificationArguments) -> dict[str, Any]:
    """Train as `args` says and return the final evaluation results."""
    return Trainer(ClassificationTask(args), args).train()


def main(argv: list[str] | None = None) -> int:
    return run_training(train_classification, ClassificationArguments, argv)


__all__ = ["ClassificationArguments", "ClassificationTask", "train_classification", "main"]
