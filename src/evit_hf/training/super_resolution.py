"""Super-resolution training: `accelerate launch training/sr.py [--config recipe.yaml] [--field value ...]`.

Streams high-resolution images (any `datasets` source with an image column), cuts random patches under
the 8 flips/rotations, makes the low-resolution input by bicubic downscaling on the fly, and trains with
the L1 loss. Evaluation runs on whole held-out images: PSNR and SSIM on the Y channel (border crop =
scale), next to plain bicubic upscaling. The default data are the photographs scikit-image ships.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .arguments import TrainingArguments, run_training
from .data import builtin_dataset_dir, load_split, rename_columns
from .metrics import SuperResolutionMetrics
from .tasks import ImageTask
from .trainer import Trainer
from .transforms import image_processor_class, super_resolution_eval_transform, super_resolution_train_transform

BUILTIN_PHOTOS = "skimage-photos"
DEFAULT_PRESET = "sr-light-x2"


@dataclass
class SuperResolutionArguments(TrainingArguments):
    """Train an EfficientViT super-resolution model on streamed high-resolution images."""

    dataset: str = field(default=BUILTIN_PHOTOS, metadata={
        "help": "a Hub id, a local folder or parquet files of high-resolution images, or `skimage-photos` (the "
        "photographs scikit-image ships: 13 for training, 3 held out)"})
    preset: str | None = field(default=None, metadata={"help": f"architecture preset (default {DEFAULT_PRESET})"})
    patch_size: int = field(default=96, metadata={"help": "high-resolution training patch side (a multiple of "
                                                         "the scale)"})
    repeats: int = field(default=64, metadata={
        "help": "random patches per image per epoch (small photo sets: many patches from each image)"})
    num_epochs: int = field(default=20, metadata={"help": "passes over the (repeated) training split"})
    batch_size: int = field(default=16, metadata={"help": "patches per process per micro-batch"})
    eval_batch_size: int | None = field(default=1, metadata={"help": "whole images have different sizes: 1"})
    learning_rate: float = field(default=1e-3, metadata={"help": "peak learning rate (AdamW)"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay (SR models usually use none)"})
    shuffle_buffer: int = field(default=256, metadata={"help": "size of the streaming shuffle buffer"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.repeats < 1:
            raise ValueError(f"`repeats` must be at least 1, got {self.repeats}.")
        if self.patch_size < 16:
            raise ValueError(f"`patch_size` must be at least 16, got {self.patch_size}.")


class SuperResolutionTask(ImageTask):
    metric_name = "psnr_y"
    args: SuperResolutionArguments

    def __init__(self, args: SuperResolutionArguments) -> None:
        super().__init__(args, image_processor_class("EfficientViTSRImageProcessor")())
        self.scale: int | None = None

    def load_datasets(self):
        args = self.args
        source = str(builtin_dataset_dir(BUILTIN_PHOTOS)) if args.dataset == BUILTIN_PHOTOS else args.dataset

        def load(split: str):
            ds = load_split(source, split, config_name=args.dataset_config, streaming=args.streaming)
            return rename_columns(ds, {args.image_column: "image"})

        train = load(args.train_split)
        if args.repeats > 1:
            train = train.repeat(args.repeats)
        return train, (load(args.eval_split) if args.eval_split else None)

    def build_model(self, train_dataset):
        from ..models.efficientvit import EfficientViTForImageSuperResolution, EfficientViTSRConfig

        args = self.args
        if args.model_name_or_path is not None:
            model = EfficientViTForImageSuperResolution.from_pretrained(args.model_name_or_path)
        else:
            model = EfficientViTForImageSuperResolution(EfficientViTSRConfig.from_preset(args.preset or DEFAULT_PRESET))
        self.scale = model.config.upscale
        if args.patch_size % self.scale:
            raise ValueError(f"patch_size {args.patch_size} must be a multiple of the scale {self.scale}.")
        return model

    def train_sample(self, example, rng):
        low, high = super_resolution_train_transform(example["image"], rng, patch_size=self.args.patch_size,
                                                     scale=self.scale, processor=self.processor)
        return {"pixel_values": low, "labels": high}

    def eval_sample(self, example):
        low, high = super_resolution_eval_transform(example["image"], scale=self.scale, processor=self.processor)
        return {"pixel_values": low, "labels": high}

    def collate(self, samples):
        shapes = {s["labels"].shape for s in samples}
        if len(shapes) > 1:
            raise ValueError(f"Images of different sizes {sorted(shapes)} in one batch: use eval_batch_size 1.")
        return {key: torch.from_numpy(np.stack([s[key] for s in samples])) for key in ("pixel_values", "labels")}

    def new_metrics(self, model):
        return SuperResolutionMetrics(model.config.upscale)

    def update_metrics(self, model, batch, metrics):
        reconstruction = model(pixel_values=batch["pixel_values"]).reconstruction
        metrics.update(reconstruction, batch["pixel_values"], batch["labels"])

    def format_metric(self, value: float) -> str:
        return f"{value:.2f} dB"


def train_super_resolution(args: SuperResolutionArguments) -> dict[str, Any]:
    """Train as `args` says and return the final evaluation results."""
    return Trainer(SuperResolutionTask(args), args).train()


def main(argv: list[str] | None = None) -> int:
    return run_training(train_super_resolution, SuperResolutionArguments, argv)


__all__ = ["SuperResolutionArguments", "SuperResolutionTask", "train_super_resolution", "main"]
