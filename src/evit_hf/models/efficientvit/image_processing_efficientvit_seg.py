"""Segmentation pre- and post-processing of the original EfficientViT-Seg evaluation, on the PIL backend.

Owns `EfficientViTSegImageProcessor` (a `SegformerImageProcessorPil` subclass, so no torchvision):

- Cityscapes: resize to a fixed 1024x2048 (bicubic), rescale to [0, 1], ImageNet mean/std.
- ADE20K: resize the short side to 512 and the long side to `ceil(long / short * 512 / 32) * 32` (bicubic),
  so both sides are multiples of 32; `do_reduce_labels` maps the "other" class 0 to the ignore index 255.
  `for_short_side(n)` applies that rule at another scale (training saves it; `None`: no resizing).
- `post_process_semantic_segmentation`: bicubic (align_corners=False, fp32) upsampling of the stride-8
  logits to each target size, then argmax, as the original evaluation does; for the labels alone only the
  classes that can win somewhere are upsampled (`upsampled_argmax`: identical labels). `batch_output` and
  `sizes_per_image` check the inputs of this and of the super-resolution post-processing.

The original resizes with OpenCV's INTER_CUBIC; PIL's bicubic filter antialiases when it downsamples, so
pixel values differ slightly on downscaled images (identical sizes and conventions otherwise).
Requires transformers >= 5 (PIL backends); importing it on 4.57 raises ImportError.
"""

from __future__ import annotations

import math

import numpy as np
from transformers.image_utils import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    ChannelDimension,
    PILImageResampling,
    SizeDict,
)
from transformers.models.segformer.image_processing_pil_segformer import (
    SegformerImageProcessorKwargs,
    SegformerImageProcessorPil,
)

try:
    import PIL.Image
except ImportError:  # pragma: no cover - the PIL backend requires pillow
    PIL = None

# Dataset presets of the original evaluation (applications/efficientvit_seg/eval_efficientvit_seg_model.py).
DATASET_PRESETS: dict[str, dict] = {
    "cityscapes": {"size": {"height": 1024, "width": 2048}, "do_reduce_labels": False},
    "ade20k": {"size": {"shortest_edge": 512}, "do_reduce_labels": True},
}

_HIGH_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def batch_output(outputs, name: str):
    """The (batch, channels, height, width) tensor `name` of model `outputs` (or `outputs` itself, a tensor)."""
    import torch

    tensor = outputs
    if not isinstance(outputs, torch.Tensor):
        tensor = getattr(outputs, name) if hasattr(outputs, name) else outputs[name]
    if tensor.ndim != 4:
        raise ValueError(f"Expected {name} of shape (batch, channels, height, width), got {tuple(tensor.shape)}.")
    return tensor


def sizes_per_image(sizes, batch: int, name: str) -> list | None:
    """`sizes` (one (height, width) per image, a list or a tensor) as a list, checked against the batch size."""
    if sizes is None:
        return None
    sizes = sizes.tolist() if hasattr(sizes, "tolist") else list(sizes)
    if len(sizes) != batch:
        raise ValueError(f"Got {len(sizes)} {name} for a batch of {batch} images; pass one (height, width) per image.")
    return sizes


class EfficientViTSegImageProcessorKwargs(SegformerImageProcessorKwargs, total=False):
    r"""
    size_divisor (`int`, *optional*, defaults to `self.size_divisor`):
        With a `shortest_edge` size, both output sides are rounded up to a multiple of this (32 for the
        released models, the network's total stride).
    """

    size_divisor: int


def short_side_resize_shape(height: int, width: int, short_side: int, divisor: int) -> tuple[int, int]:
    """The original ADE20K resize shape (height, width).

    The short side goes to `short_side` and the long side to `ceil(long / short * short_side / d) * d`.
    """
    target = math.ceil(short_side / divisor) * divisor
    if height < width:
        return target, math.ceil(width / height * target / divisor) * divisor
    return math.ceil(height / width * target / divisor) * divisor, target


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """High-bit-depth or float pixels to uint8 (16-bit ints are divided by 257, [0, 1] floats scaled)."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        if array.size and float(np.nanmax(array)) <= 1.0:
            array = array * 255.0
        return np.clip(np.nan_to_num(array), 0, 255).round().astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        if array.size and array.max() > 255:
            array = array / 257.0
        return np.clip(array, 0, 255).round().astype(np.uint8)
    raise ValueError(f"Unsupported image dtype {array.dtype}; expected uint8, uint16 or float pixels.")


# The largest negative weight mass of a 2D bicubic kernel (A = -0.75; at t = 0.5 each axis has taps -3/32,
# 19/32, 19/32, -3/32): 2 * (38/32) * (6/32) = 0.4453. An upsampled value lies in [min - N * range,
# max + N * range] of the values under its taps.
_BICUBIC_NEGATIVE_MASS = 0.4454


def _window_max(values, window: int, dim: int):
    """Max over `window` consecutive entries along `dim` (output length `size - window + 1`)."""
    length = values.shape[dim] - window + 1
    result = values.narrow(dim, 0, length).clone()
    for offset in range(1, window):
        result = result.maximum(values.narrow(dim, offset, length))
    return result


def _anchor_rows(in_size: int, out_size: int):
    """Per output index, the first of the 5 input indices that hold its 4 bicubic taps (align_corners=False):
    `floor(source) - 1` with the source a hair low, so torch's float rounding can only move its taps one up."""
    import torch

    scale = in_size / out_size
    source = (torch.arange(out_size, dtype=torch.float64) + 0.5) * scale - 0.5
    return (torch.floor(source - 1e-3).long() - 1).clamp(-3, in_size - 1)


def upsampled_argmax(scores, size: tuple[int, int], fallback_share: float = 1 / 3):
    """The labels `F.interpolate(scores[None], size, mode="bicubic").argmax` of (classes, h, w) scores, upsampling
    only the classes that can win somewhere (identical labels, ties to the first class).

    Each pixel's value lies between the minimum and maximum of its 4x4 taps widened by the kernel's negative
    weight mass times their range (`_BICUBIC_NEGATIVE_MASS`; plus 1e-4 of the largest score for rounding), so
    per low-resolution 5x5 window the classes whose upper bound reaches the best lower bound are the only
    candidates. Where one class is left, that is the label (no upsampling); elsewhere the candidate classes
    are upsampled by torch's own kernel and compared exactly. Where more than `fallback_share` of the classes
    are candidates (an untrained model, ADE20K's 150 close classes), or the scores are not finite, all
    classes are upsampled as before, with `max(dim=0).indices`.
    """
    import torch
    import torch.nn.functional as F

    def reference(classes=None):
        chosen = scores if classes is None else scores[classes]
        return F.interpolate(chosen[None], size=size, mode="bicubic", align_corners=False)[0]

    num_classes = scores.shape[0]
    if not bool(torch.isfinite(scores).all()):
        return reference().max(dim=0).indices
    padded = F.pad(scores[None], (3, 4, 3, 4), mode="replicate")[0]  # index p holds row p - 3
    high = _window_max(_window_max(padded, 5, 1), 5, 2)  # index q: rows q - 3 .. q + 1
    low = -_window_max(_window_max(-padded, 5, 1), 5, 2)
    spread = _BICUBIC_NEGATIVE_MASS * (high - low)
    lower = low - spread
    best_lower, label_of_window = lower.max(dim=0)
    tolerance = 1e-4 * float(scores.abs().max())
    candidates = (high + spread) >= best_lower - tolerance  # (classes, windows)
    rows = _anchor_rows(scores.shape[1], size[0]) + 3
    cols = _anchor_rows(scores.shape[2], size[1]) + 3
    unsure_windows = candidates.sum(dim=0) > 1
    used = torch.zeros_like(unsure_windows)
    used[rows.unique()[:, None], cols.unique()[None, :]] = True
    classes = candidates[:, unsure_windows & used].any(dim=1).nonzero()[:, 0]
    if len(classes) > max(1.0, fallback_share * num_classes):
        return reference().max(dim=0).indices
    labels = label_of_window.index_select(0, rows).index_select(1, cols)
    y, x = unsure_windows.index_select(0, rows).index_select(1, cols).nonzero(as_tuple=True)
    if len(y) == 0:
        return labels
    exact = torch.stack([reference(c.reshape(1))[0][y, x] for c in classes])
    exact = exact.masked_fill(~candidates[classes][:, rows[y], cols[x]], float("-inf"))
    labels[y, x] = classes[exact.max(dim=0).indices]
    return labels


class EfficientViTSegImageProcessor(SegformerImageProcessorPil):
    r"""
    Image processor for EfficientViT semantic segmentation models (PIL backend, no torchvision needed).

    Defaults reproduce the original Cityscapes evaluation (fixed 1024x2048, bicubic, ImageNet mean/std);
    `EfficientViTSegImageProcessor.for_dataset("ade20k")` gives the ADE20K one (short side 512, long side a
    multiple of 32, `do_reduce_labels=True`). Grayscale, RGBA (composited on white), palette and 16-bit
    images are converted to RGB.
    """

    # `save_pretrained` writes the `auto_map` and this file (with the files it imports) into the folder, so
    # that `AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)` works where evit-hf is not installed.
    _auto_class = "AutoImageProcessor"

    valid_kwargs = EfficientViTSegImageProcessorKwargs
    model_input_names = ["pixel_values"]
    resample = PILImageResampling.BICUBIC
    image_mean = list(IMAGENET_DEFAULT_MEAN)
    image_std = list(IMAGENET_DEFAULT_STD)
    size = {"height": 1024, "width": 2048}
    size_divisor = 32
    default_to_square = False
    do_resize = True
    do_rescale = True
    do_normalize = True
    do_convert_rgb = True
    do_reduce_labels = False

    @classmethod
    def for_dataset(cls, dataset: str = "cityscapes", **kwargs) -> EfficientViTSegImageProcessor:
        """The original evaluation preprocessing of `dataset` (`"cityscapes"`, `"ade20k"`), with overrides."""
        name = dataset.lower().removeprefix("seg-")
        name = name.rsplit("-", 1)[-1]  # also accept a variant name such as "seg-b1-ade20k"
        if name not in DATASET_PRESETS:
            raise ValueError(
                f"Unknown segmentation dataset {dataset!r}; expected one of {sorted(DATASET_PRESETS)}."
            )
        return cls(**{**DATASET_PRESETS[name], **kwargs})

    @classmethod
    def for_short_side(cls, short_side: int | None, **kwargs) -> EfficientViTSegImageProcessor:
        """The ADE20K rule at another scale: the short side to `short_side`, the long side up to a multiple of
        `size_divisor`; `None` keeps every image at its own size (the Cityscapes protocol at full resolution)."""
        if short_side is None:
            return cls(do_resize=False, **kwargs)
        if short_side <= 0:
            raise ValueError(f"`short_side` must be positive, got {short_side}.")
        return cls(size={"shortest_edge": int(short_side)}, **kwargs)

    def process_image(self, image, do_convert_rgb: bool | None = None, input_data_format=None, **kwargs):
        """Bring one input to a channels-first uint8 RGB array; reject what cannot be an image."""
        if PIL is not None and isinstance(image, PIL.Image.Image):
            if image.width == 0 or image.height == 0:
                raise ValueError(f"Got an empty image of size {image.width}x{image.height}.")
            if do_convert_rgb and image.mode in _HIGH_BIT_MODES:
                # PIL's own conversion clips 16-bit values at 255; rescale to 8 bits instead.
                image = _to_uint8(np.asarray(image))
        elif hasattr(image, "numpy") and hasattr(image, "detach"):  # torch tensor
            image = image.detach().cpu().numpy()
        if isinstance(image, np.ndarray):
            image = self._check_array(image, do_convert_rgb)
            if do_convert_rgb:  # now (H, W, 3) uint8
                input_data_format = ChannelDimension.LAST
        return super().process_image(
            image, do_convert_rgb=do_convert_rgb, input_data_format=input_data_format, **kwargs
        )

    @staticmethod
    def _check_array(image: np.ndarray, do_convert_rgb: bool | None) -> np.ndarray:
        if image.ndim not in (2, 3):
            raise ValueError(f"Expected an image of shape (H, W), (H, W, C) or (C, H, W), got {image.shape}.")
        if image.size == 0:
            raise ValueError(f"Got an empty image of shape {image.shape}.")
        if not do_convert_rgb:
            return image
        if image.ndim == 2:
            image = image[..., None]
        elif image.shape[-1] not in (1, 3, 4) and image.shape[0] in (1, 3, 4):
            image = np.moveaxis(image, 0, -1)
        channels = image.shape[-1]
        if channels not in (1, 3, 4):
            raise ValueError(
                f"Expected 1 (grayscale), 3 (RGB) or 4 (RGBA) channels, got an image of shape {image.shape}."
            )
        image = _to_uint8(image)
        if channels == 1:
            image = np.repeat(image, 3, axis=-1)
        return image

    def _prepare_images_structure(self, images, expected_ndims: int = 3):
        """Accept 2D (grayscale) arrays as single images; reject arrays of more than 4 dims clearly."""
        if hasattr(images, "detach") and hasattr(images, "numpy"):  # torch tensor
            images = images.detach().cpu().numpy()
        if isinstance(images, np.ndarray):
            if images.ndim > expected_ndims + 1:
                raise ValueError(
                    f"Expected one image of {expected_ndims} dims or a batch of {expected_ndims + 1}, got an "
                    f"array of shape {images.shape}."
                )
            if expected_ndims == 3 and images.ndim == 2:
                images = images[..., None]  # (H, W) grayscale -> (H, W, 1)
        return super()._prepare_images_structure(images, expected_ndims=expected_ndims)

    def reduce_label(self, image: np.ndarray) -> np.ndarray:
        """0 ("other") -> 255 (ignored), k -> k - 1, on a copy (the parent edits its input in place)."""
        return super().reduce_label(np.array(image, copy=True))

    def normalize(self, image: np.ndarray, mean, std, **kwargs) -> np.ndarray:
        """transformers' `(image - mean) / std` on a channels-first float image, channel by channel: the same
        float operations, without the transposed strided views (33 -> 11 ms at 3 x 1024 x 2048)."""
        channels = image.shape[0] if isinstance(image, np.ndarray) and image.ndim == 3 else 0
        if channels not in (1, 3) or not np.issubdtype(image.dtype, np.floating) or kwargs:
            return super().normalize(image, mean, std, **kwargs)
        mean = np.broadcast_to(np.asarray(mean, dtype=image.dtype), (channels,))
        std = np.broadcast_to(np.asarray(std, dtype=image.dtype), (channels,))
        result = np.empty_like(image)
        for channel in range(channels):
            np.subtract(image[channel], mean[channel], out=result[channel])
            np.divide(result[channel], std[channel], out=result[channel])
        return result

    def resize(
        self, image: np.ndarray, size: SizeDict, resample=None, reducing_gap=None, **kwargs
    ) -> np.ndarray:
        """Fixed (height, width), or the original short-side resize when `size` has only `shortest_edge`."""
        if size.shortest_edge and not size.longest_edge:
            height, width = image.shape[-2:]
            new_height, new_width = short_side_resize_shape(
                height, width, size.shortest_edge, self.size_divisor or 1
            )
            size = SizeDict(height=new_height, width=new_width)
        if (size.height, size.width) == tuple(image.shape[-2:]):
            return image  # PIL would return a copy (Cityscapes photos are 1024x2048 already)
        return super().resize(image, size, resample=resample, reducing_gap=reducing_gap, **kwargs)

    def post_process_semantic_segmentation(
        self,
        outputs,
        target_sizes: list[tuple[int, int]] | None = None,
        return_segmentation_scores: bool = False,
    ):
        """
        Turn `EfficientViTForSemanticSegmentation` outputs into per-image class maps.

        Args:
            outputs: model outputs with `logits` (batch, num_labels, h, w) at stride 8.
            target_sizes: one (height, width) per image (e.g. the original image sizes); the logits are
                upsampled there (bicubic, align_corners=False, fp32) before the argmax. Without it the maps
                stay at the logits' resolution.
            return_segmentation_scores: also return the (upsampled) logits of each image.

        Returns:
            A list of (height, width) int64 tensors of class ids, or with `return_segmentation_scores=True` of
            `SemanticSegmentationPostProcessorOutput` (fields `segmentation`, `segmentation_scores`).
        """
        import torch.nn.functional as F
        from transformers.image_processing_outputs import SemanticSegmentationPostProcessorOutput

        logits = batch_output(outputs, "logits")
        target_sizes = sizes_per_image(target_sizes, len(logits), "target sizes")
        results = []
        for index in range(len(logits)):
            scores = logits[index : index + 1].float()
            if target_sizes is not None:
                size = tuple(int(s) for s in target_sizes[index])
                if len(size) != 2 or min(size) <= 0:
                    raise ValueError(
                        f"Each target size must be a positive (height, width), got {target_sizes[index]}."
                    )
                if tuple(scores.shape[-2:]) != size and not return_segmentation_scores:
                    results.append(upsampled_argmax(scores[0], size))
                    continue
                if tuple(scores.shape[-2:]) != size:
                    scores = F.interpolate(scores, size=size, mode="bicubic", align_corners=False)
            scores = scores[0]
            # `max(dim=0).indices` is `argmax(dim=0)` (the first maximum, NaN included), without argmax's slow
            # strided reduction over the class dim: 2.8x faster on 19 x 1024 x 2048 (616 -> 218 ms, loaded CPU).
            results.append(
                SemanticSegmentationPostProcessorOutput(
                    data={"segmentation": scores.max(dim=0).indices, "segmentation_scores": scores}
                )
            )
        if not return_segmentation_scores:
            return [getattr(result, "segmentation", result) for result in results]
        return results


__all__ = [
    "DATASET_PRESETS",
    "EfficientViTSegImageProcessor",
    "batch_output",
    "short_side_resize_shape",
    "sizes_per_image",
    "upsampled_argmax",
]
