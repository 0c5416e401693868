"""EfficientViT-SAM training: `accelerate launch training/sam.py --stage distill|finetune [--field value ...]`.

Two stages, as in the EfficientViT-SAM paper:

- `distill`: the image encoder learns to reproduce a teacher's image embeddings (MSE), on any streamed
  image dataset. The teacher is any SAM-style model transformers or evit-hf loads (`SamModel` such as
  `facebook/sam-vit-huge`, or an EfficientViT-SAM folder); it runs frozen, at its own input resolution.
- `finetune`: end-to-end training on SA-1B-style records (image + COCO RLE masks) with prompts sampled from
  the masks (boxes, or positive/negative points), loss 20 x sigmoid cross-entropy + dice on sampled points,
  only the best of the multimask outputs trained; optionally the image encoder frozen, or LoRA adapters
  (PEFT) on the attention projections.

With no arguments, a small EfficientViT-SAM (B0 backbone, 128-pixel input) is fine-tuned from scratch on the
built-in synthetic SA-1B-format set (generated on first use), so the command works offline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .arguments import TrainingArguments, run_training
from .data import SYNTHETIC, builtin_dataset_dir, load_split, rename_columns
from .metrics import EmbeddingDistillationMetrics, PromptedMaskMetrics
from .sam_objectives import (
    PADDING_LABEL,
    jitter_box,
    mask_box,
    mask_iou,
    point_sampled_mask_losses,
    sample_points,
)
from .tasks import ImageTask
from .trainer import Trainer
from .transforms import as_pil, image_processor_class, processed

BUILTIN_SA1B = "synthetic-sa1b"
STAGES = ("distill", "finetune")
# The student when neither a preset nor a model is given: small enough to train on a CPU in minutes.
SMALL_STUDENT = {"backbone": "b0", "image_size": 128, "embedding_size": 16, "neck_depth": 2}
# LoRA targets that work: the 1x1 convs projecting q/k/v and the output of every EfficientViT attention
# block (PEFT's Conv2d LoRA; the grouped multi-scale aggregation convs are left alone).
ENCODER_ATTENTION_PROJECTIONS = r".*vision_encoder\..*\.attention\.(qkv|proj)\.conv"


@dataclass
class SamArguments(TrainingArguments):
    """Train EfficientViT-SAM: encoder distillation or end-to-end prompted fine-tuning."""

    stage: str = field(default="finetune", metadata={"help": "`distill` (encoder from a teacher) or `finetune` "
                                                               "(end-to-end with sampled prompts)",
                                                       "choices": list(STAGES)})
    dataset: str = field(default=SYNTHETIC, metadata={
        "help": "a Hub id, a local folder (parquet shards, an image folder, or raw SA-1B jpg+json pairs), parquet "
        "files, or `synthetic` (the built-in SA-1B-format shapes, generated on first use)"})
    annotations_column: str = field(default="annotations", metadata={
        "help": "column with the SA-1B annotation lists (finetune)"})
    preset: str | None = field(default=None, metadata={
        "help": "architecture of a fresh student (`sam-l0` ... `sam-xl1`); default: a small B0 student"})
    backbone: str | None = field(default=None, metadata={"help": "override the student's backbone preset"})
    image_size: int | None = field(default=None, metadata={"help": "override the student's encoder input size"})
    embedding_size: int | None = field(default=None, metadata={
        "help": "override the side of the image embeddings (masks come out at 4x this)"})
    neck_depth: int | None = field(default=None, metadata={"help": "override the number of neck blocks"})
    teacher_model: str | None = field(default=None, metadata={
        "help": "distill: the teacher, a folder or Hub id of a transformers SamModel or an EfficientViT-SAM"})
    copy_teacher_decoder: bool = field(default=True, metadata={
        "help": "distill: start the student's prompt encoder and mask decoder from the teacher's (when they match)"})
    masks_per_image: int = field(default=8, metadata={"help": "finetune: masks (prompts) sampled per image"})
    min_mask_area: int = field(default=16, metadata={"help": "ignore annotations with fewer pixels than this"})
    box_probability: float = field(default=0.5, metadata={"help": "chance an image is prompted with boxes "
                                                                   "(else with points)"})
    max_positive_points: int = field(default=10, metadata={"help": "point prompts: 1..N positive points per mask"})
    max_negative_points: int = field(default=0, metadata={
        "help": "point prompts: 0..N negative points outside the mask (the original recipe uses none)"})
    box_jitter: float = field(default=0.0, metadata={
        "help": "box noise std as a fraction of the box side, clipped at 20 prompt-frame pixels (SAM: 0.1)"})
    multimask_probability: float = field(default=0.5, metadata={
        "help": "chance an image is trained on the 3 multimask outputs (best one trained) instead of the single"})
    loss_points: int = field(default=2048, metadata={
        "help": "points per mask the mask losses are sampled at (the original uses 112x112 for 1024-pixel masks)"})
    bce_weight: float = field(default=20.0, metadata={"help": "weight of the sigmoid cross-entropy"})
    dice_weight: float = field(default=1.0, metadata={"help": "weight of the dice loss"})
    iou_loss_weight: float = field(default=1.0, metadata={
        "help": "weight of the MSE between predicted and true IoU (0: the original recipe, which leaves the IoU "
        "head as loaded)"})
    freeze_image_encoder: bool = field(default=False, metadata={"help": "finetune the prompt encoder and mask "
                                                                        "decoder only"})
    lora_rank: int = field(default=0, metadata={"help": "LoRA rank on the image encoder's attention (0: off)"})
    lora_alpha: float = field(default=16.0, metadata={"help": "LoRA scaling numerator"})
    lora_dropout: float = field(default=0.0, metadata={"help": "LoRA dropout"})
    lora_target_modules: str = field(default=ENCODER_ATTENTION_PROJECTIONS, metadata={
        "help": "regex of the modules given LoRA adapters (default: the encoder's attention q/k/v and output "
        "1x1 convs); the prompt encoder and mask decoder stay fully trainable"})
    max_eval_masks: int = field(default=16, metadata={"help": "masks evaluated per held-out image"})
    num_epochs: int = field(default=8, metadata={"help": "passes over the training split"})
    learning_rate: float = field(default=1e-3, metadata={"help": "peak learning rate (AdamW)"})
    eval_at_start: bool = field(default=True, metadata={"help": "evaluate before training too (the 'before' "
                                                                 "numbers)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.stage not in STAGES:
            raise ValueError(f"--stage must be one of {STAGES}, got {self.stage!r}.")
        if self.stage == "distill" and not self.teacher_model:
            raise ValueError("--stage distill needs --teacher_model (a folder or Hub id of a SamModel, e.g. "
                             "facebook/sam-vit-huge, or of an EfficientViT-SAM).")
        for name in ("masks_per_image", "max_positive_points", "loss_points", "max_eval_masks"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be at least 1, got {getattr(self, name)}.")
        for name in ("box_probability", "multimask_probability"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"`{name}` must be in [0, 1], got {getattr(self, name)}.")
        if self.lora_rank and self.freeze_image_encoder:
            raise ValueError("--lora_rank adapts the image encoder; it cannot be combined with "
                             "--freeze_image_encoder.")


# --------------------------------------------------------------------------------------------------- models
def build_student(args: SamArguments):
    """A fresh student (preset or the small default, with the size overrides) or a saved EfficientViT-SAM."""
    from ..models.efficientvit import EfficientViTSamConfig, EfficientViTSamModel
    from ..models.efficientvit.configuration_efficientvit_sam import SAM_PRESETS, sam_vision_config

    if args.model_name_or_path is not None:
        return EfficientViTSamModel.from_pretrained(args.model_name_or_path)
    if args.preset is not None and args.preset not in SAM_PRESETS:
        raise ValueError(f"Unknown EfficientViT-SAM preset {args.preset!r}; known: {sorted(SAM_PRESETS)}.")
    fields = dict(SAM_PRESETS[args.preset]) if args.preset else dict(SMALL_STUDENT)
    overrides = {"backbone": args.backbone, "image_size": args.image_size, "embedding_size": args.embedding_size,
                 "neck_depth": args.neck_depth}
    fields.update({k: v for k, v in overrides.items() if v is not None})
    embedding = int(fields.pop("embedding_size", 64))
    if args.backbone is not None:
        fields["neck_in_features"] = None  # the new backbone's last three stages
    vision = sam_vision_config(**fields, neck_output_size=embedding)
    frame = 1024
    if frame % embedding:
        raise ValueError(f"--embedding_size must divide the 1024-pixel prompt frame, got {embedding}.")
    return EfficientViTSamModel(EfficientViTSamConfig(vision_config=vision,
                                                      prompt_encoder_config={"patch_size": frame // embedding}))


class Teacher:
    """A frozen SAM-style image encoder: `embed(pixel_values)` -> (batch, C, h, w) image embeddings."""

    def __init__(self, name_or_path: str) -> None:
        from transformers import AutoConfig, SamModel

        from ..models.efficientvit import EfficientViTSamModel

        config = AutoConfig.from_pretrained(name_or_path)
        if config.model_type == "sam":
            self.model = SamModel.from_pretrained(name_or_path)
            self.image_size = int(config.vision_config.image_size)
        elif config.model_type == "efficientvit_sam":
            self.model = EfficientViTSamModel.from_pretrained(name_or_path)
            self.image_size = int(config.encoder_image_size)
        else:
            raise ValueError(f"The teacher {name_or_path!r} is a {config.model_type!r} model; expected a SAM "
                             "(`sam`) or an EfficientViT-SAM (`efficientvit_sam`).")
        self.model.eval().requires_grad_(False)

    @torch.no_grad()
    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        self.model.to(pixel_values.device)
        embeddings = self.model.get_image_embeddings(pixel_values)
        return embeddings if isinstance(embeddings, torch.Tensor) else embeddings[0]


def copy_prompt_path(teacher: nn.Module, student: nn.Module) -> int:
    """Copy the teacher's prompt encoder, mask decoder and positional matrix into the student where names and
    shapes agree (transformers' `SamModel` and EfficientViT-SAM share them); returns the tensors copied.

    As in EfficientViT-SAM, the distilled encoder then works with the teacher's prompt path unchanged.
    """
    prefixes = ("prompt_encoder.", "mask_decoder.", "shared_image_embedding.")
    source = {k: v for k, v in teacher.state_dict().items() if k.startswith(prefixes)}
    target = student.state_dict()
    matching = {k: v for k, v in source.items() if k in target and target[k].shape == v.shape}
    student.load_state_dict(matching, strict=False)
    return len(matching)


class SamDistillationModule(nn.Module):
    """The student's training forward for distillation: the image encoder against the teacher's embeddings."""

    def __init__(self, sam: nn.Module) -> None:
        super().__init__()
        self.sam = sam

    def forward(self, pixel_values: torch.Tensor, teacher_embeddings: torch.Tensor) -> torch.Tensor:
        student = self.sam.vision_encoder(pixel_values)
        return F.mse_loss(student.float(), match_embeddings(teacher_embeddings, student).float())


def match_embeddings(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
    """Teacher embeddings at the student's spatial size (area-resampled), with a clear error on widths."""
    if teacher.shape[1] != student.shape[1]:
        raise ValueError(f"The teacher's embeddings have {teacher.shape[1]} channels but the student's have "
                         f"{student.shape[1]}: pick a teacher and student with the same embedding width.")
    if teacher.shape[-2:] != student.shape[-2:]:
        teacher = F.interpolate(teacher.float(), size=student.shape[-2:], mode="bilinear", antialias=True,
                                align_corners=False)
    return teacher


class SamPromptTrainingModule(nn.Module):
    """The end-to-end training forward: encode each image once, decode every sampled prompt, return the loss.

    Images are grouped by (prompt kind, multimask) so each group is one mask-decoder call on the shared image
    embeddings. The mask loss is evaluated for every output mask; with three outputs only the lowest is kept.
    """

    def __init__(self, sam: nn.Module, args: SamArguments) -> None:
        super().__init__()
        self.sam = sam
        self.args = args

    def train(self, mode: bool = True) -> SamPromptTrainingModule:
        super().train(mode)
        if self.args.freeze_image_encoder or self.args.lora_rank:
            # The encoder's own weights are frozen: its BatchNorm statistics stay as loaded too (with LoRA the
            # adapter file could not carry them).
            self.sam.vision_encoder.eval()
        return self

    def forward(self, pixel_values: torch.Tensor, masks: torch.Tensor, mask_weights: torch.Tensor,
                boxes: torch.Tensor, points: torch.Tensor, point_labels: torch.Tensor, use_boxes: torch.Tensor,
                multimask: torch.Tensor) -> torch.Tensor:
        args = self.args
        with torch.no_grad() if args.freeze_image_encoder else torch.enable_grad():
            embeddings = self.sam.vision_encoder(pixel_values)
        total = embeddings.new_zeros(())
        weight_sum = mask_weights.sum().clamp(min=1.0)
        for by_box in (True, False):
            for several in (True, False):
                index = ((use_boxes == by_box) & (multimask == several)).nonzero().flatten()
                if index.numel() == 0:
                    continue
                prompts = {"input_boxes": boxes[index]} if by_box else {
                    "input_points": points[index], "input_labels": point_labels[index]}
                output = self.sam(image_embeddings=embeddings[index], multimask_output=several, **prompts)
                total = total + self._mask_loss(output, masks[index], mask_weights[index]) / weight_sum
        # A zero-weight term keeps every trainable parameter in the graph (DDP on an empty batch).
        return total + 0.0 * embeddings.sum()

    def _mask_loss(self, output, masks: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        args = self.args
        logits = output.pred_masks  # (images, prompts, outputs, h, w)
        images, prompts, outputs = logits.shape[:3]
        flat = logits.flatten(0, 2).unsqueeze(1)
        targets = masks.unsqueeze(2).expand(-1, -1, outputs, -1, -1).flatten(0, 2).unsqueeze(1)
        bce, dice = point_sampled_mask_losses(flat, targets, args.loss_points)
        per_output = (args.bce_weight * bce + args.dice_weight * dice).view(images, prompts, outputs)
        best = per_output.argmin(dim=2, keepdim=True)
        loss = per_output.gather(2, best).squeeze(2)
        if args.iou_loss_weight:
            with torch.no_grad():
                full = F.interpolate(flat.float(), size=masks.shape[-2:], mode="bilinear", align_corners=False)
                true_iou = mask_iou(full[:, 0] > 0, targets[:, 0] > 0.5).view(images, prompts, outputs)
            iou_error = (output.iou_scores.float() - true_iou).pow(2).mean(2)
            loss = loss + args.iou_loss_weight * iou_error
        return (loss * weights).sum()


def apply_lora(sam: nn.Module, args: SamArguments) -> nn.Module:
    """Wrap `sam` with LoRA adapters (PEFT) on `lora_target_modules`; prompt encoder and decoder stay trainable."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as err:
        raise ImportError("--lora_rank needs PEFT: pip install 'evit-hf[train]'") from err
    config = LoraConfig(r=args.lora_rank, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                        target_modules=args.lora_target_modules,
                        modules_to_save=["prompt_encoder", "mask_decoder"])
    try:
        return get_peft_model(sam, config)
    except ValueError as err:
        if "No modules were targeted" not in str(err):
            raise
        raise ValueError(f"--lora_target_modules {args.lora_target_modules!r} matches no module of the model "
                         f"(the default is {ENCODER_ATTENTION_PROJECTIONS!r}).") from err


# ---------------------------------------------------------------------------------------------- transforms
def resize_and_pad(image: Image.Image, processor) -> tuple[np.ndarray, float, tuple[int, int]]:
    """SAM preprocessing by the `EfficientViTSamImageProcessor` (longest side to its `encoder_size`, bilinear,
    normalised, zero-padded bottom/right to a square).

    Returns (pixels (3, side, side), scale, (height, width) of the image inside the padded square).
    """
    side = processor.encoder_size
    return processed(processor, image), side / max(image.size), processor.encoder_shape(image.height, image.width)


def resize_mask(mask: np.ndarray, side: int, size: tuple[int, int]) -> np.ndarray:
    """A (H, W) mask resized (nearest) to `size` = (height, width) and zero-padded to (side, side): the SAM
    processor's `segmentation_maps` path (tests/test_sam_training.py checks they agree), for many masks at once."""
    resized = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size[::-1], Image.Resampling.NEAREST))
    framed = np.zeros((side, side), dtype=bool)
    framed[: size[0], : size[1]] = resized > 127
    return framed


class _SamTaskBase(ImageTask):
    args: SamArguments

    def __init__(self, args: SamArguments) -> None:
        super().__init__(args)  # the processor is made with the model (its encoder resolution)
        self.side: int | None = None  # encoder input side
        self.frame_scale: float = 1.0  # prompt frame / encoder input

    def _source(self) -> str:
        return str(builtin_dataset_dir(BUILTIN_SA1B)) if self.args.dataset == SYNTHETIC else self.args.dataset

    def _load(self, split: str, columns: dict[str, str]):
        args = self.args
        return rename_columns(load_split(self._source(), split, config_name=args.dataset_config,
                                         streaming=args.streaming), columns)

    def _columns(self) -> dict[str, str]:
        return {self.args.image_column: "image"}

    def build_model(self, train_dataset):
        model = build_student(self.args)
        self.side = model.config.encoder_image_size
        self.frame_scale = model.config.prompt_image_size / self.side
        self.processor = image_processor_class("EfficientViTSamImageProcessor").for_config(model.config)
        return model

    def load_datasets(self):
        import os

        if os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true"):
            raise ValueError("SAM training runs with DDP (`accelerate launch --multi_gpu`), not FSDP: its models fit "
                             "one device, and the prompted loss wraps the model in a way FSDP evaluation cannot.")
        columns = self._columns()
        args = self.args
        return self._load(args.train_split, columns), (self._load(args.eval_split, columns) if args.eval_split
                                                       else None)

    def pretrained_model(self, module):
        sam = module.sam
        return sam.get_base_model() if hasattr(sam, "get_base_model") else sam

    def final_model(self, module, output_dir: Path):
        sam = module.sam
        if hasattr(sam, "merge_and_unload"):  # LoRA: keep the adapter, save the merged model
            sam.save_pretrained(str(output_dir / "lora_adapter"))
            merged = sam.merge_and_unload()
            # PEFT trained a copy of the prompt encoder; re-tie its (fixed) positional matrix to the model's.
            merged.prompt_encoder.shared_embedding = merged.shared_image_embedding
            return merged
        return sam

    def collate(self, samples):
        return {key: torch.from_numpy(np.stack([s[key] for s in samples])) for key in samples[0]}


class SamDistillationTask(_SamTaskBase):
    """Stage 1: the student's image encoder reproduces the teacher's embeddings (MSE)."""

    metric_name = "embedding_mse"

    def __init__(self, args: SamArguments) -> None:
        super().__init__(args)
        self.teacher = Teacher(args.teacher_model)

    def build_model(self, train_dataset):
        model = super().build_model(train_dataset)
        if self.args.copy_teacher_decoder and self.args.model_name_or_path is None:
            copied = copy_prompt_path(self.teacher.model, model)
            if copied:
                print(f"Copied the prompt encoder and mask decoder from the teacher ({copied} tensors).", flush=True)
        # Only the image encoder is distilled; the prompt encoder and mask decoder are kept as they are.
        model.requires_grad_(False)
        model.vision_encoder.requires_grad_(True)
        return model

    def training_module(self, model):
        return SamDistillationModule(model)

    def _sample(self, example, flip: bool) -> dict[str, np.ndarray]:
        image = as_pil(example["image"])
        if flip:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        sample = {"pixel_values": processed(self.processor, image)}
        if self.teacher.image_size != self.side:
            sample["teacher_pixel_values"] = processed(self.processor, image, encoder_size=self.teacher.image_size)
        return sample

    def train_sample(self, example, rng):
        return self._sample(example, flip=bool(rng.random() < 0.5))

    def eval_sample(self, example):
        return self._sample(example, flip=False)

    def _teacher_embeddings(self, batch) -> torch.Tensor:
        return self.teacher.embed(batch.get("teacher_pixel_values", batch["pixel_values"]))

    def loss(self, model, batch):
        return model(pixel_values=batch["pixel_values"], teacher_embeddings=self._teacher_embeddings(batch))

    def new_metrics(self, model):
        return EmbeddingDistillationMetrics()

    def update_metrics(self, model, batch, metrics):
        student = model.vision_encoder(batch["pixel_values"])
        metrics.update(student, match_embeddings(self._teacher_embeddings(batch), student))

    def format_metric(self, value: float) -> str:
        return f"{value:.5g}"


class SamFinetuneTask(_SamTaskBase):
    """Stage 2: end-to-end training with box / point prompts sampled from SA-1B-style masks."""

    metric_name = "box_miou"
    find_unused_parameters = True  # a batch prompted only by points leaves the box embeddings without gradient

    def _columns(self):
        return {self.args.image_column: "image", self.args.annotations_column: "annotations"}

    def build_model(self, train_dataset):
        model = super().build_model(train_dataset)
        if self.args.freeze_image_encoder:
            model.vision_encoder.requires_grad_(False)
        return model

    def training_module(self, model):
        return SamPromptTrainingModule(apply_lora(model, self.args) if self.args.lora_rank else model, self.args)

    def loss(self, model, batch):
        return model(**batch)

    def _decode(self, example, flip: bool, limit: int, rng: np.random.Generator | None):
        """(pixels, valid (h, w), scale, [(framed mask, annotation)]) for up to `limit` usable annotations."""
        from ..data.sa1b import decode_segmentation

        image = as_pil(example["image"])
        annotations = [a for a in example["annotations"] or []
                       if a.get("area") is None or a["area"] >= self.args.min_mask_area]
        if rng is not None:
            annotations = [annotations[i] for i in rng.permutation(len(annotations))]
        if flip:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        pixels, scale, valid = resize_and_pad(image, self.processor)
        pairs = []
        for annotation in annotations:
            if len(pairs) == limit:
                break
            mask = decode_segmentation(annotation["segmentation"], image.height, image.width)
            if mask.shape != (image.height, image.width):
                raise ValueError(f"An annotation's mask is {mask.shape[::-1]} (w, h) but its image is {image.size}.")
            mask = resize_mask(mask[:, ::-1] if flip else mask, self.side, valid)
            if mask.any():
                pairs.append((mask, annotation))
        return pixels, valid, scale, pairs

    def _stack_masks(self, pairs: list, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, side, side) masks and (rows,) weights: the real masks first, zero-weight rows after."""
        stacked = np.zeros((rows, self.side, self.side), dtype=np.uint8)
        weights = np.zeros(rows, dtype=np.float32)
        for i, (mask, _) in enumerate(pairs):
            stacked[i], weights[i] = mask, 1.0
        return stacked, weights

    def train_sample(self, example, rng):
        args = self.args
        rows = args.masks_per_image
        pixels, valid, _, pairs = self._decode(example, bool(rng.random() < 0.5), rows, rng)
        masks, weights = self._stack_masks(pairs, rows)
        use_boxes = bool(rng.random() < args.box_probability)
        positives = int(rng.integers(1, args.max_positive_points + 1))
        negatives = int(rng.integers(0, args.max_negative_points + 1))
        boxes = np.zeros((rows, 4), dtype=np.float32)
        points = np.zeros((rows, positives + negatives, 2), dtype=np.float32)
        labels = np.full((rows, positives + negatives), PADDING_LABEL, dtype=np.int64)
        labels[len(pairs):, 0] = 1  # zero-weight rows still need one real point to be a valid prompt
        for i, (mask, _) in enumerate(pairs):
            boxes[i] = jitter_box(mask_box(mask), rng, args.box_jitter, 20.0 / self.frame_scale)
            coords, kinds = sample_points(mask, rng, positives, negatives, valid)
            points[i, : len(coords)], labels[i, : len(kinds)] = coords, kinds
        return {"pixel_values": pixels, "masks": masks, "mask_weights": weights,
                "boxes": boxes * self.frame_scale, "points": points * self.frame_scale, "point_labels": labels,
                "use_boxes": np.array(use_boxes),
                "multimask": np.array(bool(rng.random() < args.multimask_probability))}

    def eval_sample(self, example):
        rows = self.args.max_eval_masks
        pixels, _, scale, pairs = self._decode(example, False, rows, None)
        masks, weights = self._stack_masks(pairs, rows)
        boxes = np.zeros((rows, 4), dtype=np.float32)
        points = np.zeros((rows, 1, 2), dtype=np.float32)
        for i, (mask, annotation) in enumerate(pairs):
            boxes[i] = mask_box(mask)
            recorded = annotation.get("point_coords")
            points[i, 0] = click_point(mask, np.asarray(recorded[0], np.float32) * scale if recorded else None)
        return {"pixel_values": pixels, "masks": masks, "mask_weights": weights,
                "boxes": boxes * self.frame_scale, "points": points * self.frame_scale}

    def collate(self, samples):
        """Stack samples; point sets of different lengths are padded with `PADDING_LABEL` slots."""
        if "point_labels" in samples[0]:
            longest = max(s["point_labels"].shape[1] for s in samples)
            for s in samples:
                missing = longest - s["point_labels"].shape[1]
                if missing:
                    s["points"] = np.pad(s["points"], ((0, 0), (0, missing), (0, 0)))
                    s["point_labels"] = np.pad(s["point_labels"], ((0, 0), (0, missing)),
                                               constant_values=PADDING_LABEL)
        return super().collate(samples)

    def new_metrics(self, model):
        return PromptedMaskMetrics()

    def update_metrics(self, model, batch, metrics):
        embeddings = model.vision_encoder(batch["pixel_values"])
        masks, valid = batch["masks"] > 0, batch["mask_weights"] > 0
        prompts = {"box": {"input_boxes": batch["boxes"]},
                   "point": {"input_points": batch["points"],
                             "input_labels": torch.ones(batch["points"].shape[:3], dtype=torch.long,
                                                        device=batch["points"].device)}}
        for kind, prompt in prompts.items():
            output = model(image_embeddings=embeddings, multimask_output=True, **prompt)
            best = output.iou_scores.argmax(-1)  # the output SAM itself would pick
            logits = output.pred_masks.gather(2, best[..., None, None, None].expand(
                -1, -1, 1, *output.pred_masks.shape[-2:]))[:, :, 0]
            full = F.interpolate(logits.float(), size=masks.shape[-2:], mode="bilinear", align_corners=False)
            metrics.update(kind, mask_iou(full > 0, masks)[valid])


def click_point(mask: np.ndarray, recorded: np.ndarray | None) -> np.ndarray:
    """The 1-click prompt of a mask: SA-1B's recorded point when it lies on the mask, else the mask pixel
    nearest the mask's centroid."""
    if recorded is not None:
        x, y = np.clip(np.round(recorded).astype(int), 0, np.array(mask.shape[::-1]) - 1)
        if mask[y, x]:
            return recorded
    ys, xs = np.nonzero(mask)
    centre = np.array([xs.mean(), ys.mean()])
    nearest = np.argmin((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2)
    return np.array([xs[nearest], ys[nearest]], dtype=np.float32)


def train_sam(args: SamArguments) -> dict[str, Any]:
    """Run the stage `args.stage` and return the final evaluation results."""
    task = SamDistillationTask(args) if args.stage == "distill" else SamFinetuneTask(args)
    return Trainer(task, args).train()


def main(argv: list[str] | None = None) -> int:
    return run_training(train_sam, SamArguments, argv)


__all__ = ["SamArguments", "SamDistillationTask", "SamFinetuneTask", "Teacher", "build_student", "train_sam", "main"]
