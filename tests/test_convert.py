"""Fidelity: converted original/timm/efficientsam weights give the original outputs (max abs diff < 1e-4)."""

from __future__ import annotations

import pytest
import torch

from evit_hf.convert import from_original, from_original_backbone, from_timm, load_checkpoint

CLS_CASES = ["cls-b0", "cls-b1", "cls-b2", "cls-b3", "cls-l1", "cls-l2", "cls-l3"]
TOL = 1e-4


def _randomise_bn_stats(module: torch.nn.Module, seed: int = 0) -> None:
    """Random running statistics, so that BatchNorm conversion is actually exercised."""
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)


@pytest.mark.parametrize("optimized", [True, False], ids=["optimized", "plain"])
@pytest.mark.parametrize("case", CLS_CASES)
def test_original_fixture_parity(case, optimized, original_fixture):
    fixture = original_fixture(case)
    model = from_original(fixture.state_dict, case)
    assert not model.training
    model.set_inference_optimizations(optimized)  # the eval-mode fast path (default) and the plain graph
    with torch.inference_mode():
        out = model(fixture.image, output_hidden_states=True)
    assert out.logits.shape == fixture.outputs["logits"].shape
    assert (out.logits - fixture.outputs["logits"]).abs().max() < TOL
    # hidden_states[i] is "stage{i}"; the fixture keeps every 8th channel of stages 1-4
    for i in range(1, 5):
        ours = out.hidden_states[i][:, ::8]
        ref = fixture.outputs[f"backbone.stage{i}"]
        assert ours.shape == ref.shape
        assert (ours - ref).abs().max() < TOL, f"stage{i}"
    # logits are not trivially small: the comparison means something
    assert fixture.outputs["logits"].abs().max() > 0.5


def test_wrapped_and_saved_checkpoint(tmp_path, original_fixture):
    fixture = original_fixture("cls-b0")
    path = tmp_path / "efficientvit_b0.pt"
    torch.save({"state_dict": fixture.state_dict}, path)
    model = from_original(load_checkpoint(path), "cls-b0")
    with torch.inference_mode():
        assert (model(fixture.image).logits - fixture.outputs["logits"]).abs().max() < TOL
    assert model.config.id2label[0].startswith("tench")


def test_mismatched_checkpoint_lists_keys(original_fixture):
    state_dict = dict(original_fixture("cls-b0").state_dict)
    with pytest.raises(ValueError, match="variant 'cls-b1'.*missing"):
        from_original(state_dict, "cls-b1")
    del state_dict["head.op_list.3.linear.bias"]
    with pytest.raises(ValueError, match=r"1 missing: head\.classifier\.bias"):
        from_original(state_dict, "cls-b0")
    state_dict["head.op_list.3.linear.bias"] = torch.zeros(10)
    with pytest.raises(ValueError, match="wrong shape"):
        from_original(state_dict, "cls-b0")
    state_dict["something.else"] = torch.zeros(1)
    with pytest.raises(ValueError, match="something.else"):
        from_original(state_dict, "cls-b0")
    with pytest.raises(ValueError, match="Unknown variant"):
        from_original(state_dict, "cls-b7")


def test_corrupt_checkpoint(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="Could not read checkpoint"):
        load_checkpoint(bad)
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    bad_st = tmp_path / "bad.safetensors"
    bad_st.write_bytes(b"\x00" * 16)
    with pytest.raises(ValueError, match="safetensors"):
        load_checkpoint(bad_st)


@pytest.fixture(scope="module")
def efficientsam_backbones():
    from evit_hf.reference.packages import use_reference_packages

    use_reference_packages()
    from efficientsam.models.efficientvit import backbone

    return backbone


@pytest.mark.parametrize("preset", ["b0", "b1", "b2", "b3", "l0", "l1", "l2", "l3"])
def test_efficientsam_backbone_parity(preset, efficientsam_backbones):
    torch.manual_seed(0)
    reference = getattr(efficientsam_backbones, f"efficientvit_backbone_{preset}")()
    _randomise_bn_stats(reference)
    reference.eval()
    # efficientsam builds with BatchNorm's default eps (1e-5); the zoo's per-family eps is set afterwards
    model = from_original_backbone(reference.state_dict(), preset, norm_eps=1e-5)
    x = torch.randn(2, 3, 96, 128)
    with torch.inference_mode():
        ref = reference(x)
        ours = model(x, output_hidden_states=True).hidden_states
    for i, feature in enumerate(ours):
        assert (feature - ref[f"stage{i}"]).abs().max() < TOL, f"stage{i}"
    assert (ours[-1] - ref["stage_final"]).abs().max() < TOL


@pytest.mark.parametrize("name", ["b0", "b1", "b2", "b3", "l1", "l2", "l3"])
def test_timm_parity(name):
    from evit_hf.reference.packages import use_reference_packages

    use_reference_packages()
    import timm

    torch.manual_seed(0)
    reference = timm.create_model(f"efficientvit_{name}")
    _randomise_bn_stats(reference)
    reference.eval()
    model = from_timm(reference.state_dict(), f"cls-{name}")
    x = torch.randn(1, 3, 128, 128)
    with torch.inference_mode():
        diff = (model(x).logits - reference(x)).abs().max()
    assert diff < TOL
