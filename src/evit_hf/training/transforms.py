"""Training augmentation and evaluation preprocessing on PIL/numpy (no torchvision).

Every random choice draws from a `numpy.random.Generator` the trainer seeds per sample, so a sample gets the
same augmentation whether or not the run was interrupted and resumed.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB copy of any PIL image (grayscale, palette, RGBA flattened on black)."""
    if not isinstance(image, Image.Image):
        image = Image.fromarray(np.asarray(image))
    return image if image.mode == "RGB" else image.convert("RGB")


def normalize(image: Image.Image) -> np.ndarray:
    """(3, H, W) float32 with the ImageNet mean/std of the original recipes."""
    array = np.asarray(image, dtype=np.float32) / 255.0
    return np.ascontiguousarray(((array - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1))


def label_map(annotation, reduce_labels: bool = False, ignore_index: int = 255) -> np.ndarray:
    """(H, W) int64 class ids from a mask image; `reduce_labels` maps 0 to ignore and shifts the rest down."""
    array = np.asarray(annotation)
    if array.ndim == 3:  # an RGB-saved mask with equal channels
        array = array[..., 0]
    array = array.astype(np.int64)
    if reduce_labels:
        array = np.where((array == 0) | (array == ignore_index), ignore_index, array - 1)
    return array


def _resize_pair(image: Image.Image, labels: np.ndarray, size: tuple[int, int]) -> tuple[Image.Image, np.ndarray]:
    width, height = size
    image = image.resize((width, height), Image.BILINEAR)
    labels = np.asarray(Image.fromarray(labels.astype(np.int32)).resize((width, height), Image.NEAREST))
    return image, labels.astype(np.int64)


def segmentation_train_transform(
    image: Image.Image,
    labels: np.ndarray,
    rng: np.random.Generator,
    *,
    crop_size: tuple[int, int],
    scale_range: tuple[float, float] = (0.5, 2.0),
    base_short_side: int | None = None,
    ignore_index: int = 255,
) -> tuple[np.ndarray, np.ndarray]:
    """Random scale, random crop (padded with ignore labels when the image is smaller) and horizontal flip.

    The scale multiplies `base_short_side` (or the image's own short side), as in the mmsegmentation recipes
    the EfficientViT-Seg results follow. Returns the normalised (3, h, w) image and (h, w) labels.
    """
    image = to_rgb(image)
    if image.size[::-1] != labels.shape:
        raise ValueError(f"Image size {image.size[::-1]} and segmentation map size {labels.shape} differ.")
    width, height = image.size
    base = base_short_side / min(width, height) if base_short_side else 1.0
    scale = base * rng.uniform(*scale_range)
    image, labels = _resize_pair(image, labels, (max(1, round(width * scale)), max(1, round(height * scale))))
    pixels = normalize(image)
    crop_h, crop_w = crop_size
    pad_h, pad_w = max(0, crop_h - pixels.shape[1]), max(0, crop_w - pixels.shape[2])
    if pad_h or pad_w:  # zero = the mean colour after normalisation
        pixels = np.pad(pixels, ((0, 0), (0, pad_h), (0, pad_w)))
        labels = np.pad(labels, ((0, pad_h), (0, pad_w)), constant_values=ignore_index)
    top = int(rng.integers(0, pixels.shape[1] - crop_h + 1))
    left = int(rng.integers(0, pixels.shape[2] - crop_w + 1))
    pixels = pixels[:, top : top + crop_h, left : left + crop_w]
    labels = labels[top : top + crop_h, left : left + crop_w]
    if rng.random() < 0.5:
        pixels, labels = pixels[:, :, ::-1], labels[:, ::-1]
    return np.ascontiguousarray(pixels), np.ascontiguousarray(labels)


def segmentation_eval_transform(
    image: Image.Image, labels: np.ndarray, *, short_side: int | None = None, divisor: int = 32,
    ignore_index: int = 255,
) -> tuple[np.ndarray, np.ndarray]:
    """Optionally resize the short side, then pad both sides to a multiple of `divisor` with ignore labels."""
    image = to_rgb(image)
    if image.size[::-1] != labels.shape:
        raise ValueError(f"Image size {image.size[::-1]} and segmentation map size {labels.shape} differ.")
    if short_side:
        width, height = image.size
        scale = short_side / min(width, height)
        image, labels = _resize_pair(image, labels, (round(width * scale), round(height * scale)))
    pixels = normalize(image)
    pad_h = -pixels.shape[1] % divisor
    pad_w = -pixels.shape[2] % divisor
    if pad_h or pad_w:
        pixels = np.pad(pixels, ((0, 0), (0, pad_h), (0, pad_w)))
        labels = np.pad(labels, ((0, pad_h), (0, pad_w)), constant_values=ignore_index)
    return pixels, labels


def classification_train_transform(
    image: Image.Image,
    rng: np.random.Generator,
    *,
    size: int,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> np.ndarray:
    """Random resized crop (area `scale`, aspect `ratio`, bicubic) and horizontal flip."""
    image = to_rgb(image)
    width, height = image.size
    area = width * height
    box = (0, 0, width, height)
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            box = (left, top, left + w, top + h)
            break
    image = image.resize((size, size), Image.BICUBIC, box=box)
    if rng.random() < 0.5:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
    return normalize(image)


def classification_eval_transform(image: Image.Image, *, size: int, crop_pct: float = 1.0) -> np.ndarray:
    """The original evaluation: bicubic resize of the short side to `ceil(size / crop_pct)`, center crop."""
    image = to_rgb(image)
    width, height = image.size
    short = math.ceil(size / crop_pct)
    scale = short / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    image = image.resize((new_w, new_h), Image.BICUBIC)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return normalize(image.crop((left, top, left + size, top + size)))


def to_unit(image: Image.Image) -> np.ndarray:
    """(3, H, W) float32 in [0, 1] of an RGB image (super-resolution inputs and targets are not normalised)."""
    return np.ascontiguousarray(np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0)


def bicubic_downscale(image: Image.Image, scale: int) -> Image.Image:
    """The SR degradation: PIL bicubic downscaling (antialiased, like MATLAB's `imresize` the benchmarks use)."""
    return image.resize((image.width // scale, image.height // scale), Image.BICUBIC)


def super_resolution_train_transform(
    image: Image.Image, rng: np.random.Generator, *, patch_size: int, scale: int
) -> tuple[np.ndarray, np.ndarray]:
    """A random high-resolution patch under one of the 8 flips/rotations, and its bicubic-downscaled input.

    Returns (low-resolution (3, p/s, p/s), high-resolution (3, p, p)) float32 in [0, 1].
    """
    image = to_rgb(image)
    if min(image.size) < patch_size:  # small photographs are enlarged rather than dropped
        factor = patch_size / min(image.size)
        image = image.resize((math.ceil(image.width * factor), math.ceil(image.height * factor)), Image.BICUBIC)
    left = int(rng.integers(0, image.width - patch_size + 1))
    top = int(rng.integers(0, image.height - patch_size + 1))
    patch = image.crop((left, top, left + patch_size, top + patch_size))
    transform = int(rng.integers(8))
    if transform & 1:
        patch = patch.transpose(Image.FLIP_LEFT_RIGHT)
    if transform >> 1:
        patch = patch.transpose((Image.ROTATE_90, Image.ROTATE_180, Image.ROTATE_270)[(transform >> 1) - 1])
    return to_unit(bicubic_downscale(patch, scale)), to_unit(patch)


def super_resolution_eval_transform(image: Image.Image, *, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """The whole image cropped to a multiple of `scale` and its bicubic-downscaled input, in [0, 1]."""
    image = to_rgb(image)
    width, height = image.width - image.width % scale, image.height - image.height % scale
    image = image.crop((0, 0, width, height))
    return to_unit(bicubic_downscale(image, scale)), to_unit(image)


__all__ = [
    "bicubic_downscale",
    "super_resolution_eval_transform",
    "super_resolution_train_transform",
    "classification_eval_transform",
    "classification_train_transform",
    "label_map",
    "normalize",
    "segmentation_eval_transform",
    "segmentation_train_transform",
    "to_rgb",
]
