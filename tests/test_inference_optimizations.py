"""The eval-mode inference-optimised graph (`config.optimize_inference`) and `evit-hf bench cpu`.

The fixture parity tests (test_convert / test_segmentation / test_sam) run both graphs against the original;
here: the pieces (BatchNorm folding, the sigmoid form of tanh-GELU), agreement of the two graphs on every
model family and activation, what must not change (training mode, gradients, autocast, tracing for export,
output layout, the saved switch), and the benchmark rows.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

import evit_hf  # noqa: F401  (registers the Auto classes)
from evit_hf import (
    EfficientViTConfig,
    EfficientViTForImageClassification,
    EfficientViTForSemanticSegmentation,
    EfficientViTSamModel,
)
from evit_hf.bench import inference
from evit_hf.models.efficientvit import modeling_efficientvit
from evit_hf.models.efficientvit.modeling_efficientvit import ConvNormAct, fold_batchnorm, gelu_tanh_
from evit_hf.models.efficientvit.modeling_efficientvit_cpuconv import (
    pointwise_conv_as_gemm,
    winograd_conv3x3,
    winograd_filter,
)
from evit_hf.reference import randomize_
from evit_hf.reference.original import OriginalUnavailable
from test_sam import tiny_sam_config
from test_segmentation import tiny_config as tiny_seg_config

ACTIVATIONS = ["hardswish", "relu", "relu6", "silu", "gelu", "gelu_tanh"]


def _pair(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(optimised, plain) copies of a randomised model in eval mode."""
    import copy

    optimised = randomize_(model, seed=3).eval()
    plain = copy.deepcopy(optimised)
    plain.set_inference_optimizations(False)
    return optimised, plain


def test_fold_batchnorm_equals_conv_then_norm():
    block = ConvNormAct(6, 10, 3, stride=2, bias=True, act=None)
    randomize_(block, seed=1).eval()
    x = torch.randn(2, 6, 9, 11)
    weight, bias = fold_batchnorm(block.conv, block.norm)
    expected = block.norm(block.conv(x))
    assert torch.allclose(F.conv2d(x, weight, bias, 2, 1), expected, atol=1e-5)


def test_gelu_tanh_in_place_equals_torch():
    x = torch.randn(4096) * 4
    expected = F.gelu(x, approximate="tanh")
    out = gelu_tanh_(x)
    assert out.data_ptr() == x.data_ptr()
    assert (out - expected).abs().max() < 2e-6
    extremes = gelu_tanh_(torch.tensor([-1e30, -50.0, 0.0, 50.0, 1e30]))
    assert torch.equal(extremes, torch.tensor([0.0, 0.0, 0.0, 50.0, 1e30]))


@pytest.mark.parametrize(
    "batch,height,width,bias,channels_last",
    [(1, 16, 16, True, True), (2, 13, 18, False, False), (1, 8, 9, True, False)],
)
def test_winograd_conv_matches_the_direct_conv(batch, height, width, bias, channels_last):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 64, height, width, generator=generator)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(80, 64, 3, 3, generator=generator) / 24.0  # unit-scale outputs
    b = torch.randn(80, generator=generator) if bias else None
    exact = F.conv2d(x.double(), weight.double(), None if b is None else b.double(), padding=1)
    direct = F.conv2d(x, weight, b, padding=1)
    ours = winograd_conv3x3(x, winograd_filter(weight), b)
    assert ours.shape == exact.shape and ours.dtype == torch.float32
    assert ours.is_contiguous(memory_format=torch.channels_last) or (height % 4 or width % 4)
    # The transforms' fp32 rounding: about 2e-5 at unit scale, where oneDNN's direct conv is 1e-6 to 2e-6 off.
    assert (ours - exact).abs().max() < 5e-5
    assert (direct - exact).abs().max() < 1e-5


def test_pointwise_conv_as_gemm_matches_the_conv():
    x = torch.randn(2, 96, 5, 7).contiguous(memory_format=torch.channels_last)
    weight, bias = torch.randn(40, 96, 1, 1) / 10, torch.randn(40)
    ours = pointwise_conv_as_gemm(x, weight, bias)
    assert ours.is_contiguous(memory_format=torch.channels_last)
    assert (ours - F.conv2d(x, weight, bias)).abs().max() < 1e-5
    assert (pointwise_conv_as_gemm(x, weight, None) - F.conv2d(x, weight)).abs().max() < 1e-5


def test_conv_norm_act_uses_winograd_and_caches_its_filters(monkeypatch):
    transforms = []

    def counting_filter(weight):
        transforms.append(weight.shape)
        return winograd_filter(weight)

    monkeypatch.setattr(modeling_efficientvit, "winograd_filter", counting_filter)
    block = randomize_(ConvNormAct(64, 64, 3, act="gelu_tanh"), seed=2).eval()
    block.fold_norm = True  # what the models set from `config.optimize_inference`
    x = torch.randn(1, 64, 16, 16).contiguous(memory_format=torch.channels_last)

    def plain(x):
        return block.act(block.norm(block.conv(x)))

    with torch.no_grad():
        first, second = block(x), block(x)
        assert len(transforms) == 1  # computed once, reused by the second call
        assert torch.equal(first, second) and (first - plain(x)).abs().max() < 1e-4
        block.conv.weight.mul_(-0.5)  # an in-place update (optimiser step, load_state_dict) invalidates the cache
        updated = block(x)
        assert len(transforms) == 2 and (updated - plain(x)).abs().max() < 1e-4
        block.norm.running_mean.add_(1.0)
        assert (block(x) - plain(x)).abs().max() < 1e-4 and len(transforms) == 3
    block.train().eval()  # entering training mode forgets the cache, also edits made through `.data`
    block.conv.weight.data.mul_(2.0)
    with torch.no_grad():
        assert (block(x) - plain(x)).abs().max() < 1e-4 and len(transforms) == 4
    # With autograd recording, the weights are folded afresh so that gradients reach the parameters.
    block(x).sum().backward()
    assert block.conv.weight.grad is not None and block.norm.weight.grad is not None
    assert len(transforms) == 4


def test_wide_pointwise_conv_takes_the_gemm(monkeypatch):
    calls = []
    monkeypatch.setattr(modeling_efficientvit, "pointwise_conv_as_gemm",
                        lambda *args: calls.append(1) or pointwise_conv_as_gemm(*args))
    block = randomize_(ConvNormAct(4096, 16, 1, act="relu"), seed=2).eval()
    block.fold_norm = True
    x = torch.randn(1, 4096, 4, 4).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ours = block(x)
        expected = block.act(block.norm(block.conv(x)))
    assert calls and (ours - expected).abs().max() < 1e-4


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_classifier_graphs_agree_for_every_activation(act):
    optimised, plain = _pair(EfficientViTForImageClassification(EfficientViTConfig(
        widths=[8, 16, 16, 32, 32], depths=[1, 1, 1, 1, 1], attention_head_dim=8, head_widths=[32, 48],
        num_labels=5, hidden_act=act)))
    x = torch.randn(2, 3, 64, 96)
    with torch.inference_mode():
        fast, reference = optimised(x).logits, plain(x).logits
    assert reference.abs().max() > 0.1
    assert (fast - reference).abs().max() < 1e-4


def test_segmentation_graphs_agree_and_outputs_have_the_plain_layout():
    optimised, plain = _pair(EfficientViTForSemanticSegmentation(tiny_seg_config()))
    x = torch.randn(1, 3, 96, 160)
    with torch.inference_mode():
        fast = optimised(x, output_hidden_states=True)
        reference = plain(x, output_hidden_states=True)
    assert (fast.logits - reference.logits).abs().max() < 1e-4
    assert fast.logits.is_contiguous()
    for ours, ref in zip(fast.hidden_states, reference.hidden_states):
        assert ours.is_contiguous() and (ours - ref).abs().max() < 1e-4


def test_sam_encoder_graphs_agree():
    optimised, plain = _pair(EfficientViTSamModel(tiny_sam_config()))
    x = torch.randn(1, 3, 128, 128)
    with torch.inference_mode():
        fast, reference = optimised.get_image_embeddings(x), plain.get_image_embeddings(x)
    assert fast.is_contiguous() and (fast - reference).abs().max() < 1e-4
    assert optimised.config.vision_config.optimize_inference and not plain.config.vision_config.optimize_inference


def test_training_mode_and_gradients_are_unchanged():
    optimised, plain = _pair(EfficientViTForSemanticSegmentation(tiny_seg_config()))
    x = torch.randn(2, 3, 64, 64, requires_grad=True)
    # eval mode with autograd on (e.g. input saliency): the folded graph is differentiable and equal
    out = optimised(x).logits.square().sum()
    (grad_fast,) = torch.autograd.grad(out, x)
    out = plain(x).logits.square().sum()
    (grad_plain,) = torch.autograd.grad(out, x)
    assert torch.allclose(grad_fast, grad_plain, rtol=1e-4, atol=1e-5)
    # training mode runs the plain graph (BatchNorm batch statistics), whatever the switch says
    optimised.train(), plain.train()
    torch.manual_seed(0)
    train_fast = optimised(x.detach()).logits
    torch.manual_seed(0)
    train_plain = plain(x.detach()).logits
    assert torch.equal(train_fast, train_plain)


def test_bf16_autocast_is_finite_and_close():
    optimised, plain = _pair(EfficientViTForSemanticSegmentation(tiny_seg_config()))
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        fast, reference = optimised(x).logits.float(), plain(x).logits.float()
    assert torch.isfinite(fast).all()
    assert (fast - reference).abs().max() < 0.1 * reference.abs().max()


def test_tracing_sees_plain_aten_ops():
    """Export (tracing) must not record the eager-only oneDNN kernels; the traced graph gives the same output."""
    optimised, _ = _pair(EfficientViTForSemanticSegmentation(tiny_seg_config()))
    x = torch.randn(1, 3, 64, 64)
    optimised.config.return_dict = False  # tracing wants tensors out
    with torch.no_grad():
        traced = torch.jit.trace(optimised, x, check_trace=False)
        expected = optimised(x)
        assert (traced(x)[0] - expected[0]).abs().max() < 1e-4
    assert "mkldnn" not in str(traced.inlined_graph)


def test_switch_is_saved_and_restored(tmp_path):
    model = EfficientViTForSemanticSegmentation(tiny_seg_config())
    assert model.config.optimize_inference
    model.set_inference_optimizations(False)
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["optimize_inference"] is False
    loaded = EfficientViTForSemanticSegmentation.from_pretrained(tmp_path)
    conv = next(m for m in loaded.modules() if isinstance(m, ConvNormAct))
    assert not loaded.config.optimize_inference and not conv.fold_norm
    reloaded = EfficientViTForSemanticSegmentation.from_pretrained(tmp_path, optimize_inference=True)
    assert reloaded.config.optimize_inference


# ----------------------------------------------------------------------------------------------------
# evit-hf bench cpu


def test_parse_case():
    assert inference.parse_case("seg-b1-cityscapes@512x1024") == ("seg-b1-cityscapes", (512, 1024))
    assert inference.parse_case("sam-l0") == ("sam-l0", (512, 512))
    with pytest.raises(ValueError, match="HEIGHTxWIDTH"):
        inference.parse_case("seg-b1-cityscapes@big")
    with pytest.raises(ValueError, match="No default size"):
        inference.parse_case("seg-b9")


def test_bench_rows_with_the_original_sam_encoder():
    """efficientsam (the original SAM code, a test dependency) is the reference row of SAM cases."""
    pytest.importorskip("efficientsam")
    rows = inference.bench_case("sam-l0", (64, 64), budget_s=0.0, max_rounds=3, peak_gmacs=100.0)
    by_impl = {row["impl"]: row for row in rows}
    assert set(by_impl) == {"original", "evit-hf plain", "evit-hf"}
    assert by_impl["original"]["speedup"] == 1.0 and by_impl["original"]["original_source"]
    for row in rows:
        assert row["runs"] == 3 and row["median_ms"] > 0 and row["gmacs"] > 0
        assert row["max_abs_diff"] < 1e-4
        assert math.isclose(row["peak_share"], row["gmac_per_s"] / 100.0)


def test_bench_without_the_original_uses_the_plain_graph_as_reference(monkeypatch):
    def unavailable(variant, seed=0):
        raise OriginalUnavailable("the original EfficientViT code is not importable")

    monkeypatch.setattr(inference, "original_pair", unavailable)
    rows = inference.run([("cls-b1", (64, 64))], budget_s=0.0, max_rounds=3)
    assert [row["impl"] for row in rows] == ["evit-hf plain", "evit-hf"]
    assert all(row["reference"] == "evit-hf plain" and row["max_abs_diff"] < 1e-4 for row in rows)
    assert rows[0]["gemm_peak_gmacs"] > 0
    table = inference.format_table(rows)
    assert "note: the original EfficientViT code is not importable" in table and "GEMM peak" in table


def test_compile_for_inference_refuses_training_mode():
    from evit_hf import compile_for_inference

    with pytest.raises(ValueError, match="model.eval"):
        compile_for_inference(EfficientViTForSemanticSegmentation(tiny_seg_config()).train())


def test_bench_command_needs_a_benchmark_or_a_study(capsys):
    from evit_hf.cli import main

    assert main(["bench"]) == 2
    assert "either a benchmark" in capsys.readouterr().err
