"""SA-1B-format instance masks: COCO RLE records, the raw SA-1B folder layout, and a synthetic SA-1B set.

An SA-1B record is an image plus `annotations`, a list of dicts with `segmentation` (COCO RLE: `size`
[height, width] and `counts`), `bbox` [x, y, width, height] in pixels, `area`, and `point_coords` (the
point that prompted the mask). This module owns the RLE conversion (pycocotools), `load_sa1b_folder` for
the layout SA-1B ships in (`sa_N.jpg` next to `sa_N.json`), and `write_synthetic_sa1b`, the offline
stand-in written as parquet shards (`evit-hf make-dataset synthetic-sa1b`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .parquet import card_front_matter, check_split_sizes, png_bytes, require, require_datasets, write_parquet_splits
from .synthetic import SYNTHETIC_SEG_LABELS, synthetic_scene, visible_instances

# Visible pixels a synthetic instance needs to be annotated (smaller slivers are hard to prompt).
_MIN_INSTANCE_PIXELS = 24


def _mask_api():
    return require("pycocotools.mask", "SA-1B / COCO masks need pycocotools: pip install 'evit-hf[train]'")


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE `{"size": [h, w], "counts": str}` of a (h, w) bool/0-1 mask."""
    rle = _mask_api().encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode_segmentation(segmentation: dict[str, Any] | list, height: int | None = None,
                        width: int | None = None) -> np.ndarray:
    """A (h, w) bool mask from a COCO segmentation: compressed or uncompressed RLE, or polygons (with h, w)."""
    mask_api = _mask_api()
    if isinstance(segmentation, list):  # polygons
        if height is None or width is None:
            raise ValueError("Polygon segmentations need the image height and width.")
        rle = mask_api.merge(mask_api.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
        counts = segmentation["counts"]
        size = [int(v) for v in segmentation["size"]]
        if isinstance(counts, list):  # uncompressed RLE
            rle = mask_api.frPyObjects({"size": size, "counts": counts}, *size)
        else:
            rle = {"size": size, "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    else:
        raise ValueError(f"Unsupported segmentation {type(segmentation).__name__}: expected COCO RLE or polygons.")
    return mask_api.decode(rle).astype(bool)


def mask_annotation(mask: np.ndarray, annotation_id: int, rng: np.random.Generator,
                    category_id: int | None = None) -> dict[str, Any]:
    """An SA-1B annotation of a non-empty mask: RLE, tight bbox [x, y, w, h], area and one point inside it."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise ValueError("Cannot annotate an empty mask.")
    pick = int(rng.integers(len(xs)))
    annotation = {
        "id": annotation_id,
        "segmentation": encode_mask(mask),
        "bbox": [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)],
        "area": len(xs),
        "point_coords": [[float(xs[pick]), float(ys[pick])]],
    }
    if category_id is not None:
        annotation["category_id"] = category_id
    return annotation


def annotation_features():
    """`datasets` features of an SA-1B annotation list (with the optional `category_id`)."""
    datasets = require_datasets()
    return datasets.List({
        "id": datasets.Value("int64"),
        "segmentation": {"size": datasets.List(datasets.Value("int32")), "counts": datasets.Value("string")},
        "bbox": datasets.List(datasets.Value("float32"), length=4),
        "area": datasets.Value("int64"),
        "point_coords": datasets.List(datasets.List(datasets.Value("float32"), length=2)),
        "category_id": datasets.Value("int64"),
    })


def _read_sa1b_pairs(files: list[str]):
    from PIL import Image

    for image_path in files:
        record = json.loads(Path(image_path).with_suffix(".json").read_text())
        with Image.open(image_path) as image:
            yield {"id": Path(image_path).stem, "image": image.convert("RGB"),
                   "annotations": record["annotations"]}


def load_sa1b_folder(folder: str | Path):
    """The raw SA-1B layout (`*.jpg` each with a `.json` of the same name) as a streamed `IterableDataset`.

    Each image file is a shard, so the stream splits across processes and shuffles by file.
    """
    datasets = require_datasets()
    folder = Path(folder)
    files = sorted(str(p) for p in folder.glob("*.jpg") if p.with_suffix(".json").is_file())
    if not files:
        raise ValueError(f"{folder} holds no SA-1B pairs (image.jpg next to image.json).")
    return datasets.IterableDataset.from_generator(_read_sa1b_pairs, gen_kwargs={"files": files})


def is_sa1b_folder(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and any(p.with_suffix(".json").is_file() for p in path.glob("*.jpg"))


def synthetic_sa1b_sample(rng: np.random.Generator, size: int = 128) -> tuple[Any, list[dict[str, Any]]]:
    """One synthetic image and its SA-1B annotations: every visible shape instance (occlusions cut out)."""
    image, shapes = synthetic_scene(rng, size)
    instances = visible_instances(shapes, _MIN_INSTANCE_PIXELS)
    annotations = [mask_annotation(mask, i, rng, category_id=class_id) for i, (class_id, mask) in enumerate(instances)]
    return image, annotations


def write_synthetic_sa1b(
    out_dir: str | Path,
    num_train: int = 1000,
    num_validation: int = 100,
    image_size: int = 128,
    num_shards: int = 4,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Write a synthetic SA-1B-format dataset (the shapes of `synthetic_scene`, one mask per visible instance).

    Layout as `write_synthetic_segmentation`: `out_dir/data/{train,validation}-*.parquet` with columns `id`,
    `image` and `annotations` (SA-1B records, plus each shape's `category_id`), and a `README.md` card.
    Sample i of split s comes from `np.random.default_rng([seed, 100 + s, i])`.
    """
    check_split_sizes(num_train, num_validation, num_shards)
    datasets = require_datasets()

    def make_row(split: str, split_index: int, index: int) -> dict[str, Any]:
        # 100 + s: other images than the synthetic-seg set of the same seed.
        image, annotations = synthetic_sa1b_sample(np.random.default_rng([seed, 100 + split_index, index]),
                                                   image_size)
        return {"id": f"{split}-{index:06d}", "image": {"bytes": png_bytes(image), "path": None},
                "annotations": annotations}

    out = Path(out_dir)
    features = datasets.Features({"id": datasets.Value("string"), "image": datasets.Image(),
                                  "annotations": annotation_features()})
    counts = {"train": num_train, "validation": num_validation}
    write_parquet_splits(out, counts, num_shards, features, make_row, "synthetic-sa1b", progress)
    categories = ", ".join(f"{i} {name}" for i, name in enumerate(SYNTHETIC_SEG_LABELS) if i)
    front_matter = card_front_matter("EfficientViT synthetic SA-1B-format masks", "mask-generation")
    (out / "README.md").write_text(front_matter + f"""
# Synthetic SA-1B-format masks

Written by `evit_hf.data.sa1b.write_synthetic_sa1b` (`evit-hf make-dataset synthetic-sa1b`) so that
EfficientViT-SAM training runs offline. Each {image_size}x{image_size} image shows 1-4 shapes on a textured
background (the scenes of the synthetic segmentation set, other seeds); every shape with at least
{_MIN_INSTANCE_PIXELS} visible pixels is one annotation, its occluded part cut out.

- Columns: `id`, `image` (RGB PNG), `annotations`: a list of SA-1B records with `segmentation` (COCO RLE,
  `size` [h, w] and `counts`), `bbox` [x, y, w, h], `area`, `point_coords` (one point inside the mask) and
  `category_id` ({categories}).
- Splits: train {num_train}, validation {num_validation}; seed {seed}.
""")
    return out


__all__ = [
    "annotation_features",
    "decode_segmentation",
    "encode_mask",
    "is_sa1b_folder",
    "load_sa1b_folder",
    "mask_annotation",
    "synthetic_sa1b_sample",
    "write_synthetic_sa1b",
]
