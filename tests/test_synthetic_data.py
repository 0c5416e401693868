"""The built-in synthetic segmentation dataset: samples, the parquet writer, and `evit-hf make-dataset`."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from PIL import Image

from evit_hf.cli import main
from evit_hf.data.synthetic import (
    SYNTHETIC_SEG_LABELS,
    synthetic_segmentation_sample,
    write_synthetic_segmentation,
)


def _arrays(rng_seed, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    image, mask = synthetic_segmentation_sample(np.random.default_rng(rng_seed), size)
    return np.asarray(image), np.asarray(mask)


def test_sample_is_deterministic_given_the_rng():
    image, mask = synthetic_segmentation_sample(np.random.default_rng(7), 64)
    again_image, again_mask = synthetic_segmentation_sample(np.random.default_rng(7), 64)
    assert image.tobytes() == again_image.tobytes() and mask.tobytes() == again_mask.tobytes()
    other_image, _ = synthetic_segmentation_sample(np.random.default_rng(8), 64)
    assert image.tobytes() != other_image.tobytes()
    assert (image.mode, image.size, mask.mode, mask.size) == ("RGB", (64, 64), "L", (64, 64))


def test_masks_use_every_class_and_nothing_else():
    seen: set[int] = set()
    for i in range(50):
        _, mask = _arrays(i)
        assert mask.dtype == np.uint8 and mask.max() < len(SYNTHETIC_SEG_LABELS)
        seen |= set(np.unique(mask).tolist())
    assert seen == set(range(len(SYNTHETIC_SEG_LABELS)))


def test_mask_boundaries_are_colour_edges():
    """Where the mask changes between neighbouring pixels the colour jumps; inside a shape it is flat.

    A mask off by even one pixel from the painted shapes would put most "boundary" pairs inside one colour.
    """
    across, inside = [], []
    for i in range(20):
        image, mask = _arrays(i)
        image = image.astype(np.float32)
        for axis in (0, 1):
            step = np.linalg.norm(np.diff(image, axis=axis), axis=-1)
            label_a = mask[1:] if axis == 0 else mask[:, 1:]
            label_b = mask[:-1] if axis == 0 else mask[:, :-1]
            across.append(step[label_a != label_b])
            inside.append(step[(label_a == label_b) & (label_a > 0)])
    across_low, inside_median = np.percentile(np.concatenate(across), 10), np.median(np.concatenate(inside))
    assert across_low > 60, across_low  # 90% of the mask edges are clear colour edges
    assert inside_median < 15, inside_median  # flat colour plus mild noise


def test_shapes_differ_from_their_surroundings():
    image, mask = _arrays(3, size=128)
    shape = mask > 0
    padded = np.pad(shape, 3)  # the pixels within 3 of a shape (a 7x7 square), without wrapping around
    grown = np.zeros_like(shape)
    for dy in range(7):
        for dx in range(7):
            grown |= padded[dy : dy + shape.shape[0], dx : dx + shape.shape[1]]
    ring = grown & ~shape
    assert shape.any() and ring.any()
    distance = np.linalg.norm(image[shape].mean(0) - image[ring].mean(0).astype(np.float64))
    assert distance > 30, distance


def test_written_dataset_loads_with_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")
    out = write_synthetic_segmentation(
        tmp_path / "synth", num_train=10, num_validation=4, image_size=64, num_shards=3, seed=5, progress=False
    )
    assert out == tmp_path / "synth"
    assert sorted(p.name for p in (out / "data").iterdir()) == [
        "train-00000-of-00003.parquet",
        "train-00001-of-00003.parquet",
        "train-00002-of-00003.parquet",
        "validation-00000-of-00001.parquet",
    ]
    assert json.loads((out / "id2label.json").read_text()) == dict(
        (str(i), label) for i, label in enumerate(SYNTHETIC_SEG_LABELS)
    )
    assert "num_examples: 10" in (out / "README.md").read_text()

    streamed = datasets.load_dataset(str(out), streaming=True)
    assert set(streamed) == {"train", "validation"}
    rows = {split: list(streamed[split]) for split in ("train", "validation")}
    assert [len(rows["train"]), len(rows["validation"])] == [10, 4]
    ids = [row["id"] for split in rows.values() for row in split]
    assert len(set(ids)) == 14 and "train-000009" in ids and "validation-000003" in ids
    for row in rows["train"] + rows["validation"]:
        assert isinstance(row["image"], Image.Image) and isinstance(row["annotation"], Image.Image)
        assert row["image"].size == row["annotation"].size == (64, 64)
        assert (row["image"].mode, row["annotation"].mode) == ("RGB", "L")
    # Sample i of split s is rng [seed, s, i], whatever the shard layout; the splits' streams differ.
    by_id = {row["id"]: row for split in rows.values() for row in split}
    for split_index, row_id in ((0, "train-000007"), (1, "validation-000002")):
        image, mask = _arrays([5, split_index, int(row_id.split("-")[1])])
        assert np.array_equal(np.asarray(by_id[row_id]["image"]), image)
        assert np.array_equal(np.asarray(by_id[row_id]["annotation"]), mask)
    assert not np.array_equal(
        np.asarray(by_id["train-000000"]["image"]), np.asarray(by_id["validation-000000"]["image"])
    )

    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert (loaded["train"].num_rows, loaded["validation"].num_rows) == (10, 4)
    assert isinstance(loaded["train"].features["image"], datasets.Image)
    assert isinstance(loaded["train"].features["annotation"], datasets.Image)

    # Rewriting with fewer shards leaves no stale shard behind (it would be loaded as extra data).
    write_synthetic_segmentation(out, num_train=4, num_validation=1, image_size=32, num_shards=2, progress=False)
    assert sorted(p.name for p in (out / "data").iterdir()) == [
        "train-00000-of-00002.parquet",
        "train-00001-of-00002.parquet",
        "validation-00000-of-00001.parquet",
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_train": 0},
        {"num_validation": 0},
        {"image_size": 16},
        {"num_shards": 0},
        {"num_train": 3, "num_shards": 4},
        {"seed": -1},
    ],
)
def test_bad_arguments_are_value_errors(tmp_path, kwargs):
    with pytest.raises(ValueError):
        write_synthetic_segmentation(tmp_path / "out", progress=False, **kwargs)
    assert not (tmp_path / "out").exists()


def test_missing_datasets_package_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` raise ImportError
    with pytest.raises(ImportError, match="pip install datasets"):
        write_synthetic_segmentation(tmp_path / "out", num_train=1, num_validation=1, num_shards=1, progress=False)


def test_make_dataset_command(tmp_path, capsys):
    out = tmp_path / "cli-synth"
    argv = ["make-dataset", "synthetic-seg", "--out", str(out), "--num-train", "4", "--num-validation", "2"]
    assert main([*argv, "--image-size", "32", "--num-shards", "2", "--seed", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"accelerate launch training/seg.py --dataset {out}" in printed
    assert "train-00001-of-00002.parquet" in printed and "background, disk, rectangle, triangle, ring" in printed
    assert len(list((out / "data").glob("train-*.parquet"))) == 2

    assert main([*argv, "--image-size", "8", "--no-progress"]) == 2
    assert "image_size must be at least 32" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["make-dataset", "no-such-kind", "--out", str(out)])
