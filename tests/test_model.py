"""Model API: outputs, backbone contract, losses, numerics in low precision and clear errors on bad input."""

from __future__ import annotations

import pytest
import torch

from evit_hf import (
    EfficientViTBackbone,
    EfficientViTConfig,
    EfficientViTForImageClassification,
    EfficientViTModel,
)
from evit_hf.models.efficientvit.modeling_efficientvit_mixers import LiteMultiScaleAttention, relu_linear_attention


def tiny_config(**kwargs) -> EfficientViTConfig:
    defaults = dict(widths=[8, 16, 16, 32, 32], depths=[1, 1, 1, 1, 1], attention_head_dim=8,
                    head_widths=[32, 48], num_labels=5)
    return EfficientViTConfig(**{**defaults, **kwargs})


@pytest.mark.parametrize("preset", ["b0", "b1", "b2", "b3", "l0", "l1", "l2", "l3", "xl0", "xl1"])
def test_presets_build_with_expected_shapes(preset):
    config = EfficientViTConfig.from_preset(preset)
    with torch.device("meta"):
        model = EfficientViTModel(config)
    out = model(torch.empty(1, 3, 256, 256, device="meta"), output_hidden_states=True)
    assert len(out.hidden_states) == config.num_stages
    for i, feature in enumerate(out.hidden_states):
        assert feature.shape == (1, config.widths[i], 256 // 2 ** (i + 1), 256 // 2 ** (i + 1))
    assert out.pooler_output.shape == (1, config.widths[-1])


# Parameter counts of the original classifiers (reference spec, exact)
@pytest.mark.parametrize("preset,params", [("b1", 9.10), ("b2", 24.33), ("b3", 48.65), ("l1", 52.65),
                                           ("l2", 63.71), ("l3", 246.04)])
def test_classifier_parameter_counts(preset, params):
    with torch.device("meta"):
        model = EfficientViTForImageClassification(EfficientViTConfig.from_preset(preset, num_labels=1000))
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == params


def test_classifier_outputs_and_loss():
    torch.manual_seed(0)
    model = EfficientViTForImageClassification(tiny_config())
    x = torch.randn(3, 3, 64, 96)
    out = model(x, labels=torch.tensor([0, 4, 2]), output_hidden_states=True)
    assert out.logits.shape == (3, 5)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    expected = torch.nn.functional.cross_entropy(out.logits, torch.tensor([0, 4, 2]))
    assert torch.allclose(out.loss, expected)
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    tuple_out = model(x, return_dict=False)
    assert torch.equal(tuple_out[0], out.logits)
    with pytest.raises(ValueError, match="Labels must lie"):
        model(x, labels=torch.tensor([0, 5, 1]))


def test_training_step_reduces_loss():
    torch.manual_seed(0)
    model = EfficientViTForImageClassification(tiny_config(num_labels=2))
    x = torch.randn(8, 3, 32, 32)
    labels = (x[:, 0].mean(dim=(1, 2)) > 0).long()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = model(x, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_backbone_out_features():
    config = tiny_config(out_features=["stage2", "stage3", "stage4"])
    backbone = EfficientViTBackbone(config).eval()
    assert backbone.channels == [16, 32, 32]
    maps = backbone(torch.randn(1, 3, 64, 64)).feature_maps
    assert [m.shape[-1] for m in maps] == [8, 4, 2]
    by_index = EfficientViTBackbone(tiny_config(out_indices=[1, 4]))
    assert by_index.out_features == ["stage1", "stage4"]


def test_backbone_inside_upernet(tmp_path):
    from transformers import AutoModelForSemanticSegmentation, UperNetConfig, UperNetForSemanticSegmentation

    backbone_config = tiny_config(out_features=["stage1", "stage2", "stage3", "stage4"])
    config = UperNetConfig(backbone_config=backbone_config, hidden_size=16, auxiliary_in_channels=32,
                           num_labels=4)
    model = UperNetForSemanticSegmentation(config).eval()
    x = torch.randn(1, 3, 64, 64)
    logits = model(x).logits
    assert logits.shape == (1, 4, 64, 64)
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForSemanticSegmentation.from_pretrained(tmp_path).eval()
    assert isinstance(reloaded.backbone, EfficientViTBackbone)
    assert torch.allclose(reloaded(x).logits, logits, atol=1e-6)


def test_linear_attention_matches_reference_formula():
    torch.manual_seed(0)
    head_dim, heads, n = 4, 3, 35
    qkv = torch.randn(2, heads * 3 * head_dim, 5, 7)
    out = relu_linear_attention(qkv, head_dim, 1e-15)
    t = qkv.reshape(2, heads, 3 * head_dim, n)
    q, k, v = t[:, :, :head_dim].relu(), t[:, :, head_dim:2 * head_dim].relu(), t[:, :, 2 * head_dim:]
    scores = torch.einsum("bhdm,bhdn->bhmn", k, q)  # (keys m, queries n)
    expected = torch.einsum("bhdm,bhmn->bhdn", v, scores) / (scores.sum(dim=2, keepdim=True) + 1e-15)
    assert torch.allclose(out, expected.reshape(2, -1, 5, 7), atol=1e-5)


def test_attention_runs_in_fp32_under_autocast_and_half_weights():
    torch.manual_seed(0)
    attention = LiteMultiScaleAttention(32, 32, head_dim=8).eval()
    x = torch.randn(1, 32, 16, 16) * 50  # large activations: fp16 sums would overflow / eps would vanish
    with torch.inference_mode():
        reference = attention(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = attention(x)
        half = attention.half()(x.half())
    assert torch.isfinite(bf16).all() and torch.isfinite(half).all()
    assert (bf16.float() - reference).abs().max() / reference.abs().max() < 0.05
    assert (half.float() - reference).abs().max() / reference.abs().max() < 0.05


def test_low_precision_model_outputs_are_finite_and_close():
    torch.manual_seed(0)
    model = EfficientViTForImageClassification(tiny_config()).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        reference = model(x).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = model(x).logits
        half = model.half()(x.half()).logits
    for out in (bf16, half):
        assert torch.isfinite(out).all()
        assert (out.float() - reference).abs().max() < 0.1 * reference.abs().max() + 1e-2


def test_bad_input_errors():
    model = EfficientViTModel(tiny_config()).eval()
    with pytest.raises(ValueError, match="Expected 3 input channels, got 1"):
        model(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match="smaller than the network's total stride 32"):
        model(torch.randn(1, 3, 16, 64))
    with pytest.raises(ValueError, match="floating point"):
        model(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\(batch, channels, height, width\)"):
        model(torch.randn(3, 64, 64))


def test_config_errors():
    with pytest.raises(ValueError, match="Unknown EfficientViT preset 'b9'"):
        EfficientViTConfig.from_preset("b9")
    with pytest.raises(ValueError, match="`depths` has 2 entries"):
        tiny_config(depths=[1, 1])
    with pytest.raises(ValueError, match="Unknown block type"):
        tiny_config(block_types=["ds", "mb", "conv", "att", "att"])
    with pytest.raises(ValueError, match="Unknown activation"):
        tiny_config(hidden_act="swishy")


def test_config_round_trip(tmp_path):
    config = EfficientViTConfig.from_preset("l2", out_features=["stage2", "stage4"])
    config.save_pretrained(tmp_path)
    loaded = EfficientViTConfig.from_pretrained(tmp_path)
    assert loaded.widths == config.widths and loaded.depths == config.depths
    assert loaded.out_features == ["stage2", "stage4"] and loaded.hidden_act == "gelu_tanh"
    assert loaded.norm_eps == 1e-7
