"""TensorRT engines (`evit_hf.export.tensorrt`).

The pure-Python parts (which ONNX nodes are pinned to fp32, optimisation-profile shapes, error messages) run
everywhere; engine building and running need an NVIDIA GPU with TensorRT 10 and are skipped otherwise, with
`tensorrt_available()`'s reason.
"""

from __future__ import annotations

import onnx
import pytest
import torch

from evit_hf.export import export_graphs, export_onnx
from evit_hf.export.tensorrt import (
    TensorRTUnavailableError,
    _layer_matches,
    _prefix_pattern,
    build_engine,
    fp32_node_names,
    has_qdq,
    onnx_input_shapes,
    ort_tensorrt_session,
    profile_shapes,
    tensorrt_available,
)
from evit_hf.models.efficientvit import (
    EfficientViTConfig,
    EfficientViTForSemanticSegmentation,
    EfficientViTSamConfig,
    EfficientViTSamModel,
)
from evit_hf.reference import randomize_

AVAILABLE, REASON = tensorrt_available()
needs_tensorrt = pytest.mark.skipif(not AVAILABLE, reason=REASON)


def _seg_model():
    torch.manual_seed(0)
    return randomize_(EfficientViTForSemanticSegmentation(EfficientViTConfig.from_preset("seg-b0-cityscapes"))).eval()


@pytest.fixture(scope="module")
def seg_export(tmp_path_factory):
    model = _seg_model()
    path = export_onnx(model, tmp_path_factory.mktemp("seg"), size=(128, 256), batch=1)[0].path
    return model, path, export_graphs(model, size=(128, 256))[0]


@pytest.fixture(scope="module")
def tiny_sam_export(tmp_path_factory):
    from test_sam import tiny_sam_config

    torch.manual_seed(0)
    model = randomize_(EfficientViTSamModel(tiny_sam_config())).eval()
    results = export_onnx(model, tmp_path_factory.mktemp("sam"), batch=1)
    return model, {r.name: r.path for r in results}, {g.name: g for g in export_graphs(model)}


# ------------------------------------------------------------------------------------------------- CPU parts
def test_fp32_nodes_segmentation(seg_export):
    _, path, graph = seg_export
    nodes = fp32_node_names(path, graph.fp32_scopes)
    model = onnx.load(str(path))
    op_of = {n.name: n.op_type for n in model.graph.node}
    attention = [n.name for n in model.graph.node if "attention" in n.name]
    # Every float computation of LiteMLA: the MatMuls, the key sum, the eps add and the division, the convs.
    for op, count in (("MatMul", 12), ("Div", 4), ("ReduceSum", 4), ("Add", 4), ("Relu", 8), ("Conv", 16)):
        assert sum(op_of[n] == op for n in nodes if "attention" in n) == count, op
    assert set(nodes) <= set(attention) | {n for n in op_of if op_of[n] in ("Div", "ReduceSum", "ReduceMean")}
    # Shape arithmetic in the scope (Shape / Gather of sizes / integer Mul) is not pinned.
    assert not any(op_of[n] in ("Shape", "Gather") for n in nodes)
    assert not has_qdq(path)


def test_fp32_nodes_sam(tiny_sam_export):
    _, paths, graphs = tiny_sam_export
    encoder = fp32_node_names(paths["vision_encoder"], graphs["vision_encoder"].fp32_scopes)
    op_of = {n.name: n.op_type for n in onnx.load(str(paths["vision_encoder"])).graph.node}
    assert any("attention" in n and op_of[n] == "MatMul" for n in encoder)
    assert any("attention" in n and op_of[n] == "Div" for n in encoder)
    assert any(op_of[n] == "LayerNormalization" for n in encoder)  # the neck's LayerNorm ("norm" scope)
    decoder = fp32_node_names(paths["prompt_encoder_mask_decoder"], graphs["prompt_encoder_mask_decoder"].fp32_scopes)
    dec_ops = {n.name: n.op_type for n in onnx.load(str(paths["prompt_encoder_mask_decoder"])).graph.node}
    assert any(dec_ops[n] == "Softmax" for n in decoder)
    assert any(dec_ops[n] == "LayerNormalization" for n in decoder)
    assert any("attn" in n and dec_ops[n] == "MatMul" for n in decoder)


def test_layer_name_matching():
    nodes = frozenset({"/m/attention/MatMul", "/m/attention/Div", "/m/norm/LayerNormalization"})
    pattern = _prefix_pattern(nodes)
    assert _layer_matches("/m/attention/MatMul", nodes, pattern, [])
    assert _layer_matches("/m/attention/MatMul_output_0_cast", nodes, pattern, [])  # a parser helper layer
    assert not _layer_matches("/m/conv/Conv", nodes, pattern, [])
    assert _layer_matches("/m/conv/attention/Conv", nodes, pattern, ["attention"])


def test_profile_shapes(seg_export, tiny_sam_export):
    _, path, graph = seg_export
    shapes = profile_shapes(graph, batch=(1, 2, 4))
    assert shapes["pixel_values"] == ((1, 3, 32, 64), (2, 3, 128, 256), (4, 3, 256, 512))
    shapes = profile_shapes(graph, size=(512, 1024), min_size=(100, 100), max_size=(1024, 2048))
    assert shapes["pixel_values"] == ((1, 3, 128, 128), (1, 3, 512, 1024), (8, 3, 1024, 2048))
    with pytest.raises(ValueError, match="height"):
        onnx_input_shapes(path)  # spatial axes need explicit shapes

    _, paths, graphs = tiny_sam_export
    encoder = profile_shapes(graphs["vision_encoder"])
    assert encoder["pixel_values"] == ((1, 3, 128, 128), (1, 3, 128, 128), (8, 3, 128, 128))
    assert onnx_input_shapes(paths["vision_encoder"]) == encoder
    decoder = profile_shapes(graphs["prompt_encoder_mask_decoder"], prompts=(1, 4, 64), points=(1, 2, 10))
    embeddings = graphs["prompt_encoder_mask_decoder"].sample_inputs(1)[0].shape
    assert decoder["image_embeddings"] == ((1, *embeddings[1:]), (1, *embeddings[1:]), (8, *embeddings[1:]))
    assert decoder["input_points"] == ((1, 1, 1, 2), (1, 4, 2, 2), (8, 64, 10, 2))
    assert decoder["input_labels"] == ((1, 1, 1), (1, 4, 2), (8, 64, 10))


def test_unavailable_errors(seg_export, tmp_path):
    import onnxruntime as ort

    _, path, _ = seg_export
    with pytest.raises(ValueError, match="precision"):
        build_engine(path, tmp_path / "x.engine", precision="bf16")
    if AVAILABLE:
        return
    assert isinstance(REASON, str) and REASON
    with pytest.raises(TensorRTUnavailableError, match="CUDA|tensorrt|TensorRT"):
        build_engine(path, tmp_path / "x.engine")
    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(TensorRTUnavailableError, match="TensorrtExecutionProvider"):
            ort_tensorrt_session(path)


# ------------------------------------------------------------------------------------------------- GPU parts
def _relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    actual, expected = actual.float().cpu(), expected.float().cpu()
    return float((actual - expected).norm() / expected.norm().clamp_min(1e-12))


@needs_tensorrt
@pytest.mark.parametrize("precision,tolerance", [("fp32", 1e-3), ("fp16", 3e-2)])
def test_engine_segmentation(seg_export, tmp_path, precision, tolerance):
    from evit_hf.export.tensorrt import TensorRTRunner

    model, path, graph = seg_export
    shapes = profile_shapes(graph, batch=(1, 2, 4))
    build = build_engine(path, tmp_path / f"seg_{precision}.engine", precision, graph.fp32_scopes, shapes,
                         timing_cache=tmp_path / "timing.cache")
    if precision == "fp16":
        assert any("attention" in name for name in build.pinned_layers)
    runner = TensorRTRunner(build)
    for size in ((128, 256), (160, 224)):  # the opt shape and another size inside the profile
        pixels = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            expected = model(pixel_values=pixels).logits
        logits = runner(pixel_values=pixels.cuda())["logits"]
        assert logits.shape == expected.shape and torch.isfinite(logits).all()
        assert _relative_error(logits, expected) < tolerance
        agreement = (logits.float().cpu().argmax(1) == expected.argmax(1)).float().mean()
        assert agreement > (0.999 if precision == "fp32" else 0.97)


@needs_tensorrt
@pytest.mark.parametrize("precision,tolerance", [("fp32", 1e-3), ("fp16", 3e-2)])
def test_engine_sam_l0_encoder(tmp_path, precision, tolerance):
    from evit_hf.export.tensorrt import TensorRTRunner

    torch.manual_seed(0)
    model = randomize_(EfficientViTSamModel(EfficientViTSamConfig.from_preset("sam-l0"))).eval()
    path = export_onnx(model, tmp_path, batch=1, validate=False)[0].path
    graph = export_graphs(model)[0]
    build = build_engine(path, tmp_path / f"sam_{precision}.engine", precision, graph.fp32_scopes,
                         profile_shapes(graph, batch=(1, 1, 2)))
    if precision == "fp16":
        assert any("LayerNorm" in name or "layer_norm" in name for name in build.pinned_layers)
    pixels = torch.randn(1, 3, 512, 512, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = graph.module(pixels)
    embeddings = TensorRTRunner(build)(pixel_values=pixels.cuda())["image_embeddings"]
    assert embeddings.shape == expected.shape and torch.isfinite(embeddings).all()
    assert _relative_error(embeddings, expected) < tolerance


@needs_tensorrt
def test_engine_int8_explicit_qdq(seg_export, tmp_path):
    """INT8 through the QDQ file of `quantize_static_int8` (explicit quantization, attention fp32)."""
    from evit_hf.export.quantize import calibration_inputs_from_graph, quantize_static_int8
    from evit_hf.export.tensorrt import TensorRTRunner

    model, path, graph = seg_export
    qdq = quantize_static_int8(path, tmp_path / "qdq.onnx", calibration_inputs_from_graph(graph, 4),
                               graph.fp32_scopes, target="tensorrt").path
    assert has_qdq(qdq)
    build = build_engine(qdq, tmp_path / "seg_int8.engine", "int8", graph.fp32_scopes,
                         profile_shapes(graph, batch=(1, 2, 4)))
    assert build.explicit_int8
    pixels = torch.randn(2, 3, 128, 256, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = model(pixel_values=pixels).logits
    logits = TensorRTRunner(build)(pixel_values=pixels)["logits"]
    assert torch.isfinite(logits).all()
    assert (logits.float().cpu().argmax(1) == expected.argmax(1)).float().mean() > 0.7
