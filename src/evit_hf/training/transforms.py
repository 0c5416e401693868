"""Training augmentation around the models' own image processors (PIL/numpy, no torchvision).

No train/serve skew by construction: every deterministic step (RGB conversion, resizing, rescaling,
normalisation) is done by the image processor that is saved with the trained model. Evaluation samples are
`processor(image)` itself; training augmentation only draws the random parts (crop box, scale, flip, rotation)
and hands the pixels it chose to the same processor. Label maps and masks are resized nearest-neighbour like
the processors' `segmentation_maps` path (tests/test_training.py checks they are equal), on int32 so that any
label value survives (the processors' path goes through uint8).

Every random choice draws from a `numpy.random.Generator` the trainer seeds per sample, so a sample gets the
same augmentation whether or not the run was interrupted and resumed.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np
from PIL import Image


def image_processor_class(name: str) -> type:
    """The image processor class `name` of `evit_hf.models.efficientvit`, with the fix named when the installed
    transformers has no PIL image-processor backend (4.57)."""
    from ..models import efficientvit

    processor_class = getattr(efficientvit, name)
    if processor_class is None:
        raise ImportError(f"{name} (the preprocessing of training and evaluation) needs transformers >= 5: "
                          "pip install -U 'transformers>=5'.")
    return processor_class


def as_pil(image: Any) -> Image.Image:
    """A PIL image of any input (arrays converted), in its own mode: the processors convert to RGB."""
    return image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))


def rgb_image(image: Any, processor) -> Image.Image:
    """`image` as 8-bit RGB, converted the way `processor` converts its inputs (transparency composited on
    white, 16-bit images scaled), for augmentations that resample pixels themselves."""
    array = processor.process_image(as_pil(image), do_convert_rgb=True)
    return Image.fromarray(np.ascontiguousarray(np.moveaxis(array, 0, -1)))


def processed(processor, image, **overrides: Any) -> np.ndarray:
    """The (C, H, W) float32 `pixel_values` of one image from `processor`, with call-time `overrides`
    (e.g. `size=...`, `do_center_crop=False`) as `processor(image, **overrides)` takes them."""
    return np.asarray(processor(image, **overrides)["pixel_values"][0], dtype=np.float32)


def label_map(annotation, reduce_labels: bool = False, ignore_index: int = 255) -> np.ndarray:
    """(H, W) int64 class ids from a mask image; `reduce_labels` maps 0 to ignore and shifts the rest down."""
    array = np.asarray(annotation)
    if array.ndim == 3:  # an RGB-saved mask with equal channels
        array = array[..., 0]
    array = array.astype(np.int64)
    if reduce_labels:
        array = np.where((array == 0) | (array == ignore_index), ignore_index, array - 1)
    return array


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) labels resized nearest-neighbour to `size` = (height, width), as int64."""
    if labels.shape == tuple(size):
        return labels.astype(np.int64)
    resized = Image.fromarray(labels.astype(np.int32)).resize(size[::-1], Image.Resampling.NEAREST)
    return np.asarray(resized).astype(np.int64)


def _check_pair(image: Image.Image, labels: np.ndarray) -> None:
    if image.size[::-1] != labels.shape:
        raise ValueError(f"Image size {image.size[::-1]} and segmentation map size {labels.shape} differ.")


# ------------------------------------------------------------------------------------------ classification
def random_resized_crop_box(size: tuple[int, int], rng: np.random.Generator, scale: tuple[float, float],
                            ratio: tuple[float, float]) -> tuple[int, int, int, int]:
    """A (left, top, right, bottom) box of area fraction in `scale` and aspect in `ratio` (log-uniform) inside an
    image of `size` = (width, height), after 10 tries the whole image (torchvision's RandomResizedCrop draws)."""
    width, height = size
    area = width * height
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            return left, top, left + w, top + h
    return 0, 0, width, height


def classification_train_transform(
    image,
    rng: np.random.Generator,
    processor,
    *,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> np.ndarray:
    """Random resized crop and horizontal flip: the crop box (area `scale`, aspect `ratio`) is cut out, then the
    `EfficientViTImageProcessor` resizes it to its `crop_size` (bicubic) and normalises; the flip mirrors the
    result. Returns (3, crop height, crop width) float32."""
    image = as_pil(image)
    crop = image.crop(random_resized_crop_box(image.size, rng, scale, ratio))
    size = processor.crop_size
    pixels = processed(processor, crop, size={"height": size.height, "width": size.width}, do_center_crop=False)
    if rng.random() < 0.5:
        pixels = pixels[:, :, ::-1]
    return np.ascontiguousarray(pixels)


def classification_eval_transform(image, processor) -> np.ndarray:
    """The `EfficientViTImageProcessor` itself (the original evaluation: short side to
    `ceil(size / crop_pct)`, bicubic, center crop, ImageNet mean/std)."""
    return processed(processor, image)


# -------------------------------------------------------------------------------------------- segmentation
def segmentation_train_transform(
    image,
    labels: np.ndarray,
    rng: np.random.Generator,
    processor,
    *,
    crop_size: tuple[int, int],
    scale_range: tuple[float, float] = (0.5, 2.0),
    base_short_side: int | None = None,
    ignore_index: int = 255,
) -> tuple[np.ndarray, np.ndarray]:
    """Random scale, random crop (padded with ignore labels when the image is smaller) and horizontal flip.

    The scale multiplies `base_short_side` (or the image's own short side), as in the mmsegmentation recipes
    the EfficientViT-Seg results follow; the `EfficientViTSegImageProcessor` resizes the image to that size
    (its bicubic filter) and normalises it, the labels are resized nearest. Returns the normalised (3, h, w)
    image and (h, w) labels.
    """
    image = as_pil(image)
    _check_pair(image, labels)
    width, height = image.size
    base = base_short_side / min(width, height) if base_short_side else 1.0
    scale = base * rng.uniform(*scale_range)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    pixels = processed(processor, image, do_resize=True, size={"height": size[0], "width": size[1]})
    labels = resize_labels(labels, size)
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


def segmentation_eval_transform(image, labels: np.ndarray, processor) -> tuple[np.ndarray, np.ndarray]:
    """The `EfficientViTSegImageProcessor` itself on the image; the labels resized nearest to its output size."""
    image = as_pil(image)
    _check_pair(image, labels)
    pixels = processed(processor, image)
    return pixels, resize_labels(labels, pixels.shape[-2:])


# -------------------------------------------------------------------------------------- super-resolution
@cache
def _default_sr_processor():
    return image_processor_class("EfficientViTSRImageProcessor")()


def bicubic_downscale(image: Image.Image, scale: int) -> Image.Image:
    """The SR degradation: PIL bicubic downscaling (antialiased, like MATLAB's `imresize` the benchmarks use)."""
    return image.resize((image.width // scale, image.height // scale), Image.Resampling.BICUBIC)


def unit_pixels(image, processor=None) -> np.ndarray:
    """(3, H, W) float32 RGB in [0, 1] from the `EfficientViTSRImageProcessor` (default: the default one),
    unpadded whatever its `do_pad` (inputs and targets must stay aligned pixel for pixel)."""
    return processed(processor or _default_sr_processor(), image, do_pad=False)


def super_resolution_pair(high: Image.Image, scale: int, processor=None) -> tuple[np.ndarray, np.ndarray]:
    """(low-resolution input, high-resolution target) `unit_pixels`; the input is `high` downscaled bicubically
    by `scale`."""
    return unit_pixels(bicubic_downscale(high, scale), processor), unit_pixels(high, processor)


def super_resolution_train_transform(
    image, rng: np.random.Generator, *, patch_size: int, scale: int, processor=None
) -> tuple[np.ndarray, np.ndarray]:
    """A random high-resolution patch under one of the 8 flips/rotations, and its bicubic-downscaled input.

    Returns (low-resolution (3, p/s, p/s), high-resolution (3, p, p)) float32 in [0, 1].
    """
    processor = processor or _default_sr_processor()
    image = rgb_image(image, processor)
    if min(image.size) < patch_size:  # small photographs are enlarged rather than dropped
        factor = patch_size / min(image.size)
        image = image.resize((math.ceil(image.width * factor), math.ceil(image.height * factor)),
                             Image.Resampling.BICUBIC)
    left = int(rng.integers(0, image.width - patch_size + 1))
    top = int(rng.integers(0, image.height - patch_size + 1))
    patch = image.crop((left, top, left + patch_size, top + patch_size))
    transform = int(rng.integers(8))
    if transform & 1:
        patch = patch.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if transform >> 1:
        rotations = (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270)
        patch = patch.transpose(rotations[(transform >> 1) - 1])
    return super_resolution_pair(patch, scale, processor)


def super_resolution_eval_transform(image, *, scale: int, processor=None) -> tuple[np.ndarray, np.ndarray]:
    """The whole image cropped to a multiple of `scale` and its bicubic-downscaled input, in [0, 1]."""
    processor = processor or _default_sr_processor()
    image = rgb_image(image, processor)
    width, height = image.width - image.width % scale, image.height - image.height % scale
    return super_resolution_pair(image.crop((0, 0, width, height)), scale, processor)


__all__ = [
    "as_pil",
    "bicubic_downscale",
    "classification_eval_transform",
    "classification_train_transform",
    "image_processor_class",
    "label_map",
    "processed",
    "random_resized_crop_box",
    "resize_labels",
    "rgb_image",
    "segmentation_eval_transform",
    "segmentation_train_transform",
    "super_resolution_eval_transform",
    "super_resolution_pair",
    "super_resolution_train_transform",
    "unit_pixels",
]
