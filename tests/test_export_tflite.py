"""TFLite export through litert-torch, validated in the ai-edge-litert interpreter (`evit_hf.export.tflite`).

Needs the `.venv-litert` environment (`pip install litert-torch`): the whole module skips without it. Tiny
configurations with random weights keep every conversion to a few seconds on one CPU.
"""

from __future__ import annotations

import contextlib
import sys

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("litert_torch")

from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from evit_hf.export import tflite  # noqa: E402
from evit_hf.export.onnx import ExportValidationError  # noqa: E402
from evit_hf.export.specs import export_graphs  # noqa: E402
from evit_hf.export.tflite import (  # noqa: E402
    TFLiteExportedGraph,
    bicubic_as_bilinear,
    export_tflite,
    run_tflite,
    validate_tflite,
)
from evit_hf.models.efficientvit import (  # noqa: E402
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
from evit_hf.models.efficientvit.configuration_efficientvit_sam import sam_vision_config  # noqa: E402
from evit_hf.models.efficientvit.configuration_efficientvit_sr import SR_PRESETS  # noqa: E402
from evit_hf.reference import randomize_  # noqa: E402

ATOL = 1e-4
INTERPOLATE = F.interpolate


def tiny_config(**overrides) -> EfficientViTConfig:
    """A narrow 5-stage B-style network with a 3-class segmentation head and a small classifier head."""
    kwargs = dict(
        widths=[8, 8, 16, 16, 32], depths=[1, 1, 1, 1, 1], block_types=["ds", "mb", "mb", "att", "att"],
        expand_ratios=[1, 2, 2, 2, 2], downsample_expand_ratios=[1, 2, 2, 2, 2],
        fewer_norm=[False, False, False, True, True], attention_head_dim=8, head_widths=[32, 48],
        segmentation_head_width=16, segmentation_head_depth=1, segmentation_final_expand=2,
        id2label={0: "sky", 1: "person", 2: "tree"},
    )
    return EfficientViTConfig(**{**kwargs, **overrides})


def tiny_sam_config() -> EfficientViTSamConfig:
    """EfficientViT-SAM with a small encoder (128-pixel input, 8x8 embeddings of 32 channels)."""
    vision = sam_vision_config(
        widths=[8, 16, 32, 64], depths=[1, 1, 1, 1], block_types=["res", "fmb", "mb", "att"],
        expand_ratios=[1, 2, 2, 2], downsample_expand_ratios=[1, 2, 2, 2], fewer_norm=[False, False, True, True],
        attention_head_dim=8, attention_scales=[3], hidden_act="gelu_tanh", image_size=128,
        neck_in_features=["stage3", "stage2"], neck_hidden_size=32, neck_depth=1, neck_output_size=8,
    )
    return EfficientViTSamConfig(
        vision_config=vision,
        prompt_encoder_config={"hidden_size": 32, "image_size": 128, "patch_size": 16},
        mask_decoder_config={"hidden_size": 32, "mlp_dim": 64, "num_attention_heads": 2, "iou_head_hidden_dim": 32},
    )


def check_export(model, tmp_path, shapes: dict[str, dict[str, tuple]], size=None, **kwargs) -> list:
    """Export, then check files, output shapes, the recorded validation and a fresh run of every `.tflite` on
    new random inputs of the same (static) shapes against PyTorch."""
    results = export_tflite(model, tmp_path, size=size, atol=ATOL, **kwargs)
    assert [r.name for r in results] == list(shapes)
    assert (tmp_path / "config.json").is_file()
    graphs = {g.name: g for g in export_graphs(model, size=size)}
    for result in results:
        assert isinstance(result, TFLiteExportedGraph) and result.path == tmp_path / f"{result.name}.tflite"
        assert result.path.stat().st_size > 0 and result.seconds > 0
        assert len(result.checks) == 1 and 0 <= result.max_abs_diff < ATOL
        graph = graphs[result.name]
        generator = torch.Generator().manual_seed(1)
        inputs = tuple(
            torch.randn(t.shape, generator=generator) if t.is_floating_point() else t
            for t in graph.sample_inputs(1, size)
        )
        if result.name == "prompt_encoder_mask_decoder":  # points in the 1024 prompt frame
            inputs = (inputs[0], inputs[1].abs() * 300, inputs[2])
        actual = run_tflite(Interpreter(model_path=str(result.path)), inputs)
        context = bicubic_as_bilinear() if result.resize == "bilinear" else contextlib.nullcontext()
        with context, torch.no_grad():
            expected = graph.module(*inputs)
        expected = expected if isinstance(expected, tuple) else (expected,)
        assert {n: tuple(a.shape) for n, a in zip(graph.output_names, actual)} == shapes[result.name]
        for name, out, ref in zip(graph.output_names, actual, expected):
            diff = (torch.from_numpy(out) - ref).abs().max().item()
            assert diff < ATOL, f"{result.name}/{name}: max abs diff {diff:.3g}"
    return results


def ops(path) -> set[str]:
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    return {op["op_name"] for op in interpreter._get_ops_details()}


def test_image_classification(tmp_path):
    model = randomize_(EfficientViTForImageClassification(tiny_config(num_labels=5)))
    (result,) = check_export(model, tmp_path, {"model": {"logits": (1, 5)}}, size=(64, 64))
    assert result.resize == "bicubic" and result.resize_delta is None  # no resize in the graph
    assert result.checks[0].inputs == "pixel_values 1x3x64x64"
    # A tolerance the export cannot meet fails with the static shape in the message.
    graph = export_graphs(model, size=(64, 64))[0]
    with pytest.raises(ExportValidationError, match="static shape"):
        validate_tflite(graph, result.path, graph.sample_inputs(1, (64, 64)), "bicubic", atol=-1.0)


def test_feature_extraction_and_backbone(tmp_path):
    config = tiny_config(out_features=["stage2", "stage3", "stage4"])
    check_export(randomize_(EfficientViTModel(config)), tmp_path / "features",
                 {"model": {"last_hidden_state": (1, 32, 2, 2), "pooler_output": (1, 32)}}, size=(64, 64))
    check_export(randomize_(EfficientViTBackbone(config)), tmp_path / "backbone",
                 {"model": {"stage2": (1, 16, 8, 8), "stage3": (1, 16, 4, 4), "stage4": (1, 32, 2, 2)}},
                 size=(64, 64))


def test_semantic_segmentation_bicubic_and_bilinear(tmp_path):
    model = randomize_(EfficientViTForSemanticSegmentation(tiny_config()))
    shapes = {"model": {"logits": (1, 3, 8, 12)}}
    # Bicubic converts exactly (the export graph's conv + pixel shuffle): "auto" keeps it.
    (kept,) = check_export(model, tmp_path / "auto", shapes, size=(64, 96))
    assert kept.resize == "bicubic" and kept.resize_delta is None
    assert "RESIZE_BILINEAR" not in ops(kept.path)
    # "bilinear" swaps it for TFLite's native resize inside the export only and reports what that costs.
    (swapped,) = check_export(model, tmp_path / "bilinear", shapes, size=(64, 96), resize="bilinear")
    delta = swapped.resize_delta
    assert swapped.resize == "bilinear" and delta is not None
    assert "RESIZE_BILINEAR" in ops(swapped.path)
    assert 0 < delta.mean_abs_diff <= delta.max_abs_diff and 0 <= delta.argmax_changed <= 1
    assert "argmax class changed" in str(delta)
    graph = export_graphs(model, size=(64, 96))[0]
    with torch.no_grad():
        bicubic = graph.module(*graph.sample_inputs(1, (64, 96)))[0]
        with bicubic_as_bilinear():
            bilinear = graph.module(*graph.sample_inputs(1, (64, 96)))[0]
    assert abs(delta.max_abs_diff - (bicubic - bilinear).abs().max().item()) < 1e-3
    assert F.interpolate is INTERPOLATE  # the swap is undone after the export


def test_auto_falls_back_to_bilinear_when_bicubic_fails(tmp_path, monkeypatch):
    calls = []

    def convert(graph, path, inputs, resize):
        calls.append(resize)
        if resize == "bicubic":
            raise RuntimeError("bicubic not supported")
        return 0.5

    monkeypatch.setattr(tflite, "export_graph_tflite", convert)
    model = EfficientViTForSemanticSegmentation(tiny_config())
    (result,) = export_tflite(model, tmp_path, size=(64, 64), validate=False)
    assert calls == ["bicubic", "bilinear"] and result.resize == "bilinear"
    with pytest.raises(RuntimeError, match="bicubic not supported"):  # no fallback when bicubic is asked for
        export_tflite(model, tmp_path, size=(64, 64), resize="bicubic", validate=False)
    # Graphs without bicubic resizing never fall back.
    with pytest.raises(RuntimeError, match="bicubic not supported"):
        export_tflite(EfficientViTForImageClassification(tiny_config()), tmp_path, size=(64, 64), validate=False)


def test_super_resolution(tmp_path):
    model = randomize_(EfficientViTForImageSuperResolution(EfficientViTSRConfig(**SR_PRESETS["sr-light-x2"])))
    (result,) = check_export(model, tmp_path, {"model": {"reconstruction": (1, 3, 32, 48)}}, size=(16, 24))
    assert result.resize == "bicubic"


def test_mask_generation(tmp_path):
    model = randomize_(EfficientViTSamModel(tiny_sam_config()))
    check_export(model, tmp_path, {
        "vision_encoder": {"image_embeddings": (1, 32, 8, 8)},
        "prompt_encoder_mask_decoder": {"iou_scores": (1, 2, 3), "pred_masks": (1, 2, 3, 32, 32)},
    })


@pytest.mark.slow
def test_mask_generation_sam_l0(tmp_path):
    model = randomize_(EfficientViTSamModel(EfficientViTSamConfig.from_preset("sam-l0")))
    check_export(model, tmp_path, {
        "vision_encoder": {"image_embeddings": (1, 256, 64, 64)},
        "prompt_encoder_mask_decoder": {"iou_scores": (1, 2, 3), "pred_masks": (1, 2, 3, 256, 256)},
    })


def test_bad_arguments_and_missing_litert(tmp_path, monkeypatch):
    model = EfficientViTForImageClassification(tiny_config(num_labels=5))
    with pytest.raises(ValueError, match="resize must be"):
        export_tflite(model, tmp_path, resize="nearest")
    with pytest.raises(ValueError, match="exports as task"):
        export_tflite(model, tmp_path, task="semantic-segmentation")
    monkeypatch.setitem(sys.modules, "litert_torch", None)
    with pytest.raises(ImportError, match=r"pip install litert-torch.*tflite"):
        export_tflite(model, tmp_path)
