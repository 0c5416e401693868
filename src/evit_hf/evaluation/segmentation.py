"""Semantic segmentation evaluation: mIoU and per-class IoU with the original protocol.

Owns whole-image or sliding-window inference and the original post-processing (logits resized bicubically
to the label size, argmax). The preprocessing is `EfficientViTSegImageProcessor.for_short_side` (Cityscapes:
the image at full resolution; ADE20K: short side to 512, long side rounded up to a multiple of 32, bicubic). Counting is
`evit_hf.training.metrics.SegmentationMetrics` (dataset-level confusion matrix).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..models.efficientvit.modeling_efficientvit_blocks import resize_bicubic
from ..models.efficientvit.modeling_efficientvit_sr import tile_starts
from ..progress import track
from ..training.metrics import SegmentationMetrics
from ..training.transforms import image_processor_class, label_map, processed
from .runner import EvalResult, load_columns, load_model, positive, split_size

DIVISOR = 32  # total stride of the released models
# cityscapesScripts labels.py: labelId (0..33) -> trainId (0..18), 255 = not evaluated.
CITYSCAPES_TRAIN_IDS = np.array([255] * 7 + [0, 1, 255, 255, 2, 3, 4, 255, 255, 255, 5, 255, 6, 7, 8, 9, 10, 11, 12, 13,
                                 14, 15, 255, 255, 16, 17, 18], dtype=np.int64)


def cityscapes_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Cityscapes `*_gtFine_labelIds` values mapped to the 19 trainIds the models predict (others: 255)."""
    inside = (label_ids >= 0) & (label_ids < len(CITYSCAPES_TRAIN_IDS))
    return np.where(inside, CITYSCAPES_TRAIN_IDS[np.clip(label_ids, 0, len(CITYSCAPES_TRAIN_IDS) - 1)], 255)


@dataclass
class SegmentationSettings:
    """How images are fed to the model.

    `short_side`: resize (bicubic) as the original ADE20K protocol, None keeps the full resolution (Cityscapes).
    `cityscapes_label_ids`: labels are Cityscapes labelIds, mapped to trainIds as the original evaluation.
    `max_pixels`: images with more (resized) pixels are run as `window`-sized crops every `stride` pixels,
    their logits averaged where they overlap.
    """

    short_side: int | None = None
    reduce_labels: bool = False
    cityscapes_label_ids: bool = False
    ignore_index: int = 255
    max_pixels: int | None = None
    window: int = 1024
    stride: int = 768

    def processor(self):
        """The `EfficientViTSegImageProcessor` of these settings: short side `short_side`, or none resized."""
        return image_processor_class("EfficientViTSegImageProcessor").for_short_side(self.short_side)

    def __post_init__(self) -> None:
        if self.short_side is not None and self.short_side < DIVISOR:
            raise ValueError(f"--short-side must be at least {DIVISOR}, got {self.short_side}.")
        if self.max_pixels is not None:
            positive("--max-pixels", self.max_pixels)
        if self.window % DIVISOR or self.window <= 0:
            raise ValueError(f"--window must be a positive multiple of {DIVISOR}, got {self.window}.")
        if not 0 < self.stride <= self.window:
            raise ValueError(f"--stride must be in (0, window={self.window}], got {self.stride}.")


def preprocess(image: Image.Image, processor) -> torch.Tensor:
    """(1, 3, h, w) normalised pixels from the `EfficientViTSegImageProcessor` (see `SegmentationSettings`)."""
    return torch.from_numpy(processed(processor, image)).unsqueeze(0)


def _pad(pixels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Zero-pad (the mean colour after normalisation) bottom/right to (height, width)."""
    return torch.nn.functional.pad(pixels, (0, width - pixels.shape[-1], 0, height - pixels.shape[-2]))


def logits_at_input(model, pixels: torch.Tensor) -> torch.Tensor:
    """(1, classes, h, w) logits for (1, 3, h, w) pixels, padded to a multiple of 32 for the network and
    resized bicubically to the padded input, then cropped back to (h, w)."""
    height, width = pixels.shape[-2:]
    padded = _pad(pixels, math.ceil(height / DIVISOR) * DIVISOR, math.ceil(width / DIVISOR) * DIVISOR)
    logits = model(pixel_values=padded).logits
    return resize_bicubic(logits.float(), padded.shape[-2:])[..., :height, :width]


def sliding_window_logits(model, pixels: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """(1, classes, h, w) logits averaged over `window`-square crops every `stride` pixels (the last crop of
    each row/column flush with the image edge), so at most one window is in the model at a time."""
    height, width = pixels.shape[-2:]
    output: torch.Tensor | None = None
    count = torch.zeros(1, 1, height, width)
    for top in tile_starts(height, window, stride):
        for left in tile_starts(width, window, stride):
            crop = pixels[..., top:top + window, left:left + window]
            logits = logits_at_input(model, crop).cpu()
            if output is None:
                output = torch.zeros(1, logits.shape[1], height, width)
            h, w = crop.shape[-2:]
            output[..., top:top + h, left:left + w] += logits
            count[..., top:top + h, left:left + w] += 1
    assert output is not None
    return output / count


def predict(model, image: Image.Image, size: tuple[int, int], settings: SegmentationSettings,
            processor=None) -> torch.Tensor:
    """The (H, W) class map of `image` at `size` = (H, W) (the label size), as the original evaluation
    (`processor`: `settings.processor()`, made once per evaluation)."""
    pixels = preprocess(image, processor or settings.processor()).to(model.device)
    height, width = pixels.shape[-2:]
    with torch.inference_mode():
        if settings.max_pixels is not None and height * width > settings.max_pixels:
            logits = sliding_window_logits(model, pixels, settings.window, settings.stride)
        elif height % DIVISOR == 0 and width % DIVISOR == 0:
            logits = model(pixel_values=pixels).logits  # stride 8, resized straight to the label as the original
        else:
            logits = logits_at_input(model, pixels)
        return resize_bicubic(logits.float(), size).argmax(1)[0].cpu()


def evaluate_segmentation(model_name: str, data: str, *, split: str = "validation", image_column: str = "image",
                          label_column: str = "annotation", settings: SegmentationSettings | None = None,
                          max_samples: int | None = None, device: str = "cpu",
                          onnx: str | None = None) -> EvalResult:
    """mIoU, pixel accuracy and per-class IoU of `model_name` on a split of `data` (with `onnx`: of that
    exported file of the model, in ONNX Runtime)."""
    settings = settings or SegmentationSettings()
    model = load_model("AutoModelForSemanticSegmentation", model_name, device, onnx=onnx)
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    metrics = SegmentationMetrics(model.config.num_labels, settings.ignore_index, id2label)
    dataset = load_columns(data, split, {image_column: "image", label_column: "label"}, max_samples)
    processor = settings.processor()
    images = 0
    for example in track(dataset, "eval seg", total=split_size(dataset, max_samples)):
        labels = label_map(example["label"], settings.reduce_labels, settings.ignore_index)
        if settings.cityscapes_label_ids:
            labels = cityscapes_train_ids(labels)
        prediction = predict(model, example["image"], labels.shape, settings, processor)
        try:
            metrics.update(prediction[None], torch.from_numpy(labels)[None])
        except ValueError as err:
            raise ValueError(f"{err} Check --reduce-labels and the label column ({label_column!r}).") from err
        images += 1
    if int(metrics.confusion.sum()) == 0:
        raise ValueError(f"No labelled pixels in split {split!r} of {data!r}.")
    results = metrics.compute()
    results["images"] = images
    results["pixels"] = int(metrics.confusion.sum())
    return EvalResult("seg", model_name, data, results, metrics.table(),
                      settings=vars(settings) | {"split": split, "onnx": onnx})


__all__ = [
    "CITYSCAPES_TRAIN_IDS",
    "SegmentationSettings",
    "cityscapes_train_ids",
    "evaluate_segmentation",
    "logits_at_input",
    "predict",
    "preprocess",
    "sliding_window_logits",
]
