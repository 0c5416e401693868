"""ONNX export through Optimum (`evit_hf.export.optimum`): the wrapper CLI, `export_with_optimum`, ORTModel
classes and a transformers pipeline on the exported files. Optimum's ONNX exporter needs transformers < 4.58,
so these tests run in the compat environment (`.venv-tf457`) and are skipped elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("optimum.exporters.onnx")
ort_modeling = pytest.importorskip("optimum.onnxruntime")

from evit_hf.export.onnx import ort_session  # noqa: E402
from evit_hf.export.optimum import OPTIMUM_TASKS, export_with_optimum, main, register  # noqa: E402
from evit_hf.export.specs import export_graphs  # noqa: E402
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
from evit_hf.reference import randomize_  # noqa: E402

ATOL = 1e-4


def _random(model: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(0)
    randomize_(model)  # default init gives near-constant outputs
    return model.eval()


def _save(model: torch.nn.Module, folder: Path) -> Path:
    model.save_pretrained(folder)
    return folder


def _diff(actual, expected: torch.Tensor) -> float:
    actual = actual.detach().numpy() if isinstance(actual, torch.Tensor) else actual
    assert actual.shape == tuple(expected.shape)
    return float(np.abs(actual - expected.detach().numpy()).max())


@pytest.fixture(scope="module")
def seg(tmp_path_factory):
    model = _random(EfficientViTForSemanticSegmentation(EfficientViTConfig.from_preset("seg-b0-cityscapes")))
    return model, _save(model, tmp_path_factory.mktemp("seg"))


@pytest.fixture(scope="module")
def seg_onnx(seg, tmp_path_factory):
    out = tmp_path_factory.mktemp("seg_onnx")
    assert main(["export", "onnx", "--model", str(seg[1]), "--task", "semantic-segmentation", str(out)]) == 0
    return out


def test_register_is_idempotent():
    from optimum.exporters.tasks import TasksManager

    register()
    register()
    for model_type, tasks in OPTIMUM_TASKS.items():
        supported = TasksManager.get_supported_tasks_for_model_type(model_type, "onnx", library_name="transformers")
        assert set(tasks) <= set(supported)
    assert TasksManager.infer_library_from_model(EfficientViTModel) == "transformers"


def test_cli_semantic_segmentation_matches_pytorch(seg, seg_onnx):
    model = seg[0]
    assert (seg_onnx / "model.onnx").is_file() and (seg_onnx / "config.json").is_file()
    session = ort_session(seg_onnx / "model.onnx")
    # The export size (Optimum's default dummy shape: batch 2, 64 x 64), then another batch, height and width.
    for shape in [(2, 3, 64, 64), (1, 3, 96, 160)]:
        pixels = torch.randn(*shape)
        with torch.no_grad():
            expected = model(pixel_values=pixels).logits
        (logits,) = session.run(["logits"], {"pixel_values": pixels.numpy()})
        assert _diff(logits, expected) < ATOL


def test_ort_model_semantic_segmentation_and_pipeline(seg, seg_onnx):
    from transformers import SegformerImageProcessor, pipeline

    model = seg[0]
    ort_model = ort_modeling.ORTModelForSemanticSegmentation.from_pretrained(seg_onnx)
    pixels = torch.randn(2, 3, 128, 96)
    with torch.no_grad():
        expected = model(pixel_values=pixels).logits
    assert _diff(ort_model(pixel_values=pixels).logits, expected) < ATOL

    # The package's image processors need transformers >= 5: on 4.57, a transformers processor with the same
    # normalisation (ImageNet mean / std, no resize) stands in.
    processor = SegformerImageProcessor(do_resize=False, image_mean=[0.485, 0.456, 0.406],
                                        image_std=[0.229, 0.224, 0.225])
    rng = np.random.default_rng(0)
    from PIL import Image

    image = Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))
    results = pipeline("image-segmentation", model=ort_model, image_processor=processor)(image)
    reference = pipeline("image-segmentation", model=model, image_processor=processor)(image)
    assert results and all(r["mask"].size == image.size for r in results)
    assert [r["label"] for r in results] == [r["label"] for r in reference]
    for ours, theirs in zip(results, reference):
        assert (np.asarray(ours["mask"]) == np.asarray(theirs["mask"])).mean() > 0.999


def test_cli_image_classification_infers_task(tmp_path):
    model = _random(EfficientViTForImageClassification(EfficientViTConfig.from_preset("b0")))
    folder = _save(model, tmp_path / "cls")
    # No --task: the task comes from config.json's `architectures`.
    assert main(["export", "onnx", "--model", str(folder), str(tmp_path / "onnx")]) == 0
    ort_model = ort_modeling.ORTModelForImageClassification.from_pretrained(tmp_path / "onnx")
    for shape in [(2, 3, 64, 64), (3, 3, 96, 64)]:
        pixels = torch.randn(*shape)
        with torch.no_grad():
            expected = model(pixel_values=pixels).logits
        assert _diff(ort_model(pixel_values=pixels).logits, expected) < ATOL


def test_cli_backbone(tmp_path):
    """`backbone` (stage feature maps) is a custom-class task of the model type `efficientvit`."""
    config = EfficientViTConfig.from_preset("b0", out_features=["stage2", "stage4"])
    model = _random(EfficientViTBackbone(config))
    folder = _save(model, tmp_path / "backbone")
    assert main(["export", "onnx", "--model", str(folder), "--task", "backbone", str(tmp_path / "onnx")]) == 0
    session = ort_session(tmp_path / "onnx" / "model.onnx")
    assert [o.name for o in session.get_outputs()] == ["stage2", "stage4"]
    pixels = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        expected = model(pixel_values=pixels).feature_maps
    for actual, reference in zip(session.run(None, {"pixel_values": pixels.numpy()}), expected):
        assert _diff(actual, reference) < ATOL


def test_image_to_image_super_resolution(tmp_path):
    model = _random(EfficientViTForImageSuperResolution(EfficientViTSRConfig(**SR_PRESETS["sr-light-x2"])))
    results = export_with_optimum(model, tmp_path)
    assert [r.name for r in results] == ["model"] and results[0].max_abs_diff < ATOL
    ort_model = ort_modeling.ORTModelForImageToImage.from_pretrained(tmp_path)
    pixels = torch.rand(1, 3, 20, 30)
    with torch.no_grad():
        expected = model(pixel_values=pixels).reconstruction
    reconstruction = ort_model(pixel_values=pixels).reconstruction
    assert tuple(reconstruction.shape) == (1, 3, 40, 60)
    assert _diff(reconstruction, expected) < ATOL


def test_feature_extraction_from_folder(tmp_path):
    model = _random(EfficientViTModel(EfficientViTConfig.from_preset("b0")))
    results = export_with_optimum(_save(model, tmp_path / "model"), tmp_path / "onnx", size=(64, 64))
    assert results[0].max_abs_diff < ATOL and len(results[0].checks) == 2
    session = ort_session(tmp_path / "onnx" / "model.onnx")
    assert [o.name for o in session.get_outputs()] == ["last_hidden_state", "pooler_output"]
    ort_model = ort_modeling.ORTModelForFeatureExtraction.from_pretrained(tmp_path / "onnx")
    pixels = torch.randn(2, 3, 96, 64)
    with torch.no_grad():
        expected = model(pixel_values=pixels).last_hidden_state
    assert _diff(ort_model(pixel_values=pixels).last_hidden_state, expected) < ATOL


def test_module_cli_remote_code_folder(tmp_path):
    """`python -m evit_hf.export.optimum` on a `trust_remote_code` folder (classes in `transformers_modules.*`),
    in a subprocess with its own HF_HOME (the dynamic-module cache), offline."""
    model = _random(EfficientViTForImageClassification(EfficientViTConfig.from_preset("b0")))
    folder = _save(model, tmp_path / "remote_cls")
    out = tmp_path / "onnx"
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "evit_hf.export.optimum", "export", "onnx", "--model", str(folder),
               "--task", "image-classification", "--trust-remote-code", str(out)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "configuration_efficientvit.py").is_file()  # the remote config class saved its code
    pixels = torch.randn(3, 3, 96, 64)
    with torch.no_grad():
        expected = model(pixel_values=pixels).logits
    (logits,) = ort_session(out / "model.onnx").run(["logits"], {"pixel_values": pixels.numpy()})
    assert _diff(logits, expected) < ATOL


def test_cli_sam_split(tmp_path):
    model = _random(EfficientViTSamModel(EfficientViTSamConfig.from_preset("sam-l0")))
    folder = _save(model, tmp_path / "sam")
    out = tmp_path / "onnx"
    assert main(["export", "onnx", "--model", str(folder), "--task", "mask-generation", str(out)]) == 0
    assert sorted(p.name for p in out.glob("*.onnx")) == ["prompt_encoder_mask_decoder.onnx", "vision_encoder.onnx"]
    assert (out / "config.json").is_file()
    encoder, decoder = export_graphs(model)
    pixels = encoder.sample_inputs(1)  # batch 1 (the export used 2)
    embeddings, points, labels = decoder.sample_inputs(1)
    # One prompt of five points (two with box-corner labels) instead of two prompts of three.
    points = torch.cat([points[:, :1], points[:, :1, :2]], dim=2)
    labels = torch.tensor([[[1, 1, 0, 2, 3]]])
    for graph, inputs in [(encoder, pixels), (decoder, (embeddings, points, labels))]:
        with torch.no_grad():
            expected = graph.module(*inputs)
        expected = expected if isinstance(expected, tuple) else (expected,)
        session = ort_session(out / f"{graph.name}.onnx")
        assert [i.name for i in session.get_inputs()] == graph.input_names
        actual = session.run(graph.output_names, {n: t.numpy() for n, t in zip(graph.input_names, inputs)})
        for a, e in zip(actual, expected):
            assert _diff(a, e) < ATOL
