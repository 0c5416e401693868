"""Pluggable token mixers (`config.token_mixer`): every head, numerics against naive references, serialisation,
trust_remote_code, ONNX export, the unchanged LiteMLA default, the scaling benchmark and the training switch."""

from __future__ import annotations

import io
import math
import warnings

import pytest
import torch

from conftest import randomize_weights
from evit_hf import (
    EfficientViTBackbone,
    EfficientViTConfig,
    EfficientViTForImageClassification,
    EfficientViTForSemanticSegmentation,
    EfficientViTSamModel,
)
from evit_hf.models.efficientvit import EfficientViTForImageSuperResolution, EfficientViTSRConfig
from evit_hf.models.efficientvit.configuration_efficientvit import TOKEN_MIXER_DEFAULTS, TOKEN_MIXERS
from evit_hf.models.efficientvit.modeling_efficientvit_mixers import (
    TOKEN_MIXER_CLASSES,
    HyenaMixer,
    LiteMultiScaleAttention,
    RetentionMixer,
    SoftmaxAttention,
    build_token_mixer,
    circular_offsets,
    dft_long_conv2d,
    direct_long_conv2d,
    fft_long_conv2d,
    retention_2d,
    softmax_attention,
)
from test_sam import tiny_sam_config
from test_segmentation import tiny_config as tiny_seg_config

MIXERS = ["lite_mla", "softmax", "hyena", "retention"]
NEW_MIXERS = ["softmax", "hyena", "retention"]
MIXER_CLASSES = {"lite_mla": LiteMultiScaleAttention, "softmax": SoftmaxAttention, "hyena": HyenaMixer,
                 "retention": RetentionMixer}


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_config(**overrides) -> EfficientViTConfig:
    """test_segmentation's narrow B-style network (attention in stages 3 and 4), with a small classifier head."""
    return tiny_seg_config(**{"head_widths": [32, 48], "segmentation_final_expand": None, **overrides})


def attention_modules(model: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for name, m in model.named_modules() if name.endswith(".attention")]


# ------------------------------------------------------------------------------------------------ configuration


def test_config_validates_mixer_fields():
    assert EfficientViTConfig().token_mixer == "lite_mla"
    with pytest.raises(ValueError, match="Unknown token_mixer 'mamba'.*lite_mla, softmax, hyena, retention"):
        tiny_config(token_mixer="mamba")
    with pytest.raises(ValueError, match="hyena_order"):
        tiny_config(token_mixer="hyena", hyena_order=0)
    with pytest.raises(ValueError, match="hyena_filter_reach"):
        tiny_config(hyena_filter_reach=[8.0, 2.0])
    with pytest.raises(ValueError, match="retention_decay_exponents"):
        tiny_config(retention_decay_exponents=[3.0])
    config = tiny_config(token_mixer="retention", retention_decay_exponents=[1.0, 4.0])
    again = EfficientViTConfig.from_dict(config.to_dict())
    assert again.token_mixer == "retention" and again.retention_decay_exponents == [1.0, 4.0]
    # one registry builds every name the config accepts, LiteMLA included
    assert set(TOKEN_MIXER_CLASSES) == set(TOKEN_MIXERS)
    assert type(build_token_mixer("lite_mla", 16, config)) is LiteMultiScaleAttention
    with pytest.raises(ValueError, match="Unknown token mixer 'mamba'"):
        build_token_mixer("mamba", 16, config)


def test_lite_mla_default_is_unchanged():
    default = EfficientViTForSemanticSegmentation(tiny_config())
    explicit = EfficientViTForSemanticSegmentation(tiny_config(token_mixer="lite_mla"))
    assert list(default.state_dict()) == list(explicit.state_dict())
    assert all(type(m) is LiteMultiScaleAttention for m in attention_modules(default))
    block = "efficientvit.encoder.stages.3.blocks.0.attention."
    keys = sorted(k[len(block):] for k in default.state_dict() if k.startswith(block))
    assert keys == [  # the layout converted original checkpoints load into
        "aggregations.0.depthwise.weight", "aggregations.0.pointwise.weight", "proj.conv.weight",
        "proj.norm.bias", "proj.norm.num_batches_tracked", "proj.norm.running_mean", "proj.norm.running_var",
        "proj.norm.weight", "qkv.conv.weight",
    ]


# ------------------------------------------------------------------------------------------------ every head


@pytest.mark.parametrize("mixer", MIXERS)
def test_every_head_builds_runs_and_trains(mixer):
    torch.manual_seed(0)
    config = tiny_config(token_mixer=mixer)
    seg = EfficientViTForSemanticSegmentation(config)
    assert all(type(m) is MIXER_CLASSES[mixer] for m in attention_modules(seg))
    pixels, labels = torch.randn(2, 3, 64, 96), torch.randint(0, 3, (2, 64, 96))
    out = seg(pixels, labels=labels)
    assert out.logits.shape == (2, 3, 8, 12) and torch.isfinite(out.loss)
    out.loss.backward()
    no_grad = [n for n, p in seg.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not no_grad
    assert all(p.grad.abs().sum() > 0 for m in attention_modules(seg) for p in m.parameters())

    # classification and backbone on a non-square size that no power of 2 divides (attention maps 7x5, 4x3)
    cls = EfficientViTForImageClassification(config).eval()
    backbone = EfficientViTBackbone(tiny_config(token_mixer=mixer, out_features=["stage3", "stage4"])).eval()
    odd = torch.randn(1, 3, 100, 76)
    with torch.no_grad():
        assert cls(odd).logits.shape == (1, 3)
        maps = backbone(odd).feature_maps
    assert [tuple(m.shape) for m in maps] == [(1, 16, 7, 5), (1, 32, 4, 3)]

    sam = EfficientViTSamModel(tiny_sam_config(vision={"token_mixer": mixer})).eval()
    with torch.no_grad():
        masks = sam(torch.randn(1, 3, 128, 128), input_points=torch.tensor([[[[30.0, 40.0]]]])).pred_masks
    assert masks.shape == (1, 1, 3, 32, 32) and torch.isfinite(masks).all()


@pytest.mark.parametrize("mixer", NEW_MIXERS)
def test_bf16_autocast_is_finite_and_close(mixer):
    model = randomize_weights(EfficientViTForSemanticSegmentation(tiny_config(token_mixer=mixer))).eval()
    pixels = torch.randn(1, 3, 64, 96)
    with torch.inference_mode():
        reference = model(pixels).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(pixels).logits
    assert torch.isfinite(logits.float()).all()
    assert (logits.float() - reference).abs().max() < 0.1 * reference.abs().max()


@pytest.mark.parametrize("norm_type", [None, "layernorm"])
def test_mixers_serve_norm_free_blocks_and_super_resolution(norm_type):
    config = tiny_config()
    for mixer in NEW_MIXERS:
        module = build_token_mixer(mixer, 16, config, norm_type=norm_type)
        x = torch.randn(2, 16, 5, 3)
        assert module(x).shape == x.shape
    # The SR config shares the token-mixer fields (validated the same way); configs saved before it had them
    # load with LiteMLA.
    sr_config = EfficientViTSRConfig(hidden_size=16, num_blocks=1, attention_head_dim=8, expand_ratio=2,
                                     upsampler_hidden_size=8, norm_type="layernorm", token_mixer="hyena", hyena_order=3)
    sr = EfficientViTForImageSuperResolution(sr_config).eval()
    assert type(sr.blocks[0].attention) is HyenaMixer and sr.blocks[0].attention.order == 3
    with torch.no_grad():
        assert sr(torch.rand(1, 3, 9, 13)).reconstruction.shape == (1, 3, 18, 26)
    with pytest.raises(ValueError, match="Unknown token_mixer 'mamba'"):
        EfficientViTSRConfig(token_mixer="mamba")
    saved = {k: v for k, v in sr_config.to_dict().items() if k not in TOKEN_MIXER_DEFAULTS or k == "attention_head_dim"}
    old = EfficientViTSRConfig.from_dict(saved)
    assert old.token_mixer == "lite_mla" and old.attention_scales == [5] and old.attention_head_dim == 8
    assert type(EfficientViTForImageSuperResolution(old).blocks[0].attention) is LiteMultiScaleAttention


# ------------------------------------------------------------------------------------------------ numerics


def test_softmax_attention_matches_naive_reference():
    torch.manual_seed(0)
    heads, dim, height, width = 3, 4, 5, 7
    qkv = torch.randn(2, heads * 3 * dim, height, width)
    tokens = qkv.reshape(2, heads, 3 * dim, height * width)
    q, k, v = tokens[:, :, :dim], tokens[:, :, dim:2 * dim], tokens[:, :, 2 * dim:]
    scores = torch.einsum("bhdn,bhdm->bhnm", q, k) / math.sqrt(dim)
    expected = torch.einsum("bhnm,bhdm->bhdn", scores.softmax(dim=-1), v).reshape(2, heads * dim, height, width)
    torch.testing.assert_close(softmax_attention(qkv, dim), expected, atol=1e-5, rtol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = softmax_attention(qkv.bfloat16(), dim)
    assert low.dtype == torch.bfloat16 and torch.isfinite(low.float()).all()


def naive_retention(q, k, v, log_gammas):
    """O(N^2) retention with the explicit Manhattan decay mask (B, heads, N, N)."""
    batch, heads, height, width, dim = q.shape
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    ys, xs = ys.flatten().double(), xs.flatten().double()
    distance = (ys[:, None] - ys[None]).abs() + (xs[:, None] - xs[None]).abs()
    decay = torch.exp(log_gammas.double().view(-1, 1, 1) * distance)
    decay = decay / decay.sum(dim=-1, keepdim=True).sqrt()
    q, k, v = (t.double().reshape(batch, heads, height * width, dim) for t in (q, k, v))
    scores = q @ k.transpose(-1, -2) / math.sqrt(dim) * decay
    out = scores @ v / scores.sum(dim=-1, keepdim=True).abs().clamp(min=1)
    return out.reshape(batch, heads, height, width, dim)


@pytest.mark.parametrize("size", [(5, 7), (1, 6), (4, 4)])
def test_retention_matches_explicit_decay_mask(size):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, *size, 4) for _ in range(3))
    log_gammas = torch.log(1 - 2.0 ** -torch.tensor([1.0, 3.0, 6.0]))
    expected = naive_retention(q, k, v, log_gammas)
    torch.testing.assert_close(retention_2d(q, k, v, log_gammas).double(), expected, atol=1e-5, rtol=1e-4)


def _circular_kernel(channels: int, height: int, width: int) -> torch.Tensor:
    _, valid_y = circular_offsets(height)
    _, valid_x = circular_offsets(width)
    return torch.randn(channels, 2 * height, 2 * width) * (valid_y[:, None] & valid_x[None]).float()


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (7, 4), (6, 9)])
def test_hyena_fft_long_convolution_equals_direct_convolution(size):
    torch.manual_seed(0)
    z, kernel = torch.randn(2, 3, *size), _circular_kernel(3, *size)
    direct = direct_long_conv2d(z, kernel)
    # the definition, term by term, for one output pixel
    height, width = size
    y, x = height // 2, width - 1
    term = sum(kernel[:, (y - yy) % (2 * height), (x - xx) % (2 * width)] * z[:, :, yy, xx]
               for yy in range(height) for xx in range(width))
    torch.testing.assert_close(direct[:, :, y, x], term, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fft_long_conv2d(z, kernel), direct, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(dft_long_conv2d(z, kernel), direct, atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------------------------------------ serialisation


@pytest.mark.parametrize("mixer", MIXERS)
def test_onnx_export_matches_pytorch(mixer):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")

    class Logits(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return self.model(pixel_values=pixel_values).logits

    torch.manual_seed(0)
    model = randomize_weights(EfficientViTForSemanticSegmentation(tiny_config(token_mixer=mixer))).eval()
    pixels = torch.randn(1, 3, 96, 160)
    with torch.inference_mode():
        expected = model(pixels).logits.numpy()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings: shape-derived Python values become constants, as meant
        torch.onnx.export(Logits(model), (pixels,), buffer, dynamo=False, opset_version=17,
                          input_names=["pixel_values"], output_names=["logits"])
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"pixel_values": pixels.numpy()})
    assert abs(expected).max() > 0.1
    assert abs(logits - expected).max() < 1e-4


# ------------------------------------------------------------------------------------------------ tools


def test_bench_mixers_smoke(tmp_path):
    from evit_hf.bench.mixers import best_of, format_table, plot, run, scaling_exponent, softmax_attention_gb

    rows = run(sizes=(64, 128), mixers=["lite_mla", "hyena"], preset="seg-b0-cityscapes", budget_s=0.05,
               max_runs=2, memory=False, threads=1, tune=False)
    assert [(r["target"], r["mixer"], r["size"]) for r in rows][:3] == [
        ("stage", "lite_mla", "64x64"), ("stage", "lite_mla", "128x128"), ("stage", "hyena", "64x64")]
    assert len(rows) == 2 * 2 * 2 and all(r["median_ms"] > 0 and r["exponent"] is not None for r in rows)
    assert all(r["vs_lite_mla"] == 1.0 for r in rows if r["mixer"] == "lite_mla")
    table = format_table(rows)
    assert "exponent (all sizes)" in table and "hyena" in table
    slower = [{**row, "median_ms": 2 * row["median_ms"]} for row in rows]
    slower[0]["median_ms"] = rows[0]["median_ms"] / 2
    merged = best_of(slower, rows)
    assert [r["median_ms"] for r in merged] == [slower[0]["median_ms"]] + [r["median_ms"] for r in rows[1:]]
    assert merged[0]["vs_lite_mla"] == 1.0 and merged[2]["vs_lite_mla"] == pytest.approx(
        rows[2]["median_ms"] / slower[0]["median_ms"])
    assert scaling_exponent([(1, 1.0), (4, 16.0), (16, 256.0)]) == pytest.approx(2.0)
    config = EfficientViTConfig.from_preset("seg-b1-cityscapes")
    assert softmax_attention_gb(config, 2048) == pytest.approx(8 * 16384**2 * 4 / 2**30)  # stage 3: 8 heads
    pytest.importorskip("matplotlib")
    plot(rows, tmp_path / "scaling.png")
    assert (tmp_path / "scaling.png").stat().st_size > 10_000
    with pytest.raises(ValueError, match="multiples of 32"):
        run(sizes=(100,), memory=False)
    with pytest.raises(ValueError, match="Unknown token mixers"):
        run(sizes=(64,), mixers=["mamba"], memory=False)


def test_training_token_mixer_switch():
    from evit_hf.training.segmentation import SegmentationArguments, with_token_mixer

    with pytest.raises(ValueError, match="token_mixer must be one of"):
        SegmentationArguments(token_mixer="mamba")
    torch.manual_seed(0)
    model = EfficientViTForSemanticSegmentation(tiny_config())
    rebuilt, fresh = with_token_mixer(model, "retention")
    assert rebuilt.config.token_mixer == "retention" and model.config.token_mixer == "lite_mla"
    assert fresh == [f"efficientvit.encoder.stages.{i}.blocks.0.attention" for i in (3, 4)]
    old = model.state_dict()
    for key, value in rebuilt.state_dict().items():
        if ".attention." not in key:
            assert torch.equal(value, old[key]), key
