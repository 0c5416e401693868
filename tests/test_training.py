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
    random_resized_crop_box,
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


# ------------------------------------------------------------------------------------------ preprocessing
# Training and evaluation preprocess with the models' image processors; augmentation only draws the random
# parts. These tests pin the deterministic part to the processors pixel for pixel, on real photographs and on
# sizes where the rounding decides (a scaled side landing on .5), and the processors to the original recipes.

MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def photo(name: str = "chelsea", size: tuple[int, int] | None = None) -> Image.Image:
    """A photograph scikit-image ships (astronaut 512x512, coffee 600x400, chelsea 451x300), optionally resized
    to `size` = (width, height)."""
    from skimage import data

    image = Image.fromarray(getattr(data, name)())
    return image if size is None else image.resize(size, Image.BICUBIC)


def normalised(image: Image.Image) -> np.ndarray:
    """The original recipes' ToTensor + Normalize written out (an independent reference), (3, H, W)."""
    array = np.asarray(image.convert("RGB"), dtype=np.float64) / 255
    return ((array - MEAN) / STD).transpose(2, 0, 1)


def photo_labels(image: Image.Image) -> np.ndarray:
    """(H, W) uint8 class ids made from a photograph's brightness (0 present, 255 = ignore present)."""
    labels = np.asarray(image.convert("L")) // 24
    labels[:5, :5] = 255
    return labels.astype(np.uint8)


def replay(seed: int, draws: list) -> list:
    """The values `draws` (callables of a generator) take on `np.random.default_rng(seed)`, in order."""
    rng = np.random.default_rng(seed)
    return [draw(rng) for draw in draws]


@pytest.mark.parametrize(("name", "size"), [("astronaut", None), ("coffee", None), ("chelsea", None),
                                            ("chelsea", (9, 8)), ("chelsea", (8, 9)), ("coffee", (301, 200))])
def test_classification_eval_is_the_processor_and_the_original_resize(name, size):
    from evit_hf import EfficientViTImageProcessor

    image = photo(name, size)
    processor = EfficientViTImageProcessor.for_resolution(224, crop_pct=0.95)
    assert processor.size.shortest_edge == 236  # ceil(224 / 0.95)
    pixels = classification_eval_transform(image, processor)
    np.testing.assert_array_equal(pixels, processor(image)["pixel_values"][0])
    # torchvision's Resize(236) keeps int(236 * long / short), no rounding: chelsea 451x300 -> 354 (round(): 355),
    # 9x8 -> 265.5 -> 265; then CenterCrop(224)
    width, height = image.size
    long = int(236 * max(width, height) / min(width, height))
    resized = image.resize((long, 236) if width > height else (236, long), Image.BICUBIC)
    left, top = (resized.width - 224) // 2, (resized.height - 224) // 2
    expected = normalised(resized.crop((left, top, left + 224, top + 224)))
    assert pixels.shape == (3, 224, 224) and np.abs(pixels - expected).max() < 1e-5


def test_classification_transforms():
    """Training: a random box cut out, the processor's resize to the crop size, a random mirror."""
    from evit_hf import EfficientViTImageProcessor

    image = photo("chelsea")
    processor = EfficientViTImageProcessor.for_resolution(64, crop_pct=0.95)
    square = {"height": 64, "width": 64}
    flips = set()
    for seed in range(6):
        pixels = classification_train_transform(image, np.random.default_rng(seed), processor)
        box, flip = replay(seed, [lambda rng: random_resized_crop_box(image.size, rng, (0.08, 1.0), (3 / 4, 4 / 3)),
                                  lambda rng: rng.random() < 0.5])
        assert box != (0, 0, *image.size)
        expected = processor(image.crop(box), size=square, do_center_crop=False)["pixel_values"][0]
        np.testing.assert_array_equal(pixels, expected[:, :, ::-1] if flip else expected)
        flips.add(flip)
    assert flips == {True, False}
    # The whole image (area 1, its own aspect): the original bicubic resize to 64x64, normalised.
    pixels = classification_train_transform(image, np.random.default_rng(0), processor, scale=(1.0, 1.0),
                                            ratio=(451 / 300, 451 / 300))
    expected = normalised(image.resize((64, 64), Image.BICUBIC))
    assert min(np.abs(pixels - expected).max(), np.abs(pixels - expected[:, :, ::-1]).max()) < 1e-5
    # grayscale: the processor's RGB conversion (three equal channels before normalisation)
    gray = classification_eval_transform(image.convert("L"), processor)
    np.testing.assert_array_equal(gray, processor(image.convert("L"))["pixel_values"][0])
    unnormalised = gray * STD[:, None, None] + MEAN[:, None, None]
    assert np.abs(unnormalised - unnormalised[:1]).max() < 1e-5


@pytest.mark.parametrize(("width", "height"), [(451, 300), (101, 75), (75, 101)])
def test_segmentation_augmentation_resizes_with_the_processor(width, height):
    """A fixed scale (0.5: 101x75 -> 50.5x37.5, rounded half to even -> 50x38) and a crop of the scaled size: the
    output is the processor's resize of the whole image (bicubic) and of its labels (nearest), or their mirror."""
    from evit_hf import EfficientViTSegImageProcessor

    image = photo("chelsea", (width, height))
    labels = photo_labels(image)
    processor = EfficientViTSegImageProcessor.for_short_side(64)
    size = (round(height * 0.5), round(width * 0.5))
    expected = processor(image, segmentation_maps=labels, size={"height": size[0], "width": size[1]})
    flips = set()
    for seed in range(4):
        pixels, out = segmentation_train_transform(image, labels.astype(np.int64), np.random.default_rng(seed),
                                                   processor, crop_size=size, scale_range=(0.5, 0.5))
        flip = replay(seed, [lambda rng: rng.uniform(0.5, 0.5), lambda rng: rng.integers(0, 1),
                             lambda rng: rng.integers(0, 1), lambda rng: rng.random() < 0.5])[-1]
        mirror = (lambda a: a[..., ::-1]) if flip else (lambda a: a)
        np.testing.assert_array_equal(pixels, mirror(expected["pixel_values"][0]))
        np.testing.assert_array_equal(out, mirror(expected["labels"][0]))
        flips.add(flip)
    assert flips == {True, False}
    reference = normalised(image.resize(size[::-1], Image.BICUBIC))
    assert np.abs(expected["pixel_values"][0] - reference).max() < 1e-5


def test_segmentation_augmentation_keeps_image_and_labels_aligned():
    from evit_hf import EfficientViTSegImageProcessor

    labels = (np.arange(96)[None, :] // 16 % 3).repeat(64, 0).astype(np.int64)  # stripes; red encodes the class
    pixels = np.zeros((64, 96, 3), dtype=np.uint8)
    pixels[..., 0] = labels * 100
    image = Image.fromarray(pixels)
    processor = EfficientViTSegImageProcessor.for_short_side(64)
    for seed in range(8):
        rng = np.random.default_rng(seed)
        pixels, out = segmentation_train_transform(image, labels, rng, processor, crop_size=(64, 64),
                                                   scale_range=(0.5, 2.0))
        assert pixels.shape == (3, 64, 64) and out.shape == (64, 64) and pixels.dtype == np.float32
        red = pixels[0] * 0.229 + 0.485  # undo the normalisation
        valid = out != 255
        # Nearest-neighbour labels against bicubic pixels: equal away from stripe borders.
        expected = np.round(red * 255 / 100)
        agree = (expected[valid] == out[valid]).mean()
        assert agree > 0.9, agree
        assert (pixels[:, ~valid] == 0).all()  # padding has the mean colour and the ignore label
    same = [segmentation_train_transform(image, labels, np.random.default_rng(3), processor, crop_size=(64, 64))[1]
            for _ in range(2)]
    np.testing.assert_array_equal(*same)  # seeded per sample: a resumed run augments identically


@pytest.mark.parametrize(("name", "size", "short_side"), [("astronaut", None, 512), ("coffee", None, 512),
                                                          ("chelsea", None, 512), ("chelsea", (101, 75), 64),
                                                          ("coffee", (75, 101), 64)])
def test_segmentation_eval_is_the_processor_and_the_ade20k_rule(name, size, short_side):
    from evit_hf import EfficientViTSegImageProcessor
    from evit_hf.evaluation.segmentation import SegmentationSettings, preprocess

    image = photo(name, size)
    labels = photo_labels(image)
    processor = EfficientViTSegImageProcessor.for_dataset("ade20k", size={"shortest_edge": short_side})
    pixels, out = segmentation_eval_transform(image, label_map(labels, reduce_labels=True), processor)
    expected = processor(image, segmentation_maps=labels)  # do_reduce_labels: 0 -> 255, k -> k - 1
    np.testing.assert_array_equal(pixels, expected["pixel_values"][0])
    np.testing.assert_array_equal(out, expected["labels"][0])
    # the original rule: short side to 512, long side ceil(long / short * 512 / 32) * 32 (chelsea: 800, where
    # round() gave 770), bicubic
    width, height = image.size
    long = math.ceil(max(width, height) / min(width, height) * short_side / 32) * 32
    shape = (short_side, long) if width >= height else (long, short_side)
    assert pixels.shape == (3, *shape)
    assert np.abs(pixels - normalised(image.resize(shape[::-1], Image.BICUBIC))).max() < 1e-5
    evaluated = preprocess(image, SegmentationSettings(short_side=short_side).processor())
    np.testing.assert_array_equal(evaluated[0].numpy(), pixels)  # `evit-hf eval seg` preprocesses the same
    with pytest.raises(ValueError, match="differ"):
        segmentation_eval_transform(image, labels[:10], processor)


@pytest.mark.parametrize(("width", "height", "side"), [(451, 300, 512), (600, 400, 128), (128, 37, 64),
                                                       (37, 128, 64), (1024, 5, 512)])
def test_sam_preprocessing_is_the_processor_rounding_half_up(width, height, side):
    """The longest side to `side`, the other to int(old * scale + 0.5): 37 * 64 / 128 = 18.5 -> 19 and
    5 * 512 / 1024 = 2.5 -> 3, where round() gave 18 and 2."""
    from evit_hf import EfficientViTSamImageProcessor
    from evit_hf.training.sam import resize_and_pad, resize_mask

    image = photo("coffee", (width, height))
    processor = EfficientViTSamImageProcessor(encoder_size=side)
    pixels, scale, (new_h, new_w) = resize_and_pad(image, processor)
    np.testing.assert_array_equal(pixels, processor(image)["pixel_values"][0])
    scale_expected = side / max(width, height)
    assert scale == scale_expected
    assert (new_h, new_w) == (int(height * scale_expected + 0.5), int(width * scale_expected + 0.5))
    reference = np.zeros((3, side, side))
    reference[:, :new_h, :new_w] = normalised(image.resize((new_w, new_h), Image.BILINEAR))
    assert np.abs(pixels - reference).max() < 1e-5
    mask = np.asarray(image.convert("L")) > 100
    framed = resize_mask(mask, side, (new_h, new_w))
    labels = processor(image, segmentation_maps=mask.astype(np.uint8), mask_size={"longest_edge": side},
                       mask_pad_size={"height": side, "width": side})["labels"][0]
    np.testing.assert_array_equal(framed, labels.astype(bool))


def test_super_resolution_pairs_are_the_processor_on_the_degraded_image():
    from evit_hf import EfficientViTSRImageProcessor
    from evit_hf.training.transforms import super_resolution_eval_transform

    image = photo("coffee", (101, 76))
    processor = EfficientViTSRImageProcessor()
    low, high = super_resolution_eval_transform(image, scale=3, processor=processor)
    crop = image.crop((0, 0, 99, 75))  # a multiple of the scale
    np.testing.assert_array_equal(high, processor(crop)["pixel_values"][0])
    np.testing.assert_array_equal(low, processor(crop.resize((33, 25), Image.BICUBIC))["pixel_values"][0])
    assert np.abs(high - np.asarray(crop, dtype=np.float64).transpose(2, 0, 1) / 255).max() < 1e-7
    # a padding processor pads only what it serves: pairs stay aligned pixel for pixel
    padded = super_resolution_eval_transform(image, scale=3, processor=EfficientViTSRImageProcessor(pad_size=8))
    np.testing.assert_array_equal(padded[1], high)
    # transparency: composited on white before the degradation, as the processor converts its inputs
    rgba = np.dstack([np.asarray(crop), np.full(crop.size[::-1], 255, np.uint8)])
    rgba[:, :40, 3] = 0
    low, high = super_resolution_eval_transform(Image.fromarray(rgba), scale=3)
    np.testing.assert_array_equal(high, processor(Image.fromarray(rgba))["pixel_values"][0])
    assert (high[:, :, :40] == 1).all() and low.shape == (3, 25, 33)


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
