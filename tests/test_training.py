"""The trainer core's pieces: recipes, optimiser groups, schedule, metrics, augmentation, per-process streams."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from evit_hf.training.arguments import parse_arguments
from evit_hf.training.classification import ClassificationArguments
from evit_hf.training.data import ProcessStream, load_split
from evit_hf.training.metrics import ClassificationMetrics, SegmentationMetrics
from evit_hf.training.optim import parameter_groups, warmup_cosine_schedule
from evit_hf.training.segmentation import SegmentationArguments
from evit_hf.training.transforms import (
    classification_eval_transform,
    classification_train_transform,
    label_map,
    segmentation_eval_transform,
    segmentation_train_transform,
)


def test_recipe_then_command_line_overrides(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("learning_rate: 0.01\nbatch_size: 4\ncrop_size: [64, 96]\nstreaming: false\nmax_steps: 7\n")
    args = parse_arguments(SegmentationArguments, ["--config", str(recipe), "--batch_size", "2", "--streaming",
                                                   "--max_steps", "none", "--report_to", "tensorboard"])
    assert args.learning_rate == 0.01 and args.batch_size == 2  # the command line wins over the recipe
    assert args.crop_size == [64, 96] and args.streaming is True and args.max_steps is None
    assert args.report_to == ["tensorboard"] and args.label_column == "annotation"
    assert parse_arguments(SegmentationArguments, ["--crop_size", "64"]).crop_size == [64, 64]
    assert parse_arguments(SegmentationArguments, ["--eval_split", "none"]).eval_split is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--crop_size", "100"], "multiple of 32"),
        (["--batch_size", "0"], "batch_size"),
        (["--scale_range", "2", "1"], "scale_range"),
        (["--learning_rate", "-1"], "learning_rate"),
    ],
)
def test_bad_arguments_are_named(argv, message):
    with pytest.raises(ValueError, match=message):
        parse_arguments(SegmentationArguments, argv)


def test_unknown_recipe_key_is_named(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("learning_rat: 0.01\n")
    with pytest.raises(ValueError, match="learning_rat"):
        parse_arguments(ClassificationArguments, ["--config", str(recipe)])
    with pytest.raises(ValueError, match="does not exist"):
        parse_arguments(ClassificationArguments, ["--config", str(tmp_path / "missing.yaml")])


def test_no_weight_decay_on_norms_and_biases():
    from evit_hf.models.efficientvit import EfficientViTConfig, EfficientViTForSemanticSegmentation

    model = EfficientViTForSemanticSegmentation(EfficientViTConfig.from_preset("seg-b0-cityscapes", num_labels=3))
    decay, no_decay = parameter_groups(model, 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decay["params"]) and all(p.ndim <= 1 for p in no_decay["params"])
    norm_params = {id(p) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d | torch.nn.LayerNorm)
                   for p in m.parameters()}
    assert norm_params <= {id(p) for p in no_decay["params"]}
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_warmup_then_cosine_to_the_floor():
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=1.0)
    schedule = warmup_cosine_schedule(optimizer, warmup_steps=4, total_steps=20, min_lr_ratio=0.1)
    lrs = []
    for _ in range(25):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert lrs[0] == pytest.approx(0.2) and lrs[3] == pytest.approx(0.8)  # linear warm-up
    assert lrs[4] == pytest.approx(1.0) and max(lrs) == pytest.approx(1.0)
    assert lrs[12] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))  # half-way down the cosine
    assert lrs[20:] == pytest.approx([0.1] * 5)  # stays at the floor past the estimated end
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))


def test_segmentation_metrics_match_hand_computed_values():
    metrics = SegmentationMetrics(3, ignore_index=255, id2label={0: "a", 1: "b", 2: "c"})
    labels = torch.tensor([[[0, 0, 1, 1], [2, 2, 255, 255]]])
    predictions = torch.tensor([[[0, 1, 1, 1], [2, 0, 2, 0]]])
    metrics.update(predictions, labels)
    results = metrics.compute()
    # class a: TP 1, FP 1 (a 2 predicted as 0), FN 1 -> 1/3; b: TP 2, FP 1, FN 0 -> 2/3; c: TP 1, FN 1 -> 1/2
    assert results["per_class_iou"] == pytest.approx({"a": 1 / 3, "b": 2 / 3, "c": 1 / 2})
    assert results["mean_iou"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert results["pixel_accuracy"] == pytest.approx(4 / 6)
    assert "| b " in metrics.table() and "**mean**" in metrics.table()

    perfect = SegmentationMetrics(4)
    perfect.update(labels.clamp(max=2), labels.clamp(max=2))
    assert perfect.compute()["mean_iou"] == 1.0  # class 3 never occurs: left out of the mean, not counted as 0
    assert math.isnan(perfect.compute()["per_class_iou"]["3"])
    with pytest.raises(ValueError, match="labels must lie"):
        perfect.update(torch.tensor([[7]]), torch.tensor([[7]]))


def test_classification_metrics_top1_top5():
    metrics = ClassificationMetrics(6)
    logits = torch.tensor([[6.0, 5, 4, 3, 2, 1], [1.0, 2, 3, 4, 5, 6], [0.0, 1, 0, 0, 0, 0]])
    metrics.update(logits, torch.tensor([0, 0, 1]))
    results = metrics.compute()
    assert results["top1_accuracy"] == pytest.approx(2 / 3) and results["top5_accuracy"] == pytest.approx(2 / 3)
    assert results["samples"] == 3


def _striped_pair(width: int = 96, height: int = 64) -> tuple[Image.Image, np.ndarray]:
    """An image whose red channel encodes the class of each pixel (so alignment can be checked)."""
    labels = (np.arange(width)[None, :] // 16 % 3).repeat(height, 0).astype(np.int64)
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[..., 0] = labels * 100
    return Image.fromarray(pixels), labels


def test_segmentation_augmentation_keeps_image_and_labels_aligned():
    image, labels = _striped_pair()
    for seed in range(8):
        rng = np.random.default_rng(seed)
        pixels, out = segmentation_train_transform(image, labels, rng, crop_size=(64, 64), scale_range=(0.5, 2.0))
        assert pixels.shape == (3, 64, 64) and out.shape == (64, 64) and pixels.dtype == np.float32
        red = pixels[0] * 0.229 + 0.485  # undo the normalisation
        valid = out != 255
        # Nearest-neighbour labels against bilinear pixels: equal away from stripe borders.
        expected = np.round(red * 255 / 100)
        agree = (expected[valid] == out[valid]).mean()
        assert agree > 0.9, agree
        assert (pixels[:, ~valid] == 0).all()  # padding has the mean colour and the ignore label
    same = [segmentation_train_transform(image, labels, np.random.default_rng(3), crop_size=(64, 64))[1]
            for _ in range(2)]
    np.testing.assert_array_equal(*same)  # seeded per sample: a resumed run augments identically


def test_segmentation_eval_pads_to_the_stride_and_reduce_labels():
    image, labels = _striped_pair(width=70, height=50)
    pixels, out = segmentation_eval_transform(image, labels)
    assert pixels.shape == (3, 64, 96) and out.shape == (64, 96) and (out[50:] == 255).all()
    pixels, out = segmentation_eval_transform(image, labels, short_side=32)
    assert pixels.shape[1] == 32
    reduced = label_map(Image.fromarray(np.array([[0, 1, 2, 255]], dtype=np.uint8)), reduce_labels=True)
    assert reduced.tolist() == [[255, 0, 1, 255]]
    with pytest.raises(ValueError, match="differ"):
        segmentation_eval_transform(image, labels[:10])


def test_classification_transforms():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8))
    out = classification_train_transform(image, np.random.default_rng(0), size=64)
    assert out.shape == (3, 64, 64)
    out = classification_eval_transform(image.convert("L"), size=64, crop_pct=0.95)
    assert out.shape == (3, 64, 64)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from evit_hf.data.synthetic import write_synthetic_segmentation

    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_segmentation(root, num_train=21, num_validation=5, image_size=64, num_shards=3, progress=False)
    return root


@pytest.mark.parametrize("world_size", [2, 3])
def test_process_shares_cover_the_split_exactly_once(tiny_dataset, world_size):
    """Disjoint shares covering every sample, re-shuffled each epoch (3 shards: by examples for 2 processes,
    by whole shards for 3)."""
    dataset = load_split(str(tiny_dataset), "train")
    shares = {}
    for epoch in range(2):
        ids = []
        for rank in range(world_size):
            stream = ProcessStream(dataset, rank=rank, world_size=world_size, seed=5, shuffle_buffer=16)
            share = [example["id"] for _, example in stream.epoch(epoch)]
            shares[epoch, rank] = share
            ids += share
        assert sorted(ids) == sorted(f"train-{i:06d}" for i in range(21))
    assert shares[0, 0] != shares[1, 0]  # a new order every epoch
    # Resuming skips exactly what was consumed and continues with the same samples.
    stream = ProcessStream(dataset, rank=1, world_size=world_size, seed=5, shuffle_buffer=16)
    resumed = list(stream.epoch(1, skip=4))
    assert [example["id"] for _, example in resumed] == shares[1, 1][4:]
    assert resumed[0][0] == 4


def test_unknown_split_and_columns_are_named(tiny_dataset):
    from evit_hf.training.data import rename_columns

    with pytest.raises(ValueError, match="test"):
        load_split(str(tiny_dataset), "test")
    with pytest.raises(ValueError, match="no column 'mask'"):
        rename_columns(load_split(str(tiny_dataset), "train"), {"mask": "label"})
    with pytest.raises(ValueError, match="No parquet files"):
        load_split(str(tiny_dataset / "nothing-*.parquet"), "train")


@pytest.mark.parametrize("recipe", sorted((Path(__file__).parents[1] / "configs" / "train").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_every_recipe_parses(recipe):
    from evit_hf.training.sam import SamArguments

    classes = {"seg": SegmentationArguments, "cls": ClassificationArguments, "sam": SamArguments}
    args = parse_arguments(classes[recipe.stem.split("-")[0]], ["--config", str(recipe), "--output_dir", "x"])
    assert args.output_dir == "x"
    if recipe.stem.startswith("seg-") and recipe.stem != "seg-synthetic":
        from evit_hf.models.efficientvit import SEGMENTATION_PRESETS

        assert args.preset == recipe.stem and args.preset in SEGMENTATION_PRESETS
        assert args.reduce_labels == recipe.stem.endswith("ade20k")
