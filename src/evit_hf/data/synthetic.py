"""A built-in synthetic semantic-segmentation dataset: procedural shapes on textured backgrounds.

This module owns the sample generator (`synthetic_segmentation_sample`) and the writer of the on-disk
dataset (`write_synthetic_segmentation`): parquet shards in the Hugging Face `datasets` layout, so
training scripts can run offline with `load_dataset(out_dir)` and no download.
"""

from __future__ import annotations

import colorsys
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .parquet import card_front_matter, check_split_sizes, png_bytes, require_datasets, write_parquet_splits

SYNTHETIC_SEG_LABELS: tuple[str, ...] = ("background", "disk", "rectangle", "triangle", "ring")

_MIN_IMAGE_SIZE = 32
_SHAPE_EXTENT = (0.2, 0.45)  # shape size as a fraction of the image side
_RING_HOLE = (0.4, 0.7)  # inner radius as a fraction of the outer one
_MIN_CONTRAST = 80.0  # RGB distance a shape colour keeps from (most of) what surrounds it
_COLOUR_TRIES = 32
_NOISE_SIGMA = (2.0, 6.0)
_CLASS_HUES = (0.0, 0.33, 0.62, 0.14)  # disk red, rectangle green, triangle blue, ring yellow
_RANDOM_COLOUR_FRACTION = 0.25


def synthetic_scene(rng: np.random.Generator, size: int = 128) -> tuple[Image.Image, list[tuple[int, np.ndarray]]]:
    """One RGB image of `size` x `size` and the shapes painted on it, in painting order.

    A textured background (gradient, stripes, checkerboard or noise blobs), then 1-4 flat-coloured shapes
    (disk, rectangle, triangle, ring) painted in order, later ones occluding earlier ones, then mild
    per-pixel noise. Shape colours come from a hue band typical of the class (a quarter are any colour)
    and are kept apart from the pixels around each shape. Each shape is `(class_id, region)` with `region`
    the (size, size) bool set of pixels painted for it (before later shapes cover part of it), so masks
    built from them match the image exactly. Deterministic given the generator's state.
    """
    if size < _MIN_IMAGE_SIZE:
        raise ValueError(f"size must be at least {_MIN_IMAGE_SIZE}, got {size}.")
    canvas = _background(rng, size)
    shapes: list[tuple[int, np.ndarray]] = []
    for _ in range(int(rng.integers(1, 5))):
        class_id = int(rng.integers(1, len(SYNTHETIC_SEG_LABELS)))
        region = _shape_region(rng, SYNTHETIC_SEG_LABELS[class_id], size)
        # Contrast is judged against what stays visible right next to the shape (including a ring's hole),
        # since the pixels under it are overwritten and cannot make it stand out.
        canvas[region] = _contrasting_colour(rng, canvas[_dilate(region, 2) & ~region], class_id)
        shapes.append((class_id, region))
    sigma = rng.uniform(*_NOISE_SIGMA)
    canvas += rng.normal(0.0, sigma, canvas.shape).astype(np.float32)
    return Image.fromarray(np.clip(np.rint(canvas), 0, 255).astype(np.uint8)), shapes


def synthetic_segmentation_sample(rng: np.random.Generator, size: int = 128) -> tuple[Image.Image, Image.Image]:
    """One (RGB image, "L" mask) pair of `size` x `size` (see `synthetic_scene`); mask values index
    `SYNTHETIC_SEG_LABELS`, later shapes overwriting earlier ones as in the image."""
    image, shapes = synthetic_scene(rng, size)
    mask = np.zeros((size, size), dtype=np.uint8)
    for class_id, region in shapes:
        mask[region] = class_id
    return image, Image.fromarray(mask)


def visible_instances(shapes: list[tuple[int, np.ndarray]], min_pixels: int = 1) -> list[tuple[int, np.ndarray]]:
    """`(class_id, visible mask)` of each shape of `synthetic_scene`: its region minus what later shapes cover.

    Shapes left with fewer than `min_pixels` visible pixels are dropped.
    """
    visible, covered = [], np.zeros_like(shapes[0][1]) if shapes else None
    for class_id, region in reversed(shapes):
        mask = region & ~covered
        covered |= region
        if int(mask.sum()) >= min_pixels:
            visible.append((class_id, mask))
    return visible[::-1]


def _two_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # Texture colours stay moderately close so the texture reads as background and shapes stand out.
    first = rng.uniform(0, 255, 3)
    second = np.clip(first + rng.normal(0.0, 50.0, 3), 0, 255)
    return first.astype(np.float32), second.astype(np.float32)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A (size, size, 3) float32 texture: one of gradient, stripes, checkerboard, noise blobs."""
    kind = int(rng.integers(4))
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    if kind == 3:  # low-frequency noise blobs: a coarse random colour grid, smoothly upsampled
        cells = int(rng.integers(3, 7))
        centre = rng.uniform(40, 215, 3)
        grid = np.clip(centre + rng.normal(0.0, 45.0, (cells, cells, 3)), 0, 255).astype(np.uint8)
        blobs = Image.fromarray(grid).resize((size, size), Image.Resampling.BICUBIC)
        return np.asarray(blobs, dtype=np.float32).copy()
    first, second = _two_colours(rng)
    if kind == 0:  # smooth gradient along a random direction
        angle = rng.uniform(0, 2 * math.pi)
        t = xs * math.cos(angle) + ys * math.sin(angle)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    elif kind == 1:  # stripes at a random angle and period
        angle = rng.uniform(0, math.pi)
        period = rng.uniform(size / 16, size / 4)
        phase = rng.uniform(0, period)
        t = (((xs * math.cos(angle) + ys * math.sin(angle) + phase) % period) < period / 2).astype(np.float32)
    else:  # checkerboard with a random cell size and offset
        cell = rng.uniform(size / 16, size / 5)
        dx, dy = rng.uniform(0, 2 * cell, 2)
        t = ((np.floor((xs + dx) / cell) + np.floor((ys + dy) / cell)) % 2).astype(np.float32)
    return first + t[..., None] * (second - first)


def _shape_region(rng: np.random.Generator, label: str, size: int) -> np.ndarray:
    """The (size, size) bool pixel set of one randomly placed shape of class `label`."""
    extent = rng.uniform(*_SHAPE_EXTENT) * size
    # Whole shapes stay inside the image: a shape cut by the border can look like another class.
    cx, cy = rng.uniform(extent / 2, size - extent / 2, 2)
    angle = rng.uniform(0, 2 * math.pi)
    layer = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(layer)
    radius = extent / 2
    if label in ("disk", "ring"):
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=1)
        if label == "ring":
            inner = radius * rng.uniform(*_RING_HOLE)
            draw.ellipse([cx - inner, cy - inner, cx + inner, cy + inner], fill=0)
    elif label == "rectangle":
        half_w, half_h = radius, radius * rng.uniform(0.4, 1.0)
        corners = [(-half_w, -half_h), (half_w, -half_h), (half_w, half_h), (-half_w, half_h)]
        draw.polygon(_rotate(corners, angle, cx, cy), fill=1)
    elif label == "triangle":
        # Vertices on the circumcircle at roughly 120 degree steps: no needle-thin triangles.
        steps = np.array([0.0, 2 * math.pi / 3, 4 * math.pi / 3]) + rng.uniform(-0.35, 0.35, 3)
        vertices = [(radius * math.cos(s), radius * math.sin(s)) for s in steps]
        draw.polygon(_rotate(vertices, angle, cx, cy), fill=1)
    else:
        raise ValueError(f"unknown shape {label!r}")
    return np.asarray(layer) > 0


def _dilate(region: np.ndarray, radius: int) -> np.ndarray:
    """`region` grown by a (2 * radius + 1)-pixel square: a separable max filter on the bool array."""
    grown = region.copy()
    for axis in (0, 1):
        padded = np.pad(grown, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)])
        length = grown.shape[axis]
        for offset in range(2 * radius + 1):
            grown |= padded[offset : offset + length] if axis == 0 else padded[:, offset : offset + length]
    return grown


def _rotate(points: list[tuple[float, float]], angle: float, cx: float, cy: float) -> list[tuple[float, float]]:
    cos, sin = math.cos(angle), math.sin(angle)
    return [(cx + x * cos - y * sin, cy + x * sin + y * cos) for x, y in points]


def _class_colour(rng: np.random.Generator, class_id: int) -> np.ndarray:
    """A colour typical of the class (a hue band, random saturation and value), or any colour (1 in 4).

    Like real classes (sky is mostly blue), colour is a strong but imperfect cue: a model learns it within
    minutes and still needs the shape for the random-coloured quarter.
    """
    if rng.random() < _RANDOM_COLOUR_FRACTION:
        return rng.uniform(0, 255, 3).astype(np.float32)
    hue = (_CLASS_HUES[class_id - 1] + rng.normal(0.0, 0.04)) % 1.0
    rgb = colorsys.hsv_to_rgb(hue, rng.uniform(0.55, 1.0), rng.uniform(0.45, 1.0))
    return (np.array(rgb) * 255).astype(np.float32)


def _contrasting_colour(rng: np.random.Generator, surround: np.ndarray, class_id: int) -> np.ndarray:
    """A class colour at least `_MIN_CONTRAST` from 90% of `surround` (N, 3), else the best of the tries."""
    colour = _class_colour(rng, class_id)
    if len(surround) == 0:  # the shape covers the whole image: nothing to stand out from
        return colour
    best, best_score = colour, -1.0
    for attempt in range(_COLOUR_TRIES):
        if attempt:
            colour = _class_colour(rng, class_id)
        score = float(np.percentile(np.linalg.norm(surround - colour, axis=1), 10))
        if score >= _MIN_CONTRAST:
            return colour
        if score > best_score:
            best, best_score = colour, score
    return best


def write_synthetic_segmentation(
    out_dir: str | Path,
    num_train: int = 2000,
    num_validation: int = 200,
    image_size: int = 128,
    num_shards: int = 4,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Write the synthetic shapes dataset as parquet shards that `datasets.load_dataset(out_dir)` reads.

    Layout: `out_dir/data/train-0000K-of-0000N.parquet` (N = `num_shards`),
    `out_dir/data/validation-0000K-of-0000M.parquet` (M = 1 per started 1000 samples, at most `num_shards`),
    `out_dir/id2label.json` and a `README.md` dataset card. Columns: `id` (string), `image` (RGB) and
    `annotation` (L-mode class ids), both `datasets.Image()` features stored as PNG bytes. Sample i of split
    s comes from `np.random.default_rng([seed, s, i])`, so the data does not depend on the shard count.
    Stale shards of an earlier run in `out_dir/data` are removed. Returns `out_dir` as a Path.
    """
    check_split_sizes(num_train, num_validation, num_shards)
    if image_size < _MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be at least {_MIN_IMAGE_SIZE}, got {image_size}.")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}.")

    def make_row(split: str, split_index: int, index: int) -> dict:
        image, mask = synthetic_segmentation_sample(np.random.default_rng([seed, split_index, index]), image_size)
        return {"id": f"{split}-{index:06d}", "image": {"bytes": png_bytes(image), "path": None},
                "annotation": {"bytes": png_bytes(mask), "path": None}}

    datasets = require_datasets()
    out = Path(out_dir)
    counts = {"train": num_train, "validation": num_validation}
    features = datasets.Features(
        {"id": datasets.Value("string"), "image": datasets.Image(), "annotation": datasets.Image()}
    )
    num_bytes, shard_counts = write_parquet_splits(
        out, counts, num_shards, features, make_row, "synthetic-seg", progress)
    id2label = {str(i): label for i, label in enumerate(SYNTHETIC_SEG_LABELS)}
    (out / "id2label.json").write_text(json.dumps(id2label, indent=2) + "\n")
    (out / "README.md").write_text(_dataset_card(counts, num_bytes, shard_counts, image_size, seed))
    return out


def _dataset_card(
    counts: dict[str, int], num_bytes: dict[str, int], shard_counts: dict[str, int], image_size: int, seed: int
) -> str:
    classes = "\n".join(f"| {i} | {label} |" for i, label in enumerate(SYNTHETIC_SEG_LABELS))
    info = f"""dataset_info:
  features:
  - name: id
    dtype: string
  - name: image
    dtype: image
  - name: annotation
    dtype: image
  splits:
  - name: train
    num_bytes: {num_bytes["train"]}
    num_examples: {counts["train"]}
  - name: validation
    num_bytes: {num_bytes["validation"]}
    num_examples: {counts["validation"]}
  dataset_size: {sum(num_bytes.values())}
"""
    return card_front_matter("EfficientViT synthetic shapes segmentation", "image-segmentation", info) + f"""
# Synthetic shapes segmentation

A procedurally generated semantic-segmentation dataset written by
`evit_hf.data.synthetic.write_synthetic_segmentation` (`evit-hf make-dataset synthetic-seg`), so that
training runs offline. Each {image_size}x{image_size} RGB image has a textured background (colour gradient,
stripes, checkerboard or noise blobs) and 1-4 flat-coloured shapes (20-45% of the image side, inside the
image, later shapes occluding earlier ones) plus mild per-pixel noise. Shape colours come from a hue band
typical of the class (red disks, green rectangles, blue triangles, yellow rings), a quarter of them any
colour, so colour is a strong but imperfect cue and the shape decides the rest.

- Columns: `id` (string, `train-000123`), `image` (RGB PNG), `annotation` (L-mode PNG of class ids).
- Splits: train {counts["train"]} samples in {shard_counts["train"]} shards, validation
  {counts["validation"]} samples in {shard_counts["validation"]} shard(s).
- Generated with seed {seed}; sample i of split s (train 0, validation 1) uses
  `numpy.random.default_rng([{seed}, s, i])`, so the data is the same for any shard count.
- Labels (also in `id2label.json`):

| id | label |
|---:|---|
{classes}
"""
