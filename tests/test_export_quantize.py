"""ONNX Runtime INT8 quantization (`evit_hf.export.quantize`) of small exports, on CPU.

Random-weight models (`randomize_`: the default init gives near-constant outputs) exported with `export_onnx`:
seg-b0-cityscapes at 128x256 and the b0 classifier at 224. Thresholds were measured on these inputs and carry
a margin (see the comments).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from evit_hf.export import export_graphs, export_onnx, ort_session
from evit_hf.export.quantize import (
    accuracy_delta,
    calibration_inputs_from_graph,
    calibration_inputs_from_images,
    nodes_in_scopes,
    quantize_dynamic_int8,
    quantize_static_int8,
    quantized_consumers,
    upsampling_convs,
)
from evit_hf.models.efficientvit import (
    EfficientViTConfig,
    EfficientViTForImageClassification,
    EfficientViTForSemanticSegmentation,
)
from evit_hf.reference import randomize_

pytest.importorskip("onnxruntime")

SEG_SIZE = (128, 256)


def _export(model, folder: Path, size=None):
    randomize_(model, seed=0).eval()
    result = export_onnx(model, folder, size=size, batch=1)[0]
    return result.path, export_graphs(model, size=size)[0]


@pytest.fixture(scope="module")
def seg(tmp_path_factory):
    torch.manual_seed(0)
    model = EfficientViTForSemanticSegmentation(EfficientViTConfig.from_preset("seg-b0-cityscapes"))
    return _export(model, tmp_path_factory.mktemp("seg"), SEG_SIZE)


@pytest.fixture(scope="module")
def cls(tmp_path_factory):
    torch.manual_seed(0)
    model = EfficientViTForImageClassification(EfficientViTConfig.from_preset("b0"))
    return _export(model, tmp_path_factory.mktemp("cls"))


def _eval_inputs(graph, size, batches=2, batch_size=2):
    generator = torch.Generator().manual_seed(1234)
    return [{"pixel_values": torch.randn(batch_size, 3, *size, generator=generator).numpy()} for _ in range(batches)]


def _attention_matmuls(path) -> list[str]:
    model = onnx.load(str(path))
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and "attention" in n.name]


def _runs(path, feeds):
    outputs = ort_session(path, threads=1).run(None, feeds)
    assert all(np.isfinite(o).all() for o in outputs)
    return outputs


def test_static_int8_segmentation(seg, tmp_path):
    path, graph = seg
    calibration = calibration_inputs_from_graph(graph, batches=3, size=SEG_SIZE)
    result = quantize_static_int8(path, tmp_path / "static.onnx", calibration, graph.fp32_scopes)
    assert result.int8_bytes < 0.75 * result.fp32_bytes  # measured 0.61 (1.78 MB of 2.89 MB)
    assert result.calibration_batches == 3 and result.excluded_nodes
    # The attention nodes and the head's bicubic upsampling (conv + DepthToSpace) stay fp32.
    upsampling = upsampling_convs(result.path)
    assert len(upsampling) == 2 and set(upsampling) <= set(result.excluded_nodes)
    assert all("attention" in name or name in upsampling for name in result.excluded_nodes)
    types = {n.op_type for n in onnx.load(str(result.path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= types
    # LiteMLA stays fp32: its MatMuls and division read no quantized value, and all 12 MatMuls are still there.
    assert quantized_consumers(result.path, ["attention"]) == []
    assert len(_attention_matmuls(result.path)) == 12
    inputs = _eval_inputs(graph, SEG_SIZE)
    (logits,) = _runs(result.path, inputs[0])
    assert logits.shape == (2, 19, SEG_SIZE[0] // 8, SEG_SIZE[1] // 8)
    delta = accuracy_delta(path, result.path, inputs, threads=1)
    logits_delta = delta["logits"]
    # Measured at 128x256 (random weights and inputs): pixel agreement 0.93, relative error 0.04.
    assert logits_delta.argmax_agreement > 0.85
    assert logits_delta.relative_error < 0.1
    assert 0 < logits_delta.mean_abs_diff <= logits_delta.max_abs_diff and not logits_delta.nan


def test_static_without_exclusion_quantizes_attention(seg, tmp_path):
    """The fp32-scope check catches a quantized attention (so the assertion above is meaningful)."""
    path, graph = seg
    calibration = calibration_inputs_from_graph(graph, batches=1, size=SEG_SIZE)
    result = quantize_static_int8(path, tmp_path / "all.onnx", calibration, fp32_scopes=(), preprocess=False,
                                  keep_upsampling_fp32=False)
    assert result.excluded_nodes == []
    assert quantized_consumers(result.path, ["attention"])


def test_dynamic_int8(seg, cls, tmp_path):
    path, graph = seg
    # Default op types (MatMul / Gemm): seg-b0 has no MatMul outside LiteMLA, so nothing changes.
    untouched = quantize_dynamic_int8(path, tmp_path / "seg_default.onnx", graph.fp32_scopes)
    untouched_types = {n.op_type for n in onnx.load(str(untouched.path)).graph.node}
    assert not {"DynamicQuantizeLinear", "MatMulInteger"} & untouched_types
    # With convolutions (ConvInteger): smaller, still correct enough, attention untouched.
    result = quantize_dynamic_int8(path, tmp_path / "seg_conv.onnx", graph.fp32_scopes,
                                   op_types=("MatMul", "Gemm", "Conv"))
    assert result.int8_bytes < 0.75 * result.fp32_bytes  # measured 0.58
    assert quantized_consumers(result.path, ["attention"]) == []
    assert len(_attention_matmuls(result.path)) == 12
    assert not any("attention" in n for n in nodes_in_scopes(result.path, ["attention"], ["ConvInteger"]))
    inputs = _eval_inputs(graph, SEG_SIZE, batches=1)
    _runs(result.path, inputs[0])
    delta = accuracy_delta(path, result.path, inputs, threads=1)["logits"]
    assert delta.argmax_agreement > 0.8 and delta.relative_error < 0.12  # measured 0.93 / 0.03

    path, graph = cls
    result = quantize_dynamic_int8(path, tmp_path / "cls.onnx", graph.fp32_scopes)
    types = {n.op_type for n in onnx.load(str(result.path)).graph.node}
    assert "DynamicQuantizeLinear" in types  # the classifier head's MatMul / Gemm
    assert result.int8_bytes < 0.8 * result.fp32_bytes
    assert quantized_consumers(result.path, ["attention"]) == []
    inputs = _eval_inputs(graph, (224, 224), batches=2, batch_size=4)
    delta = accuracy_delta(path, result.path, inputs, threads=1)["logits"]
    assert delta.argmax_agreement >= 0.75 and delta.relative_error < 0.1


def test_static_int8_classification_from_images(cls, tmp_path):
    """Calibration from a folder of images through the model's image processor; top-1 agreement."""
    from PIL import Image

    from evit_hf.models.efficientvit import EfficientViTImageProcessor

    if EfficientViTImageProcessor is None:
        pytest.skip("image processors need transformers >= 5")
    path, graph = cls
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(4):
        pixels = rng.integers(0, 256, (160 + 16 * index, 200, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / ("sub" if index % 2 else ".") / f"image{index}.png")
    (folder / "notes.txt").write_text("not an image")
    processor = EfficientViTImageProcessor()
    calibration = list(calibration_inputs_from_images(folder, processor, batch_size=2))
    assert len(calibration) == 2 and calibration[0]["pixel_values"].shape == (2, 3, 224, 224)
    result = quantize_static_int8(path, tmp_path / "cls_static.onnx", calibration, graph.fp32_scopes)
    assert result.int8_bytes < 0.5 * result.fp32_bytes
    assert quantized_consumers(result.path, ["attention"]) == []
    delta = accuracy_delta(path, result.path, calibration, threads=1)
    assert delta["logits"].argmax_agreement is not None and delta["logits"].relative_error < 0.2
    with pytest.raises(FileNotFoundError):
        list(calibration_inputs_from_images(tmp_path / "empty_missing", processor))


def test_calibration_inputs_validation(seg, tmp_path):
    path, _ = seg
    with pytest.raises(ValueError, match="No calibration inputs"):
        quantize_static_int8(path, tmp_path / "x.onnx", [])
    with pytest.raises(ValueError, match="calibration_method"):
        quantize_static_int8(path, tmp_path / "x.onnx", [{"pixel_values": np.zeros((1, 3, 32, 32), np.float32)}],
                             calibration_method="mse")
