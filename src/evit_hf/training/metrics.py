"""Evaluation metrics computed in-package (the `evaluate` Hub metric scripts cannot be fetched offline).

Each metric keeps integer counts (a confusion matrix, hit counts) that are summed across processes before
`compute`, so a distributed evaluation gives exactly the single-process numbers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch


class SegmentationMetrics:
    """Confusion-matrix mIoU, per-class IoU and pixel accuracy, ignoring `ignore_index` pixels.

    Classes that never occur in the labels nor the predictions (union 0) are left out of the mean, as in
    mmsegmentation; they show as `nan` in the per-class table.
    """

    def __init__(self, num_labels: int, ignore_index: int = 255, id2label: dict[int, str] | None = None) -> None:
        if num_labels < 1:
            raise ValueError(f"num_labels must be positive, got {num_labels}.")
        self.num_labels = num_labels
        self.ignore_index = ignore_index
        self.id2label = id2label or {i: str(i) for i in range(num_labels)}
        self.confusion = torch.zeros(num_labels, num_labels, dtype=torch.int64)

    def update(self, predictions: torch.Tensor, labels: torch.Tensor) -> None:
        """Add (batch, H, W) predicted and true class maps of the same size."""
        if predictions.shape != labels.shape:
            raise ValueError(f"predictions {tuple(predictions.shape)} and labels {tuple(labels.shape)} differ.")
        valid = labels != self.ignore_index
        truth = labels[valid].long().cpu()
        predicted = predictions[valid].long().cpu()
        if truth.numel() and (truth.min() < 0 or truth.max() >= self.num_labels):
            raise ValueError(f"labels must lie in [0, {self.num_labels}) or equal {self.ignore_index}.")
        index = truth * self.num_labels + predicted
        self.confusion += torch.bincount(index, minlength=self.num_labels**2).view(self.num_labels, self.num_labels)

    def counts(self) -> torch.Tensor:
        return self.confusion

    def load_counts(self, counts: torch.Tensor) -> None:
        self.confusion = counts.to(torch.int64).cpu()

    def compute(self) -> dict[str, Any]:
        """`mean_iou`, `pixel_accuracy`, `mean_accuracy` and `per_class_iou` (`{label: iou}`)."""
        confusion = self.confusion.double()
        true_positive = confusion.diag()
        labelled = confusion.sum(1)
        union = labelled + confusion.sum(0) - true_positive
        iou = torch.where(union > 0, true_positive / union.clamp_min(1), torch.full_like(union, math.nan))
        accuracy = torch.where(labelled > 0, true_positive / labelled.clamp_min(1), torch.full_like(union, math.nan))
        total = labelled.sum()
        return {
            "mean_iou": float(iou.nanmean()) if (union > 0).any() else math.nan,
            "mean_accuracy": float(accuracy.nanmean()) if (labelled > 0).any() else math.nan,
            "pixel_accuracy": float(true_positive.sum() / total) if total > 0 else math.nan,
            "per_class_iou": {self.id2label.get(i, str(i)): float(iou[i]) for i in range(self.num_labels)},
        }

    def table(self) -> str:
        """A per-class IoU table (markdown) ending with the mean."""
        results = self.compute()
        width = max(len("class"), *(len(name) for name in results["per_class_iou"]))
        lines = [f"| {'class':<{width}} | IoU (%) |", f"|{'-' * (width + 2)}|--------:|"]
        for name, value in results["per_class_iou"].items():
            shown = "n/a" if math.isnan(value) else f"{100 * value:.2f}"
            lines.append(f"| {name:<{width}} | {shown:>7} |")
        lines.append(f"| {'**mean**':<{width}} | {100 * results['mean_iou']:>7.2f} |")
        return "\n".join(lines)


class ClassificationMetrics:
    """Top-1 and top-5 accuracy over integer class labels."""

    def __init__(self, num_labels: int) -> None:
        self.num_labels = num_labels
        self.hits = torch.zeros(3, dtype=torch.int64)  # top-1 hits, top-5 hits, samples

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Add (batch, num_labels) logits and (batch,) labels."""
        k = min(5, logits.shape[-1])
        top = logits.topk(k, dim=-1).indices.cpu()
        labels = labels.cpu().view(-1, 1)
        self.hits += torch.tensor(
            [int((top[:, :1] == labels).sum()), int((top == labels).any(-1).sum()), labels.shape[0]]
        )

    def counts(self) -> torch.Tensor:
        return self.hits

    def load_counts(self, counts: torch.Tensor) -> None:
        self.hits = counts.to(torch.int64).cpu()

    def compute(self) -> dict[str, Any]:
        top1, top5, total = (int(v) for v in self.hits)
        if total == 0:
            return {"top1_accuracy": math.nan, "top5_accuracy": math.nan, "samples": 0}
        return {"top1_accuracy": top1 / total, "top5_accuracy": top5 / total, "samples": total}

    def table(self) -> str:
        results = self.compute()
        return (
            f"| metric | value |\n|---|---:|\n| top-1 (%) | {100 * results['top1_accuracy']:.2f} |\n"
            f"| top-5 (%) | {100 * results['top5_accuracy']:.2f} |\n| samples | {results['samples']} |"
        )


class SuperResolutionMetrics:
    """Mean PSNR and SSIM on the Y channel (border crop = scale) of the model and of bicubic upscaling."""

    def __init__(self, scale: int) -> None:
        self.scale = scale
        self.sums = torch.zeros(5, dtype=torch.float64)  # psnr, ssim, bicubic psnr, bicubic ssim, images

    def update(self, reconstruction: torch.Tensor, low_resolution: torch.Tensor, high_resolution: torch.Tensor):
        """Add a batch: (batch, 3, H, W) model outputs and targets, (batch, 3, H/s, W/s) inputs, all in [0, 1]."""
        from PIL import Image

        from ..metrics.super_resolution import psnr_y, ssim_y

        def to_uint8(x: torch.Tensor) -> np.ndarray:
            return (x.float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()

        for sr, lr, hr in zip(reconstruction, low_resolution, high_resolution):
            target = to_uint8(hr)
            bicubic = np.asarray(Image.fromarray(to_uint8(lr)).resize(target.shape[1::-1], Image.BICUBIC))
            output = to_uint8(sr)
            self.sums += torch.tensor([
                psnr_y(output, target, self.scale), ssim_y(output, target, self.scale),
                psnr_y(bicubic, target, self.scale), ssim_y(bicubic, target, self.scale), 1.0,
            ], dtype=torch.float64)

    def counts(self) -> torch.Tensor:
        return self.sums

    def load_counts(self, counts: torch.Tensor) -> None:
        self.sums = counts.to(torch.float64).cpu()

    def compute(self) -> dict[str, Any]:
        images = float(self.sums[4])
        if images == 0:
            return {"psnr_y": math.nan, "ssim_y": math.nan, "images": 0}
        psnr, ssim, bicubic_psnr, bicubic_ssim = (float(v) / images for v in self.sums[:4])
        return {"psnr_y": psnr, "ssim_y": ssim, "bicubic_psnr_y": bicubic_psnr, "bicubic_ssim_y": bicubic_ssim,
                "psnr_gain_db": psnr - bicubic_psnr, "images": int(images)}

    def table(self) -> str:
        r = self.compute()
        if not r["images"]:
            return "no images"
        return (f"| x{self.scale} ({r['images']} images) | PSNR-Y (dB) | SSIM-Y |\n|---|---:|---:|\n"
                f"| bicubic | {r['bicubic_psnr_y']:.2f} | {r['bicubic_ssim_y']:.4f} |\n"
                f"| model | {r['psnr_y']:.2f} | {r['ssim_y']:.4f} |\n"
                f"| gain | {r['psnr_gain_db']:+.2f} | {r['ssim_y'] - r['bicubic_ssim_y']:+.4f} |")


class PromptedMaskMetrics:
    """Mean mask IoU of promptable segmentation per prompt kind (`box`, `point`), over all prompted masks."""

    KINDS = ("box", "point")

    def __init__(self) -> None:
        self.sums = torch.zeros(2 * len(self.KINDS), dtype=torch.float64)  # (IoU sum, masks) per kind

    def update(self, kind: str, ious: torch.Tensor) -> None:
        """Add the IoUs of the masks prompted with `kind`."""
        k = self.KINDS.index(kind)
        self.sums[2 * k] += float(ious.double().sum())
        self.sums[2 * k + 1] += ious.numel()

    def counts(self) -> torch.Tensor:
        return self.sums

    def load_counts(self, counts: torch.Tensor) -> None:
        self.sums = counts.to(torch.float64).cpu()

    def compute(self) -> dict[str, Any]:
        results: dict[str, Any] = {}
        for k, kind in enumerate(self.KINDS):
            masks = int(self.sums[2 * k + 1])
            results[f"{kind}_miou"] = float(self.sums[2 * k]) / masks if masks else math.nan
            results[f"{kind}_masks"] = masks
        return results

    def table(self) -> str:
        r = self.compute()
        rows = "\n".join(f"| {kind} | {r[f'{kind}_masks']} | {100 * r[f'{kind}_miou']:.2f} |" for kind in self.KINDS)
        return f"| prompt | masks | mIoU (%) |\n|---|---:|---:|\n{rows}"


class EmbeddingDistillationMetrics:
    """How close student image embeddings are to the teacher's: MSE, and mean cosine per embedding pixel."""

    def __init__(self) -> None:
        self.sums = torch.zeros(5, dtype=torch.float64)  # squared error, elements, cosine sum, pixels, images

    def update(self, student: torch.Tensor, teacher: torch.Tensor) -> None:
        """Add (batch, C, H, W) student and teacher embeddings."""
        student, teacher = student.double(), teacher.double()
        cosine = torch.nn.functional.cosine_similarity(student, teacher, dim=1)
        self.sums += torch.tensor([float((student - teacher).pow(2).sum()), student.numel(),
                                   float(cosine.sum()), cosine.numel(), student.shape[0]], dtype=torch.float64)

    def counts(self) -> torch.Tensor:
        return self.sums

    def load_counts(self, counts: torch.Tensor) -> None:
        self.sums = counts.to(torch.float64).cpu()

    def compute(self) -> dict[str, Any]:
        error, elements, cosine, pixels, images = (float(v) for v in self.sums)
        if not images:
            return {"embedding_mse": math.nan, "embedding_cosine": math.nan, "images": 0}
        return {"embedding_mse": error / elements, "embedding_cosine": cosine / pixels, "images": int(images)}

    def table(self) -> str:
        r = self.compute()
        return (f"| images | embedding MSE | mean cosine |\n|---:|---:|---:|\n"
                f"| {r['images']} | {r['embedding_mse']:.5g} | {r['embedding_cosine']:.4f} |")


__all__ = ["SegmentationMetrics", "ClassificationMetrics", "SuperResolutionMetrics", "PromptedMaskMetrics",
           "EmbeddingDistillationMetrics"]
