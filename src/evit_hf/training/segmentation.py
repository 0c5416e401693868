"""Semantic segmentation training: `accelerate launch training/seg.py [--config recipe.yaml] [--field value ...]`.

Defaults train a fresh B0-sized model on the built-in synthetic dataset (generated on first use), so the
command works offline as is. Recipes in `configs/train/` set up Cityscapes and ADE20K fine-tuning.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel

from .arguments import TrainingArguments, run_training
from .data import SYNTHETIC, load_split, rename_columns, synthetic_segmentation_dir
from .metrics import SegmentationMetrics
from .models import build_labelled_model
from .tasks import LabelledImageTask
from .trainer import Trainer
from .transforms import image_processor_class, label_map, segmentation_eval_transform, segmentation_train_transform

DEFAULT_PRESET = "seg-b0-cityscapes"


@dataclass
class SegmentationArguments(TrainingArguments):
    """Train an EfficientViT-Seg model on a streamed segmentation dataset (image + class-map columns)."""

    # Defaults: the offline synthetic demo (configs/train/seg-synthetic.yaml); real datasets use a recipe.
    num_epochs: int = field(default=3, metadata={"help": "passes over the training split"})
    learning_rate: float = field(default=2e-3, metadata={"help": "peak learning rate (AdamW)"})
    label_column: str = field(default="annotation", metadata={"help": "column holding the segmentation maps"})
    num_labels: int | None = field(default=None, metadata={
        "help": "number of classes (default: from id2label.json beside the data, or the model's own labels)"})
    id2label_file: str | None = field(default=None, metadata={
        "help": "JSON file {id: name} of the classes (default: id2label.json in the dataset folder or repo)"})
    crop_size: list[int] = field(default_factory=lambda: [128, 128], metadata={
        "help": "training crop height and width (one value: square)", "nargs": "+"})
    scale_range: list[float] = field(default_factory=lambda: [0.75, 1.5], metadata={
        "help": "random scale range applied to the base size", "nargs": 2})
    train_short_side: int | None = field(default=None, metadata={
        "help": "base size: the short side images are scaled to before the random scale (default: as stored)"})
    eval_short_side: int | None = field(default=None, metadata={
        "help": "short side of the evaluation images and of the saved image processor (the ADE20K rule: the long "
        "side rounded up to a multiple of 32; labels nearest); default: train_short_side, else the crop's short "
        "side"})
    reduce_labels: bool = field(default=False, metadata={
        "help": "map class 0 to the ignore index and shift the others down (ADE20K's 'other' class)"})
    ignore_index: int = field(default=255, metadata={"help": "label value ignored by the loss and the metrics"})
    token_mixer: str | None = field(default=None, metadata={
        "help": "global token mixer of the EfficientViT blocks: lite_mla (the original), softmax, hyena or retention "
        "(default: the preset's / checkpoint's, i.e. lite_mla); a checkpoint's other weights are kept and the new "
        "mixers start fresh", "choices": [None, "lite_mla", "softmax", "hyena", "retention"]})

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.crop_size) == 1:
            self.crop_size = [self.crop_size[0]] * 2
        if len(self.crop_size) != 2 or min(self.crop_size) < 32:
            raise ValueError(f"crop_size must be one or two sizes of at least 32, got {self.crop_size}.")
        if any(size % 32 for size in self.crop_size):
            raise ValueError(f"crop_size must be a multiple of 32 (the model stride), got {self.crop_size}.")
        if self.token_mixer is not None:
            from ..models.efficientvit.configuration_efficientvit import TOKEN_MIXERS

            if self.token_mixer not in TOKEN_MIXERS:
                raise ValueError(f"token_mixer must be one of {', '.join(TOKEN_MIXERS)}, got {self.token_mixer!r}.")
        low, high = self.scale_range
        if not 0 < low <= high:
            raise ValueError(f"scale_range must be 0 < low <= high, got {self.scale_range}.")


def _read_id2label(path: str | Path) -> dict[int, str]:
    data = json.loads(Path(path).read_text())
    return {int(k): str(v) for k, v in data.items()}


class SegmentationTask(LabelledImageTask):
    metric_name = "mean_iou"
    args: SegmentationArguments

    def __init__(self, args: SegmentationArguments) -> None:
        # Evaluated and served at the scale the model trained at, by the ADE20K rule: the model needs sides that
        # are multiples of 32, which the rule gives.
        short_side = args.eval_short_side or args.train_short_side or min(args.crop_size)
        processor_class = image_processor_class("EfficientViTSegImageProcessor")
        super().__init__(args, processor_class.for_short_side(short_side, do_reduce_labels=args.reduce_labels))

    def _dataset_path(self) -> str:
        return str(synthetic_segmentation_dir()) if self.args.dataset == SYNTHETIC else self.args.dataset

    def load_datasets(self):
        args = self.args
        source = self._dataset_path()
        columns = {args.image_column: "image", args.label_column: "label"}
        train = rename_columns(load_split(source, args.train_split, config_name=args.dataset_config,
                                          streaming=args.streaming), columns)
        evaluation = None
        if args.eval_split:
            evaluation = rename_columns(load_split(source, args.eval_split, config_name=args.dataset_config,
                                                   streaming=args.streaming), columns)
        self.id2label = self._find_labels(source)
        return train, evaluation

    def _find_labels(self, source: str) -> dict[int, str] | None:
        args = self.args
        if args.id2label_file:
            return _read_id2label(args.id2label_file)
        local = Path(source)
        if local.is_dir() and (local / "id2label.json").is_file():
            labels = _read_id2label(local / "id2label.json")
        elif not local.exists() and "/" in source and not source.endswith(".parquet"):
            labels = None
            try:  # Hub datasets often ship id2label.json next to the data (works offline once cached)
                from huggingface_hub import hf_hub_download

                labels = _read_id2label(hf_hub_download(source, "id2label.json", repo_type="dataset"))
            except Exception:  # noqa: BLE001 - absent file, no network: fall back to num_labels / the model
                labels = None
        else:
            labels = None
        if labels is not None and args.num_labels is not None and args.num_labels != len(labels):
            raise ValueError(f"--num_labels {args.num_labels} disagrees with the {len(labels)} classes in id2label.")
        if labels is None and args.num_labels is not None:
            labels = {i: f"class_{i}" for i in range(args.num_labels)}
        return labels

    def build_model(self, train_dataset):
        from ..models.efficientvit import EfficientViTForSemanticSegmentation

        args = self.args
        model = build_labelled_model(EfficientViTForSemanticSegmentation, self.id2label, preset=args.preset,
                                     default_preset=DEFAULT_PRESET, model_name_or_path=args.model_name_or_path)
        if args.token_mixer is None or args.token_mixer == model.config.token_mixer:
            return model
        model, fresh = with_token_mixer(model, args.token_mixer)
        if args.model_name_or_path and fresh:
            print(f"token_mixer={args.token_mixer}: newly initialised (to be trained): {', '.join(fresh)}", flush=True)
        return model

    def _labels(self, example: dict[str, Any]) -> np.ndarray:
        return label_map(example["label"], self.args.reduce_labels, self.args.ignore_index)

    def train_sample(self, example, rng):
        args = self.args
        pixels, labels = segmentation_train_transform(
            example["image"], self._labels(example), rng, self.processor, crop_size=tuple(args.crop_size),
            scale_range=tuple(args.scale_range), base_short_side=args.train_short_side, ignore_index=args.ignore_index,
        )
        return {"pixel_values": pixels, "labels": labels}

    def eval_sample(self, example):
        pixels, labels = segmentation_eval_transform(example["image"], self._labels(example), self.processor)
        return {"pixel_values": pixels, "labels": labels}

    def collate(self, samples):
        """Stack samples, padding different sizes to the largest (image zeros, labels ignored)."""
        height = max(s["pixel_values"].shape[1] for s in samples)
        width = max(s["pixel_values"].shape[2] for s in samples)
        pixels = torch.zeros(len(samples), 3, height, width)
        labels = torch.full((len(samples), height, width), self.args.ignore_index, dtype=torch.long)
        for i, sample in enumerate(samples):
            _, h, w = sample["pixel_values"].shape
            pixels[i, :, :h, :w] = torch.from_numpy(sample["pixel_values"])
            labels[i, :h, :w] = torch.from_numpy(sample["labels"])
        return {"pixel_values": pixels, "labels": labels}

    def new_metrics(self, model):
        return SegmentationMetrics(model.config.num_labels, self.args.ignore_index, model.config.id2label)

    def update_metrics(self, model, batch, metrics):
        from ..models.efficientvit.modeling_efficientvit_blocks import resize_bicubic

        logits = model(pixel_values=batch["pixel_values"]).logits
        predictions = resize_bicubic(logits.float(), batch["labels"].shape[-2:]).argmax(1)
        metrics.update(predictions, batch["labels"])


def with_token_mixer(model: PreTrainedModel, token_mixer: str) -> tuple[PreTrainedModel, list[str]]:
    """`model` rebuilt with another token mixer, and the modules left freshly initialised: every weight outside
    the EfficientViT blocks' `attention` modules is copied over, the new mixers keep their initialisation."""
    from ..models.efficientvit.configuration_efficientvit import TOKEN_MIXERS

    if token_mixer not in TOKEN_MIXERS:
        raise ValueError(f"Unknown token_mixer {token_mixer!r}; expected one of {', '.join(TOKEN_MIXERS)}.")
    config = copy.deepcopy(model.config)
    config.token_mixer = token_mixer
    rebuilt = type(model)(config)
    # Nothing of the old mixer carries over, even where shapes agree (softmax's qkv has LiteMLA's shape).
    shared = {k: v for k, v in model.state_dict().items() if ".attention." not in k}
    missing = rebuilt.load_state_dict(shared, strict=False).missing_keys
    fresh = sorted({key.split(".attention.")[0] + ".attention" for key in missing})
    return rebuilt, fresh


def train_segmentation(args: SegmentationArguments) -> dict[str, Any]:
    """Train as `args` says and return the final evaluation results."""
    return Trainer(SegmentationTask(args), args).train()


def main(argv: list[str] | None = None) -> int:
    return run_training(train_segmentation, SegmentationArguments, argv)


__all__ = ["SegmentationArguments", "SegmentationTask", "train_segmentation", "with_token_mixer", "main"]
