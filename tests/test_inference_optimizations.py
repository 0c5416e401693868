"""The inference fast path (`config.optimize_inference`, `modeling_efficientvit_fastpath.py`) and `evit-hf bench cpu`.

The fixture parity tests (test_convert / test_segmentation / test_sam) run both graphs against the original;
here: every numerical trick against the plain computation (BatchNorm folding, the sigmoid form of tanh-GELU,
Winograd, the 1x1 GEMM), the weight-transform cache (invalidation, parameters made under inference mode),
agreement of the two graphs on every model family and activation with the fast kernels shown to run, that
removing the fast path restores the plain modules, what must not change (training mode, gradients, autocast,
tracing for export, output layout, the saved switch), and the benchmark rows.
"""

from __future__ import annotations

import copy
import json
import math
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

import evit_hf  # noqa: F401  (registers the Auto classes)
from conftest import randomize_weights
from evit_hf import (
    EfficientViTConfig,
    EfficientViTForImageClassification,
    EfficientViTForSemanticSegmentation,
    EfficientViTSamModel,
    set_inference_optimizations,
)
from evit_hf.bench import inference
from evit_hf.models.efficientvit import modeling_efficientvit_fastpath as fastpath
from evit_hf.models.efficientvit.configuration_efficientvit_sam import EfficientViTSamConfig
from evit_hf.models.efficientvit.modeling_efficientvit_blocks import ConvNormAct, ResidualBlock
from evit_hf.models.efficientvit.modeling_efficientvit_fastpath import (
    GEMM_MIN_IN_CHANNELS,
    MIN_CHANNELS,
    MIN_SIDE,
    ParameterStateCache,
    fold_batchnorm,
    forget_cached_weights,
    gelu_tanh_,
    installed_methods,
    pointwise_conv_as_gemm,
    winograd_conv3x3,
    winograd_filter,
)
from evit_hf.models.efficientvit.modeling_efficientvit_mixers import HyenaMixer
from evit_hf.reference.original import OriginalUnavailable
from evit_hf.reference.packages import use_reference_packages
from test_sam import tiny_sam_config
from test_segmentation import tiny_config as tiny_seg_config

ACTIVATIONS = ["hardswish", "relu", "relu6", "silu", "gelu", "gelu_tanh"]


@pytest.fixture
def kernel_calls(monkeypatch) -> Counter:
    """Counts the fast kernels that run: `winograd`, `gemm` (1x1 conv as one GEMM) and `onednn` (fused conv + act)."""
    calls = Counter()
    for name, key in (("winograd_conv3x3", "winograd"), ("pointwise_conv_as_gemm", "gemm"),
                      ("onednn_conv_act", "onednn")):
        original = getattr(fastpath, name)
        monkeypatch.setattr(fastpath, name, lambda *args, _f=original, _k=key: calls.update([_k]) or _f(*args))
    return calls


def _pair(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(optimised, plain) copies of a randomised model in eval mode."""
    optimised = randomize_weights(model, seed=3).eval()
    plain = copy.deepcopy(optimised)
    plain.set_inference_optimizations(False)
    return optimised, plain


def _assert_fast_path_installed(optimised: torch.nn.Module, plain: torch.nn.Module) -> None:
    """Every ConvNormAct and residual block of `optimised` has its replacement; `plain` has none."""
    installed = installed_methods(optimised)
    assert installed["ConvNormActKernel"] == sum(isinstance(m, ConvNormAct) for m in optimised.modules()) > 0
    assert installed["InPlaceResidualAdd"] == sum(isinstance(m, ResidualBlock) for m in optimised.modules()) > 0
    assert not installed_methods(plain)


# Wide enough for the fast kernels: a 64-channel FusedMBConv stage at stride 8 (its 3x3 64 -> 256 conv runs as
# Winograd on maps of 16x16 pixels) and a 1024-wide attention stage whose MBConv projects 4096 -> 1024 channels
# (the 1x1 GEMM path).
WIDE = dict(widths=[16, 32, 64, 128, 1024], depths=[1, 1, 1, 1, 1], block_types=["res", "fmb", "fmb", "mb", "att"],
            expand_ratios=[1, 4, 4, 4, 4], downsample_expand_ratios=[1, 4, 4, 4, 2],
            fewer_norm=[False, False, False, True, True], attention_head_dim=32)
assert 64 >= MIN_CHANNELS and 128 // 8 >= MIN_SIDE and 1024 * 4 >= GEMM_MIN_IN_CHANNELS


def wide_sam_config() -> EfficientViTSamConfig:
    """A small SAM whose backbone and neck reach Winograd (64-wide neck at 16x16) and the 1x1 GEMM."""
    return tiny_sam_config(vision=dict(
        widths=[16, 32, 64, 1024], expand_ratios=[1, 2, 4, 4], downsample_expand_ratios=[1, 2, 2, 1],
        fewer_norm=[False, False, False, True], block_types=["res", "fmb", "fmb", "att"], attention_head_dim=32,
        neck_hidden_size=64, neck_output_size=16,
    ))


# ------------------------------------------------------------------------------------------------ the tricks, exact


def test_fold_batchnorm_equals_conv_then_norm():
    block = randomize_weights(ConvNormAct(6, 10, 3, stride=2, bias=True, act=None), seed=1).eval()
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


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_conv_norm_act_kernel_equals_the_plain_module(act, kernel_calls):
    """Each kernel the fast path picks (oneDNN fused, Winograd, GEMM) against the plain conv -> BN -> act."""
    shapes = {"onednn": (32, 48, 3, 16), "winograd": (64, 96, 3, 16), "gemm": (4096, 32, 1, 4)}
    for kernel, (cin, cout, k, side) in shapes.items():
        block = randomize_weights(ConvNormAct(cin, cout, k, act=act), seed=2).eval()
        x = torch.randn(2, cin, side, side)
        with torch.inference_mode():
            expected = block(x)
            set_inference_optimizations(block, True)
            ours = block(x)
        assert ours.is_contiguous(memory_format=torch.channels_last)
        assert expected.abs().max() > 0.1 and (ours - expected).abs().max() < 1e-4, kernel
    # oneDNN fuses every activation but tanh-GELU (computed after the conv as `gelu_tanh_`)
    assert kernel_calls == Counter(winograd=1, gemm=1, onednn=0 if act == "gelu_tanh" else 1)


# ------------------------------------------------------------------------------------------------ weight cache


def test_winograd_filters_are_cached_per_parameter_state(monkeypatch):
    transforms = []
    monkeypatch.setattr(fastpath, "winograd_filter", lambda w: transforms.append(1) or winograd_filter(w))
    block = set_inference_optimizations(randomize_weights(ConvNormAct(64, 64, 3, act="gelu_tanh"), seed=2), True)
    block.eval()
    x = torch.randn(1, 64, 16, 16)

    def plain(x):
        return block.act(block.norm(block.conv(x)))

    with torch.no_grad():
        first, second = block(x), block(x)
        assert len(transforms) == 1  # computed once, reused by the second call
        assert torch.equal(first, second) and (first - plain(x)).abs().max() < 1e-4
        block.conv.weight.mul_(-0.5)  # an in-place update (optimiser step, load_state_dict) invalidates the cache
        assert (block(x) - plain(x)).abs().max() < 1e-4 and len(transforms) == 2
        block.norm.running_mean.add_(1.0)
        assert (block(x) - plain(x)).abs().max() < 1e-4 and len(transforms) == 3
        block.conv.weight = torch.nn.Parameter(block.conv.weight * 2)  # a replaced parameter
        assert (block(x) - plain(x)).abs().max() < 1e-4 and len(transforms) == 4
        block.half().float()  # new storage (and fp16-rounded values) at possibly the same address
        assert (block(x) - plain(x)).abs().max() < 1e-4 and len(transforms) == 5
        block.conv.weight.data.mul_(2.0)  # `.data` bypasses version counters: forgetting is explicit
        forget_cached_weights(block)
        assert (block(x) - plain(x)).abs().max() < 1e-4 and len(transforms) == 6
    # With autograd recording, the weights are folded afresh so that gradients reach the parameters.
    block(x).sum().backward()
    assert block.conv.weight.grad is not None and block.norm.weight.grad is not None
    assert len(transforms) == 6


def test_model_train_forgets_the_cached_transforms(kernel_calls):
    """Edits through `.data` bypass version counters; `model.train()` (before such edits) forgets the caches."""
    optimised, plain = _pair(EfficientViTForSemanticSegmentation(tiny_seg_config(
        widths=[16, 32, 64, 64, 64], block_types=["res", "fmb", "fmb", "mb", "att"], expand_ratios=[1, 2, 2, 2, 2],
        downsample_expand_ratios=[1, 2, 2, 2, 2], attention_head_dim=16, segmentation_head_width=32)))
    x = torch.randn(1, 3, 128, 128)
    with torch.inference_mode():
        optimised(x)  # fills the Winograd cache
    assert kernel_calls["winograd"]
    for model in (optimised, plain):
        model.train()
        model.efficientvit.encoder.stages[2].blocks[0].spatial_conv.conv.weight.data.mul_(-2.0)
        model.eval()
    with torch.inference_mode():
        assert (optimised(x).logits - plain(x).logits).abs().max() < 1e-4


def test_parameter_state_cache_bypasses_inference_tensors():
    cache, computed = ParameterStateCache(), []
    with torch.inference_mode():
        weight = torch.ones(3)
    for _ in range(2):  # no version counter to watch: computed every time, never wrong
        cache.get([weight], lambda: computed.append(1) or weight * 2)
    assert len(computed) == 2
    normal = torch.ones(3)
    for _ in range(2):
        cache.get([normal], lambda: computed.append(1) or normal * 2, extra=(4, 4))
    assert len(computed) == 3
    cache.get([normal], lambda: computed.append(1) or normal * 2, extra=(8, 8))  # another map size
    assert len(computed) == 4


def test_models_built_under_inference_mode_run_the_fast_path(kernel_calls):
    """Parameters made under `torch.inference_mode()` have no version counter: the first eval forward works (a
    Hyena mixer used to raise "Inference tensors do not track version counter") and equals the plain graph."""
    config = tiny_seg_config(token_mixer="hyena")
    with torch.inference_mode():
        model = randomize_weights(EfficientViTForSemanticSegmentation(config), seed=1).eval()
        mixer = randomize_weights(HyenaMixer(16, 16, config), seed=1).eval()
        wide = randomize_weights(ConvNormAct(64, 64, 3), seed=1).eval()
    assert installed_methods(model)["HyenaSpectraKernel"] == 2
    pixels, x, maps = torch.randn(1, 3, 64, 96), torch.randn(1, 16, 6, 5), torch.randn(1, 64, 16, 16)
    with torch.inference_mode():
        fast = {"model": model(pixels).logits}  # the first eval forward, on the fast path
        model.set_inference_optimizations(False)
        plain = {"model": model(pixels).logits, "mixer": mixer(x), "wide": wide(maps)}
        set_inference_optimizations(mixer, True), set_inference_optimizations(wide, True)
        fast.update(mixer=mixer(x), wide=wide(maps))
    with torch.no_grad():  # and outside inference mode
        assert torch.equal(mixer(x), fast["mixer"]) and torch.equal(wide(maps), fast["wide"])
    for name in plain:
        assert plain[name].abs().max() > 0.1 and (fast[name] - plain[name]).abs().max() < 1e-4, name
    assert kernel_calls["winograd"] == 2


def test_hyena_spectra_are_cached_per_size_and_weights(monkeypatch):
    spectra = []
    monkeypatch.setattr(fastpath, "kernel_spectrum", lambda k: spectra.append(k.shape) or torch.fft.rfft2(k))
    mixer = randomize_weights(HyenaMixer(16, 16, tiny_seg_config(attention_head_dim=8)), seed=0).eval()
    plain = copy.deepcopy(mixer)
    set_inference_optimizations(mixer, True)
    x = torch.randn(1, 16, 6, 5)
    with torch.no_grad():
        first, again = mixer(x), mixer(x)
        assert len(spectra) == 1 and torch.equal(first, again)
        torch.testing.assert_close(first, plain(x), atol=1e-5, rtol=1e-5)
        mixer.filter.mlp[-1].weight.mul_(2.0)  # an in-place update (load_state_dict, an optimizer step)
        plain.filter.mlp[-1].weight.mul_(2.0)
        changed = mixer(x)
        assert len(spectra) == 2
        torch.testing.assert_close(changed, plain(x), atol=1e-5, rtol=1e-5)
        other = torch.randn(1, 16, 7, 5)  # another size
        torch.testing.assert_close(mixer(other), plain(other), atol=1e-5, rtol=1e-5)
        assert len(spectra) == 3
        with torch.enable_grad():  # gradients on: the plain computation, nothing cached
            torch.testing.assert_close(mixer(x), changed, atol=1e-5, rtol=1e-5)
    assert len(spectra) == 3 and not torch.allclose(first, changed)


# ------------------------------------------------------------------------------------------------ the two graphs


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_classifier_graphs_agree_for_every_activation(act, kernel_calls):
    optimised, plain = _pair(EfficientViTForImageClassification(EfficientViTConfig(
        **WIDE, head_widths=[64, 48], num_labels=5, hidden_act=act)))
    _assert_fast_path_installed(optimised, plain)
    x = torch.randn(2, 3, 128, 128)
    with torch.inference_mode():
        reference = plain(x).logits
        assert not kernel_calls
        fast = optimised(x).logits
    assert kernel_calls["winograd"] and kernel_calls["gemm"] and kernel_calls["onednn"]
    assert reference.abs().max() > 0.1
    assert (fast - reference).abs().max() < 1e-4


def test_segmentation_graphs_agree_and_outputs_have_the_plain_layout(kernel_calls):
    optimised, plain = _pair(EfficientViTForSemanticSegmentation(tiny_seg_config(**WIDE, segmentation_head_width=64)))
    _assert_fast_path_installed(optimised, plain)
    x = torch.randn(1, 3, 128, 160)
    with torch.inference_mode():
        fast = optimised(x, output_hidden_states=True)
        reference = plain(x, output_hidden_states=True)
    assert kernel_calls["winograd"] and kernel_calls["gemm"] and kernel_calls["onednn"]
    assert reference.logits.abs().max() > 0.1 and (fast.logits - reference.logits).abs().max() < 1e-4
    assert fast.logits.is_contiguous()
    for ours, ref in zip(fast.hidden_states, reference.hidden_states):
        assert ours.is_contiguous() and (ours - ref).abs().max() < 1e-4


def test_sam_encoder_graphs_agree(kernel_calls):
    optimised, plain = _pair(EfficientViTSamModel(wide_sam_config()))
    _assert_fast_path_installed(optimised, plain)
    x = torch.randn(1, 3, 128, 128)
    with torch.inference_mode():
        fast, reference = optimised.get_image_embeddings(x), plain.get_image_embeddings(x)
    assert kernel_calls["winograd"] and kernel_calls["gemm"] and kernel_calls["onednn"]
    assert fast.is_contiguous() and (fast - reference).abs().max() < 1e-4
    assert optimised.config.vision_config.optimize_inference and not plain.config.vision_config.optimize_inference


def test_removing_the_fast_path_restores_the_plain_modules():
    torch.manual_seed(0)
    model = randomize_weights(EfficientViTForSemanticSegmentation(tiny_seg_config(token_mixer="hyena")), 1).eval()
    fresh = EfficientViTForSemanticSegmentation(tiny_seg_config(token_mixer="hyena", optimize_inference=False))
    fresh.load_state_dict(model.state_dict())
    fresh.eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert installed_methods(model) and not installed_methods(fresh)
    x = torch.randn(1, 3, 64, 96)
    with torch.inference_mode():
        model(x)  # fills the caches
        set_inference_optimizations(model, False)
        assert not installed_methods(model)
        for ours, theirs in zip(model.modules(), fresh.modules()):
            assert type(ours) is type(theirs) and set(vars(ours)) == set(vars(theirs))
        assert torch.equal(model(x).logits, fresh(x).logits)
    assert list(model.state_dict()) == list(state)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


def test_models_with_the_fast_path_copy_and_pickle(kernel_calls):
    """`copy.deepcopy` and pickling (`torch.save(model)`) keep the fast path installed on the copy, with empty
    caches (weak references into the original's tensors do not travel)."""
    import pickle

    model = randomize_weights(EfficientViTForSemanticSegmentation(tiny_seg_config(**WIDE)), seed=2).eval()
    x = torch.randn(1, 3, 128, 128)
    with torch.inference_mode():
        expected = model(x).logits  # fills the caches
        for copied in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
            assert installed_methods(copied) == installed_methods(model)
            kernels = [vars(m)["forward"] for m in copied.modules() if isinstance(m, ConvNormAct)]
            assert all(kernel.module is module for kernel, module in zip(kernels, (
                m for m in copied.modules() if isinstance(m, ConvNormAct))))
            before = kernel_calls["winograd"]
            assert torch.equal(copied(x).logits, expected) and kernel_calls["winograd"] > before


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


def test_tracing_sees_plain_aten_ops(kernel_calls):
    """Export (tracing) must not record the eager-only kernels; the traced graph gives the same output."""
    optimised, _ = _pair(EfficientViTForSemanticSegmentation(tiny_seg_config(**WIDE)))
    x = torch.randn(1, 3, 128, 128)
    optimised.config.return_dict = False  # tracing wants tensors out
    with torch.no_grad():
        traced = torch.jit.trace(optimised, x, check_trace=False)
        assert not kernel_calls
        expected = optimised(x)
        assert kernel_calls["winograd"] and kernel_calls["gemm"]
        assert (traced(x)[0] - expected[0]).abs().max() < 1e-4
    graph = str(traced.inlined_graph)
    assert "mkldnn" not in graph and "aten::bmm" not in graph and "aten::addmm" not in graph
    assert "aten::relu_" not in graph and "aten::add_" not in graph and "aten::hardswish_" not in graph


def test_switch_is_saved_and_restored(tmp_path):
    model = EfficientViTForSemanticSegmentation(tiny_seg_config())
    assert model.config.optimize_inference and installed_methods(model)
    model.set_inference_optimizations(False)
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["optimize_inference"] is False
    loaded = EfficientViTForSemanticSegmentation.from_pretrained(tmp_path)
    assert not loaded.config.optimize_inference and not installed_methods(loaded)
    reloaded = EfficientViTForSemanticSegmentation.from_pretrained(tmp_path, optimize_inference=True)
    assert reloaded.config.optimize_inference and installed_methods(reloaded)


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
    use_reference_packages()
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
