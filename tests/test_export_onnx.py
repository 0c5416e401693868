"""ONNX export (`evit_hf.export`, `evit-hf export`): every task exports with dynamic axes, runs in ONNX Runtime
at two sizes and matches PyTorch; the SAM prompt decoder graph equals the model's own prompt path; the exact
conv form of bicubic upsampling equals `F.interpolate`; bad requests fail with messages."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("onnxruntime")

from evit_hf.cli import main  # noqa: E402
from evit_hf.export import ExportValidationError, SamPromptMaskDecoder, export_onnx, ort_session  # noqa: E402
from evit_hf.models.efficientvit import (  # noqa: E402
    SR_PRESETS,
    EfficientViTBackbone,
    EfficientViTConfig,
    EfficientViTForImageClassification,
    EfficientViTForImageSuperResolution,
    EfficientViTForSemanticSegmentation,
    EfficientViTModel,
    EfficientViTSamConfig,
    EfficientViTSamModel,
    EfficientViTSRConfig,
)
from evit_hf.models.efficientvit.modeling_efficientvit_blocks import upsample_bicubic_as_conv  # noqa: E402
from evit_hf.reference import randomize_  # noqa: E402
from evit_hf.resolve import load_model  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("factor", [2, 3, 4, 8])
def test_bicubic_as_conv_equals_interpolate(factor):
    x = torch.randn(2, 5, 7, 11)
    expected = F.interpolate(x, scale_factor=factor, mode="bicubic", align_corners=False)
    assert torch.allclose(upsample_bicubic_as_conv(x, factor), expected, atol=1e-5)


def _small(task: str) -> torch.nn.Module:
    base = EfficientViTConfig.from_preset("b0")
    model = {
        "image-classification": lambda: EfficientViTForImageClassification(base),
        "feature-extraction": lambda: EfficientViTModel(base),
        "backbone": lambda: EfficientViTBackbone(EfficientViTConfig.from_preset("b0", out_features=["stage2",
                                                                                                    "stage4"])),
        "semantic-segmentation": lambda: EfficientViTForSemanticSegmentation(
            EfficientViTConfig.from_preset("seg-b0-cityscapes")),
        "image-to-image": lambda: EfficientViTForImageSuperResolution(
            EfficientViTSRConfig(**SR_PRESETS["sr-light-x2"])),
    }[task]()
    return randomize_(model).eval()


@pytest.mark.parametrize(
    ("task", "size", "expected"),
    [
        ("image-classification", (64, 96), {"logits": (2, 2)}),
        ("feature-extraction", (64, 96), {"last_hidden_state": (2, 128, 2, 3), "pooler_output": (2, 128)}),
        ("backbone", (64, 96), {"stage2": (2, 32, 8, 12), "stage4": (2, 128, 2, 3)}),
        ("semantic-segmentation", (64, 128), {"logits": (2, 19, 8, 16)}),
        ("image-to-image", (16, 24), {"reconstruction": (2, 3, 32, 48)}),
    ],
)
def test_every_task_exports_with_dynamic_axes(tmp_path, task, size, expected):
    model = _small(task)
    (result,) = export_onnx(model, tmp_path, task=task, size=size)
    assert result.path == tmp_path / "model.onnx" and (tmp_path / "config.json").is_file()
    assert len(result.checks) == 2  # the export size and another batch / height / width
    assert result.max_abs_diff < 1e-4
    assert expected == dict(zip(expected, (tuple(int(v) for v in o.split()[1].split("x"))
                                           for o in result.checks[0].outputs.split(", "))))
    # A third size, run here directly: the spatial axes really are dynamic.
    session = ort_session(result.path)
    pixels = torch.randn(3, 3, size[0] + 32, size[1] + 64) if task != "image-to-image" else torch.rand(3, 3, 20, 12)
    outputs = session.run(None, {"pixel_values": pixels.numpy()})
    with torch.inference_mode():
        reference = model(pixel_values=pixels, return_dict=True)
    first = next(iter(expected))
    if task == "backbone":
        ref = reference.feature_maps[0]
    else:
        ref = getattr(reference, first)
    assert outputs[0].shape == tuple(ref.shape)
    assert np.abs(outputs[0] - ref.numpy()).max() < 1e-4


def test_onnx_graph_keeps_the_attention_eps_and_has_no_cubic_resize(tmp_path):
    import onnx

    (result,) = export_onnx(_small("semantic-segmentation"), tmp_path, size=(64, 128))
    graph = onnx.load(str(result.path)).graph
    ops = [node.op_type for node in graph.node]
    assert "Resize" not in ops and ops.count("DepthToSpace") == 2  # bicubic as exact conv + pixel shuffle
    assert "Gelu" in ops or "HardSwish" in ops or "Relu" in ops
    # Zero denominators stay finite: an all-zero input gives ReLU-kernel denominators of exactly 0 + eps.
    session = ort_session(result.path)
    out = session.run(None, {"pixel_values": np.zeros((1, 3, 64, 128), np.float32)})[0]
    assert np.isfinite(out).all()


def test_sam_export_writes_two_graphs_with_dynamic_prompts(tmp_path):
    model = randomize_(EfficientViTSamModel(EfficientViTSamConfig.from_preset("sam-l0"))).eval()
    results = export_onnx(model, tmp_path)
    assert [r.path.name for r in results] == ["vision_encoder.onnx", "prompt_encoder_mask_decoder.onnx"]
    assert all(r.max_abs_diff < 1e-4 for r in results)
    decoder = ort_session(results[1].path)
    embeddings = torch.randn(1, 256, 64, 64)
    points = torch.tensor([[[[100.0, 200.0], [0.0, 0.0]], [[300.0, 50.0], [0.0, 0.0]],
                            [[500.0, 600.0], [0.0, 0.0]]]])  # 3 prompts of one point + the padding point
    labels = torch.tensor([[[1, -1], [1, -1], [0, -1]]])
    iou, masks = decoder.run(None, {"image_embeddings": embeddings.numpy(), "input_points": points.numpy(),
                                    "input_labels": labels.numpy()})
    assert iou.shape == (1, 3, 3) and masks.shape == (1, 3, 3, 256, 256)
    with torch.inference_mode():  # the model pads point prompts itself
        reference = model(image_embeddings=embeddings, input_points=points[:, :, :1],
                          input_labels=labels[:, :, :1])
    assert np.abs(masks - reference.pred_masks.numpy()).max() < 1e-4
    assert np.abs(iou - reference.iou_scores.numpy()).max() < 1e-4


def test_decoder_graph_boxes_are_labelled_corners():
    model = randomize_(EfficientViTSamModel(EfficientViTSamConfig.from_preset("sam-l0"))).eval()
    decoder = SamPromptMaskDecoder(model).eval()
    embeddings = torch.randn(1, 256, 64, 64)
    boxes = torch.tensor([[[100.0, 150.0, 400.0, 500.0], [10.0, 20.0, 900.0, 1000.0]]])
    with torch.inference_mode():
        reference = model(image_embeddings=embeddings, input_boxes=boxes)
        iou, masks = decoder(embeddings, boxes.reshape(1, 2, 2, 2), torch.tensor([[[2, 3], [2, 3]]]))
    assert torch.allclose(masks, reference.pred_masks, atol=1e-5)
    assert torch.allclose(iou, reference.iou_scores, atol=1e-5)


def test_validation_failure_is_an_error(tmp_path):
    with pytest.raises(ExportValidationError, match="differ by"):
        export_onnx(_small("image-classification"), tmp_path, size=(64, 64), atol=0.0)


def test_cli_exports_a_saved_folder_with_its_processor(tmp_path, capsys):
    from evit_hf import EfficientViTSegImageProcessor

    model = _small("semantic-segmentation")
    model.save_pretrained(tmp_path / "model")
    EfficientViTSegImageProcessor.for_dataset("cityscapes").save_pretrained(tmp_path / "model")
    assert main(["export", "--model", str(tmp_path / "model"), "--out", str(tmp_path / "onnx"),
                 "--size", "64x128"]) == 0
    out = capsys.readouterr().out
    assert "task semantic-segmentation" in out and "max abs diff" in out
    assert {"model.onnx", "config.json", "preprocessor_config.json"} <= {p.name for p in (tmp_path / "onnx").iterdir()}
    assert json.loads((tmp_path / "onnx" / "config.json").read_text())["model_type"] == "efficientvit"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "b9"], "is not a released model, a folder or a Hub id"),
        (["--model", "random:b0", "--task", "mask-generation"], "cannot load as task 'mask-generation'"),
        (["--model", "random:b0", "--format", "tensorrt"], "TensorRT export needs an NVIDIA GPU"),
    ],
)
def test_cli_errors_are_messages(tmp_path, capsys, argv, message):
    assert main(["export", *argv, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_load_model_infers_the_task_from_a_folder(tmp_path):
    _small("image-classification").save_pretrained(tmp_path)
    model, _, task = load_model(str(tmp_path))
    assert task == "image-classification" and isinstance(model, EfficientViTForImageClassification)
    model, _, task = load_model(str(tmp_path), "backbone")
    assert task == "backbone" and isinstance(model, EfficientViTBackbone)


def test_cli_static_int8_calibrates_on_an_image_folder(tmp_path, capsys):
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for index in range(3):
        Image.fromarray(rng.integers(0, 255, (48, 96, 3), dtype=np.uint8)).save(images / f"{index}.png")
    assert main(["export", "--model", "random:seg-b0-cityscapes", "--size", "64x128", "--out", str(tmp_path / "onnx"),
                 "--quantize", "static", "--calibration-images", str(images), "--calibration-count", "3"]) == 0
    out = capsys.readouterr().out
    assert "model_int8.onnx" in out and "INT8 static" in out and "argmax agreement" in out
    assert (tmp_path / "onnx" / "model_int8.onnx").stat().st_size < (tmp_path / "onnx" / "model.onnx").stat().st_size


def test_sr_calibration_images_are_center_cropped(tmp_path):
    """The SR processor keeps the input size, so calibration photographs are cropped (--size, else 256x256):
    a full-resolution photograph through the stride-1 network ran the calibration out of memory."""
    import argparse

    from PIL import Image

    from evit_hf.commands.export import CALIBRATION_CROP, _calibration_inputs
    from evit_hf.export.specs import export_graphs
    from evit_hf.models.efficientvit import EfficientViTSRImageProcessor

    if EfficientViTSRImageProcessor is None:
        pytest.skip("image processors need transformers >= 5")
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (300, 420, 3), dtype=np.uint8)
    Image.fromarray(photo).save(images / "large.png")
    Image.fromarray(photo[:40, :56]).save(images / "small.png")
    model = _small("image-to-image")
    graph = export_graphs(model, None, None)[0]
    args = argparse.Namespace(calibration_images=images, calibration_count=16, size=None, model="sr-light-x2")
    large, small = _calibration_inputs(args, model, graph)
    assert large["pixel_values"].shape == (1, 3, *CALIBRATION_CROP) and small["pixel_values"].shape == (1, 3, 40, 56)
    top, left = (300 - CALIBRATION_CROP[0]) // 2, (420 - CALIBRATION_CROP[1]) // 2
    expected = photo[top:top + CALIBRATION_CROP[0], left:left + CALIBRATION_CROP[1]].transpose(2, 0, 1) / 255.0
    np.testing.assert_allclose(large["pixel_values"][0], expected, atol=1e-6)  # a crop, not a resize
    args.size = (64, 96)
    assert _calibration_inputs(args, model, graph)[0]["pixel_values"].shape == (1, 3, 64, 96)
