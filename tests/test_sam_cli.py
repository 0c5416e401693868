"""`evit-hf sam` (prompts and --everything), prompt validation in the processor call, and `bench.sam`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from evit_hf.cli import main
from evit_hf.models.efficientvit.image_processing_efficientvit_sam import EfficientViTSamImageProcessor
from evit_hf.models.efficientvit.modeling_efficientvit_sam import EfficientViTSamModel
from test_sam import tiny_sam_config

WIDTH, HEIGHT = 160, 160  # astronaut (512x512) resized for speed


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("tiny_sam")
    torch.manual_seed(0)
    config = tiny_sam_config()
    EfficientViTSamModel(config).save_pretrained(folder)
    EfficientViTSamImageProcessor.for_config(config).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def image_path(tmp_path_factory) -> str:
    from skimage.data import astronaut

    path = tmp_path_factory.mktemp("images") / "astronaut.png"
    Image.fromarray(astronaut()).resize((WIDTH, HEIGHT), Image.BILINEAR).save(path)
    return str(path)


def _pixels(path: str | Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def _prompt_mask(folder: str, image_path: str, points=None, labels=None, box=None) -> np.ndarray:
    from evit_hf.predict import SamPredictor
    from evit_hf.resolve import load_model

    model, processor, _ = load_model(folder, "mask-generation")
    predictor = SamPredictor(model, processor)
    predictor.set_image(Image.open(image_path).convert("RGB"))
    return predictor.predict(points, labels, box).best()[0].numpy()


def test_sam_cli_point(tiny_folder, image_path, tmp_path, capsys):
    out = tmp_path / "point.png"
    argv = ["sam", image_path, "--point", "80", "70", "--negative", "20", "20", "--model", tiny_folder]
    assert main(argv + ["--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "image embedding:" in printed and "masks:" in printed and str(out) in printed
    result, original = _pixels(out), _pixels(image_path)
    assert result.shape == original.shape == (HEIGHT, WIDTH, 3)
    mask = _prompt_mask(tiny_folder, image_path, points=[[80.0, 70.0], [20.0, 20.0]], labels=[1, 0])
    assert mask.shape == (HEIGHT, WIDTH) and mask.any()
    changed = (result != original).any(axis=-1)
    assert changed[mask].mean() > 0.95  # the mask is coloured in
    assert changed[78, 88] or changed[70, 80]  # the point is drawn


def test_sam_cli_box(tiny_folder, image_path, tmp_path):
    out = tmp_path / "box.png"
    assert main(["sam", image_path, "--box", "30", "20", "130", "140", "--model", tiny_folder, "--out", str(out)]) == 0
    result, original = _pixels(out), _pixels(image_path)
    assert result.shape == original.shape
    changed = (result != original).any(axis=-1)
    mask = _prompt_mask(tiny_folder, image_path, box=[30.0, 20.0, 130.0, 140.0])
    if mask.any():
        assert changed[mask].mean() > 0.95
    assert changed[20, 30:130].all()  # the box outline


def test_sam_cli_everything(tiny_folder, image_path, tmp_path, capsys):
    out = tmp_path / "everything.png"
    argv = ["sam", image_path, "--everything", "--points-per-side", "4", "--pred-iou-thresh=-1e9",
            "--stability-score-thresh=-1e9", "--model", tiny_folder, "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "4x4 grid" in printed and "image embedding:" in printed
    result, original = _pixels(out), _pixels(image_path)
    assert result.shape == original.shape and (result != original).any()


def test_sam_cli_everything_json_and_default_grid(tiny_folder, image_path, tmp_path, capsys):
    """--json writes segment-anything's records of the drawn masks; the default grid is the library's (the app's:
    tests/test_app.py)."""
    import json

    from evit_hf.cli import build_parser
    from evit_hf.predict import INTERACTIVE_POINTS_PER_SIDE
    from evit_hf.predict.masks import rle_to_mask

    args = build_parser().parse_args(["sam", image_path, "--everything", "--model", tiny_folder])
    assert args.points_per_side == INTERACTIVE_POINTS_PER_SIDE == 16
    records_path = tmp_path / "masks.json"
    argv = ["sam", image_path, "--everything", "--points-per-side", "3", "--pred-iou-thresh=-1e9",
            "--stability-score-thresh=-1e9", "--model", tiny_folder, "--out", str(tmp_path / "e.png"),
            "--json", str(records_path), "--quiet"]
    assert main(argv) == 0
    assert f"wrote {records_path}" in capsys.readouterr().out
    records = json.loads(records_path.read_text())
    assert records and all(r["segmentation"]["size"] == [HEIGHT, WIDTH] for r in records)
    for record in records:
        mask = rle_to_mask(record["segmentation"])
        assert mask.sum() == record["area"] and {"predicted_iou", "stability_score", "bbox"} <= record.keys()


def test_sam_cli_several_boxes(tiny_folder, image_path, tmp_path, capsys):
    """Several --box prompts: one mask each, in one batched call, equal to prompting each box alone."""
    import json

    from evit_hf.predict.masks import rle_to_mask

    boxes = [[30.0, 20.0, 130.0, 140.0], [5.0, 60.0, 90.0, 150.0]]
    records_path = tmp_path / "boxes.json"
    argv = ["sam", image_path, "--box", *map(str, boxes[0]), "--box", *map(str, boxes[1]), "--model", tiny_folder,
            "--out", str(tmp_path / "b.png"), "--json", str(records_path)]
    assert main(argv) == 0
    assert "2 masks, one per box" in capsys.readouterr().out
    records = json.loads(records_path.read_text())
    from evit_hf.predict import SamPredictor
    from evit_hf.resolve import load_model

    predictor = SamPredictor(*load_model(tiny_folder, "mask-generation")[:2])
    predictor.set_image(Image.open(image_path).convert("RGB"))
    for box, record in zip(boxes, records, strict=True):
        alone = predictor.predict(box=box, multimask_output=False).masks[0].numpy()
        assert (rle_to_mask(record["segmentation"]) != alone).mean() < 1e-3


def test_sam_cli_preset_warns(image_path, tmp_path, capsys):
    out = tmp_path / "preset.png"
    with pytest.warns(UserWarning, match="random weights"):
        assert main(["sam", image_path, "--point", "80", "80", "--model", "random:sam-l0", "--out", str(out)]) == 0
    assert Image.open(out).size == (WIDTH, HEIGHT)


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--point", "500", "10"], "outside"),
        (["--point", "-1", "10"], "outside"),
        (["--box", "10", "10", "200", "50"], "outside"),
        (["--box", "50", "10", "20", "50"], "x1 >= x0"),
        (["--everything", "--negative", "1", "1"], "--negative"),
        (["--everything", "--points-per-side", "0"], "points-per-side"),
    ],
)
def test_sam_cli_bad_prompts(tiny_folder, image_path, tmp_path, capsys, extra, message):
    out = tmp_path / "bad.png"
    assert main(["sam", image_path, *extra, "--model", tiny_folder, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "evit-hf sam: error:" in err and message in err
    assert not out.exists()


def test_sam_cli_bad_inputs(tiny_folder, image_path, tmp_path, capsys):
    assert main(["sam", str(tmp_path / "missing.png"), "--point", "1", "1", "--model", tiny_folder]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["sam", image_path, "--point", "1", "1", "--model", str(tmp_path / "no_model")]) == 2
    assert "does not exist (no such folder)" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: one prompt mode
        main(["sam", image_path, "--point", "1", "1", "--box", "0", "0", "5", "5", "--model", tiny_folder])


# ----------------------------------------------------------------------------------------------------
# Prompts given to the image processor call


def _image(height: int = 300, width: int = 400) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray((rng.random((height, width, 3)) * 255).astype(np.uint8))


def test_processor_call_returns_prompts_in_prompt_frame():
    from transformers import SamProcessor

    processor = EfficientViTSamImageProcessor(encoder_size=512)
    ours = processor(
        _image(), input_points=[[[200, 150]]], input_labels=[[1]], input_boxes=[[10, 20, 300, 250]],
        return_tensors="pt",
    )
    stock = SamProcessor(image_processor=processor)(
        images=_image(), input_points=[[[200, 150]]], input_labels=[[1]], input_boxes=[[[10, 20, 300, 250]]],
        return_tensors="pt",
    )
    for key in ("pixel_values", "original_sizes", "reshaped_input_sizes", "input_labels"):
        torch.testing.assert_close(ours[key], stock[key])
    for key in ("input_points", "input_boxes"):
        torch.testing.assert_close(ours[key], stock[key].to(ours[key].dtype))
    assert ours["input_points"].shape == (1, 1, 1, 2) and ours["input_boxes"].shape == (1, 1, 4)
    # Two images, two point sets of two points each (a -10 padding point may lie anywhere).
    batch = processor(
        [_image(), _image(200, 100)],
        input_points=[[[[10, 10], [20, 20]], [[30, 30], [-10, -10]]], [[[5, 5], [6, 6]], [[7, 7], [8, 8]]]],
        input_labels=[[[1, 0], [1, -10]], [[1, 1], [0, 1]]],
    )
    assert batch["input_points"].shape == (2, 2, 2, 2) and batch["input_labels"].shape == (2, 2, 2)
    np.testing.assert_allclose(batch["input_points"][1, 0, 0], [5 * 512 / 100, 5 * 1024 / 200])
    assert "input_points" not in processor(_image(), return_tensors="pt")  # no prompts: images only


@pytest.mark.parametrize(
    "prompts,message",
    [
        (dict(input_points=[[[500, 10]]]), "outside the 400x300 image"),
        (dict(input_points=[[[10, -3]]]), "outside"),
        (dict(input_boxes=[[0, 0, 10, 600]]), "outside"),
        (dict(input_boxes=[[50, 0, 10, 60]]), "x1 >= x0"),
        (dict(input_labels=[[1]]), "without `input_points`"),
        (dict(input_boxes=[[0, 0, 5, 5]], input_labels=[[1]]), "without `input_points`"),
        (dict(input_points=[[[10, 10]]], input_labels=[[1, 1]]), "one label per point"),
        (dict(input_points=[[[10, 10]]], input_labels=[[7]]), "labels must be"),
        (dict(input_points=[[[[1, 1]], [[1, 1], [2, 2]]]]), "not a regular nested list"),
        (dict(input_points=[[[1, 1, 1]]]), "point sets"),
        (dict(input_boxes=[[0, 1, 2]]), "input_boxes"),
        (dict(input_points=[[[[1, 1]], [[2, 2]]]], input_boxes=[[0, 0, 5, 5]]), "one box per point set"),
        (dict(input_points=[]), "one entry per image"),
        (dict(input_points=[[]]), "empty"),
        (dict(input_boxes=[[]]), "empty"),
        (dict(input_points=[[[1, 1]], [[2, 2]]]), "one entry per image"),
    ],
)
def test_processor_call_rejects_bad_prompts(prompts, message):
    with pytest.raises(ValueError, match=message):
        EfficientViTSamImageProcessor(encoder_size=512)(_image(), return_tensors="pt", **prompts)


def test_processor_call_names_the_image_of_a_batch():
    processor = EfficientViTSamImageProcessor(encoder_size=512)
    with pytest.raises(ValueError, match=r"Image 1: .*outside the 100x200 image"):
        processor([_image(), _image(200, 100)], input_points=[[[10, 10]], [[150, 10]]])
    with pytest.raises(ValueError, match="same shape for every image"):
        processor([_image(), _image()], input_points=[[[10, 10]], [[10, 10], [20, 20]]])


def test_validate_prompts_before_sam_processor():
    """`SamProcessor` never hands the prompts to the image processor: `validate_prompts` checks them first."""
    processor = EfficientViTSamImageProcessor(encoder_size=512)
    prompts = processor.validate_prompts([(300, 400)], input_points=[[[10, 10]]], input_labels=[[1]])
    assert prompts["input_points"][0].shape == (1, 1, 2) and prompts["input_labels"][0].shape == (1, 1)
    with pytest.raises(ValueError, match="No prompt"):
        processor.validate_prompts([(300, 400)])


# ----------------------------------------------------------------------------------------------------
# Benchmark


def test_bench_format_table_on_synthetic_rows():
    from evit_hf.bench.sam import REFERENCE, format_table

    rows = [
        {"kind": "encoder", "model": REFERENCE, "resolution": 1024, "params_m": 89.7, "gmacs": 370.0,
         "median_ms": 30000.0, "min_ms": 29000.0, "runs": 1, "speedup_vs_vitb": 1.0},
        {"kind": "encoder", "model": "EfficientViT-SAM-L0", "resolution": 512, "params_m": 31.0, "gmacs": 35.0,
         "median_ms": 600.0, "min_ms": 580.0, "runs": 5, "speedup_vs_vitb": 50.0},
        {"kind": "prompt", "model": "EfficientViT-SAM-L0", "prompt": "1 box", "median_ms": 8.0, "min_ms": 7.5,
         "runs": 20},
    ]
    table = format_table(rows)
    assert table.count("| image encoder |") == 1 and "speed-up vs ViT-B" in table
    assert "| EfficientViT-SAM-L0 | 512 | 31.0 | 35.0 | 600.0 | 580.0 | 5 | 50.0 |" in table
    assert "1 box" in table and "segment everything" not in table  # --everything: test_bench_everything_run


def test_bench_tiny_run():
    from evit_hf.bench.sam import format_table, run

    rows = run(presets=["sam-l0"], budget_s=0.05, reference=False)
    kinds = [row["kind"] for row in rows]
    assert kinds == ["encoder", "prompt", "prompt"]
    encoder = rows[0]
    assert encoder["resolution"] == 512 and encoder["median_ms"] > 0 and encoder["gmacs"] > 1
    assert 20 < encoder["params_m"] < 60
    assert "EfficientViT-SAM-L0" in format_table(rows)
    with pytest.raises(ValueError, match="unknown SAM preset"):
        run(presets=["sam-xxl"])


def test_bench_everything_run():
    """`bench sam --everything` (ours alone here: the peers take minutes on SAM-L0): the time split, the CPU
    time, the floor row with the MACs counted on the meta device."""
    from evit_hf.bench.sam import OURS, format_everything, run_everything

    rows = run_everything("sam-l0", points_per_side=1, threads=1, pipeline=False, original=False,
                          tune=False)  # the allocator tuning is process-wide: not in the test process
    ours, floor = rows
    assert ours["allocator_tuned"] is False
    assert ours["implementation"] == OURS and ours["prompts"] == 1 and ours["grid"] == "1x1"
    assert ours["total_ms"] == pytest.approx(ours["embedding_ms"] + ours["decoder_ms"] + ours["postprocess_ms"])
    assert ours["embedding_ms"] > 0 and ours["decoder_ms"] > 0 and ours["cpu_s"] > 0
    assert floor["kind"] == "floor" and 1.7 < floor["stock_gmacs_per_prompt"] < 1.9  # SAM-L0's decoder
    assert floor["ours_tokens_gmacs_per_prompt"] + floor["ours_masks_gmacs_per_kept_prompt"] < 1.0
    assert floor["floor_ms"] == pytest.approx(floor["stock_gmacs_per_prompt"] / floor["gemm_gmacs"] * 1e3)
    assert ours["vs_floor"] == pytest.approx(ours["total_ms"] / floor["floor_ms"])
    assert "Decoder floor: 1.81 GMACs per prompt" in format_everything(rows)
    with pytest.raises(ValueError, match="unknown SAM preset"):
        run_everything("sam-xxl")


def test_sam_processor_validates_prompts(tmp_path):
    from transformers import AutoProcessor

    import evit_hf  # noqa: F401  (registers AutoProcessor)
    from evit_hf.models.efficientvit.processing_efficientvit_sam import EfficientViTSamProcessor

    config = tiny_sam_config()
    processor = EfficientViTSamProcessor(EfficientViTSamImageProcessor.for_config(config))
    image = Image.fromarray(np.zeros((90, 120, 3), dtype=np.uint8))
    inputs = processor(image, input_points=[[[[60, 45]]]], return_tensors="pt")
    assert inputs["input_points"].shape == (1, 1, 1, 2)
    with pytest.raises(ValueError, match="outside"):
        processor(image, input_points=[[[[500, 45]]]])
    with pytest.raises(ValueError, match="without `input_points`"):
        processor(image, input_labels=[[[1]]])
    with pytest.raises(ValueError, match="outside"):
        processor(image, input_boxes=[[[0, 0, 130, 50]]])
    EfficientViTSamModel(config).save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    assert isinstance(AutoProcessor.from_pretrained(tmp_path), EfficientViTSamProcessor)
