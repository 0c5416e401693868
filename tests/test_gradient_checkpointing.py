"""Gradient checkpointing (`model.gradient_checkpointing_enable()`) of every EfficientViT model: a checkpointed
training step computes the plain step's loss and gradients (fp32 rounding) and leaves the same BatchNorm running
statistics, with every checkpoint unit (conv block, token mixer, SAM decoder block) recomputed in the backward
pass; and it lowers the peak memory of a training step (fresh processes, peak RSS).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers.modeling_layers import GradientCheckpointingLayer

from evit_hf import EfficientViTForImageSuperResolution, EfficientViTForSemanticSegmentation, EfficientViTSRConfig
from evit_hf.models.efficientvit.modeling_efficientvit_sam import EfficientViTSamModel
from test_sam import tiny_sam_config
from test_segmentation import tiny_config

# Gradients of the same fp32 computation, recomputed: equal up to summation order.
ATOL, RTOL = 1e-6, 1e-5


def enable_checkpointing(model, use_reentrant: bool) -> None:
    """transformers' switch: `activation_checkpointing_enable` (5.x; `gradient_checkpointing_enable` is its
    deprecated alias), `gradient_checkpointing_enable` on 4.57."""
    kwargs = {"use_reentrant": use_reentrant}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def disable_checkpointing(model) -> None:
    if hasattr(model, "activation_checkpointing_disable"):
        model.activation_checkpointing_disable()
    else:
        model.gradient_checkpointing_disable()


def is_checkpointing(model) -> bool:
    if hasattr(type(model), "is_activation_checkpointing"):  # transformers 5 (`is_gradient_checkpointing` before)
        return model.is_activation_checkpointing
    return model.is_gradient_checkpointing


def segmentation_step(model):
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randn(2, 3, 64, 96, generator=generator)
    labels = torch.randint(0, 3, (2, 64, 96), generator=generator)
    labels[:, :4] = 255  # ignored pixels
    return model(pixel_values=pixels, labels=labels).loss


def sam_step(model):
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randn(2, 3, 128, 128, generator=generator)
    points = torch.rand(2, 3, 2, 2, generator=generator) * 128
    labels = torch.tensor([[[1, 0], [1, 1], [1, -1]]] * 2)
    outputs = model(pixel_values=pixels, input_points=points, input_labels=labels)
    target = (torch.rand(outputs.pred_masks.shape, generator=generator) > 0.5).float()
    mask_loss = torch.nn.functional.binary_cross_entropy_with_logits(outputs.pred_masks, target)
    return mask_loss + (outputs.iou_scores - 0.5).square().mean()


def super_resolution_step(model):
    generator = torch.Generator().manual_seed(0)
    pixels = torch.rand(2, 3, 12, 16, generator=generator)
    labels = torch.rand(2, 3, 24, 32, generator=generator)
    return model(pixel_values=pixels, labels=labels).loss


def segmentation_model():
    return EfficientViTForSemanticSegmentation(tiny_config(drop_path_rate=0.2))  # stochastic depth: same masks


def sam_model():
    return EfficientViTSamModel(tiny_sam_config())


def super_resolution_model():
    model = EfficientViTForImageSuperResolution(
        EfficientViTSRConfig(upscale=2, hidden_size=16, num_blocks=2, attention_head_dim=8, norm_type="layernorm"))
    with torch.no_grad():  # the last conv starts at zero (bicubic output): give the body a gradient
        model.upsampler.proj.weight.normal_(std=0.05)
    return model


CASES = {
    "segmentation": (segmentation_model, segmentation_step),
    "sam": (sam_model, sam_step),
    "super-resolution": (super_resolution_model, super_resolution_step),
}


def training_step(model, step) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Loss, gradients and buffers (BatchNorm statistics) after one forward and backward in training mode."""
    model.train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)  # the same stochastic-depth draws in both runs
    loss = step(model)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    return loss.detach(), grads, buffers


@pytest.mark.parametrize("use_reentrant", [False, True], ids=["non-reentrant", "reentrant"])
@pytest.mark.parametrize("case", list(CASES))
def test_checkpointed_step_equals_plain_step(case, use_reentrant):
    build, step = CASES[case]
    torch.manual_seed(0)
    plain_model = build()
    model = copy.deepcopy(plain_model)
    assert model.supports_gradient_checkpointing and not is_checkpointing(model)
    loss, grads, buffers = training_step(plain_model, step)

    enable_checkpointing(model, use_reentrant)
    units = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    assert units and all(m.gradient_checkpointing for m in units) and is_checkpointing(model)
    recomputed = []  # forward runs of the units handed to the checkpoint function: first pass and recomputation
    for unit in units:
        checkpoint = unit._gradient_checkpointing_func

        def counting(function, *args, _checkpoint=checkpoint, _unit=unit, **kwargs):
            def run(*run_args, **run_kwargs):
                recomputed.append(_unit)
                return function(*run_args, **run_kwargs)

            return _checkpoint(run, *args, **kwargs)

        unit._gradient_checkpointing_func = counting
    checkpointed_loss, checkpointed_grads, checkpointed_buffers = training_step(model, step)

    # every unit ran through the checkpoint and was recomputed in the backward pass
    assert {id(u) for u in recomputed} == {id(u) for u in units}
    assert len(recomputed) == 2 * len(units)
    if case == "sam":  # the decoder's two-way blocks are units too
        assert sum(type(u).__name__ == "EfficientViTSamTwoWayAttentionBlock" for u in units) == 2
    torch.testing.assert_close(checkpointed_loss, loss, atol=ATOL, rtol=RTOL)
    assert checkpointed_grads.keys() == grads.keys()
    unused = {name for name, _ in model.named_parameters()} - grads.keys()  # prompt embeddings the step never uses
    assert all(name.startswith("prompt_encoder.") for name in unused), unused
    for name, grad in grads.items():
        torch.testing.assert_close(checkpointed_grads[name], grad, atol=ATOL, rtol=RTOL, msg=name)
    # the recomputation leaves BatchNorm's running statistics (and batch counts) as a plain step does
    assert checkpointed_buffers.keys() == buffers.keys()
    for name, buffer in buffers.items():
        torch.testing.assert_close(checkpointed_buffers[name], buffer, atol=0, rtol=0, msg=name)
    if case != "super-resolution":
        assert any(name.endswith("num_batches_tracked") and int(b) == 1 for name, b in buffers.items())

    # off again: the plain graph, no checkpoint call
    disable_checkpointing(model)
    assert not is_checkpointing(model)
    recomputed.clear()
    torch.testing.assert_close(training_step(model, step)[0], loss, atol=ATOL, rtol=RTOL)
    assert not recomputed


def test_gradient_checkpointing_is_training_only():
    """In eval mode (and without gradients) the units run their plain forward: inference and export are unchanged."""
    torch.manual_seed(0)
    model = segmentation_model().eval()
    pixels = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        expected = model(pixels).logits
    enable_checkpointing(model, use_reentrant=False)
    calls = []
    for unit in (m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)):
        unit._gradient_checkpointing_func = lambda *args, **kwargs: calls.append(args)
    with torch.no_grad():
        torch.testing.assert_close(model(pixels).logits, expected, atol=0, rtol=0)
    assert not calls


MEMORY_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    import torch
    torch.manual_seed(0)
    torch.set_num_threads(1)
    family, checkpointing = sys.argv[1], sys.argv[2] == "1"
    if family == "seg-b1":
        from evit_hf import EfficientViTConfig, EfficientViTForSemanticSegmentation
        model = EfficientViTForSemanticSegmentation(EfficientViTConfig.from_preset("seg-b1-cityscapes"))
        size, batch = (int(sys.argv[3]), int(sys.argv[4])), int(sys.argv[5])
        pixels = torch.randn(batch, 3, *size)
        labels = torch.randint(0, 19, (batch, *size))
        step = lambda: model(pixel_values=pixels, labels=labels).loss
    else:
        from evit_hf import EfficientViTSamConfig, EfficientViTSamModel
        model = EfficientViTSamModel(EfficientViTSamConfig.from_preset("sam-l0"))
        side, batch = int(sys.argv[3]), int(sys.argv[5])
        pixels = torch.randn(batch, 3, side, side)
        points = torch.rand(batch, 8, 1, 2) * 1024
        def step():
            out = model(pixel_values=pixels, input_points=points)
            return out.pred_masks.float().square().mean() + out.iou_scores.square().mean()
    model.train()
    if checkpointing:
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable()
        else:
            model.gradient_checkpointing_enable()

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()

    def high_water_mark():
        # VmHWM, not getrusage's ru_maxrss: Linux carries the parent's peak RSS over `exec` into ru_maxrss, so in
        # a large pytest process both runs would report the parent's peak (5.2 GB seen in CI).
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))

    before = rss()
    step().backward()
    peak = high_water_mark()
    print(json.dumps({"before": before, "peak": peak, "step_peak": peak - before}))
""")


def step_peak_memory(*args: str) -> int:
    """Bytes the peak RSS of a fresh process rose by in one training step (model and inputs built before)."""
    result = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, *args], capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])["step_peak"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_checkpointing_lowers_peak_training_memory():
    """seg-b1 (Cityscapes head) at 256x512, batch 2: the step's peak memory falls to 0.53-0.59 of the plain
    step's here (RSS varies by a few percent between runs; 0.41 at 512x1024, see docs/training.md)."""
    plain = step_peak_memory("seg-b1", "0", "256", "512", "2")
    checkpointed = step_peak_memory("seg-b1", "1", "256", "512", "2")
    assert checkpointed < 0.7 * plain, (plain, checkpointed)
