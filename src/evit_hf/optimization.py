"""Inference speed switches: `set_inference_optimizations`, `compile_for_inference`, `tune_cpu_allocator`.

Every EfficientViT model already runs its inference-optimised graph in eval mode (`config.optimize_inference`,
on by default, installs the fast path of `models/efficientvit/modeling_efficientvit_fastpath.py`: BatchNorm
folded into convs, channels-last on CPU, Winograd / GEMM / oneDNN-fused conv + activation, in-place activations
and residual adds, cached weight transforms). `set_inference_optimizations(module, enabled)` installs or removes
that fast path on any module tree (`model.set_inference_optimizations(False)` also records the switch in the
config). This module owns the one further step, compilation, which costs a warm-up on the first call of every
new input shape, and the process setting that matters most on CPU: glibc's allocator (docs/benchmarks.md,
the measured settings table), which `import evit_hf` applies by default (`evit_hf.cpu_defaults`).
"""

from __future__ import annotations

import torch
from torch import nn

from .cpu_defaults import tune_cpu_allocator
from .models.efficientvit.modeling_efficientvit_fastpath import set_inference_optimizations


def compile_for_inference(model: nn.Module, **compile_kwargs) -> nn.Module:
    """`torch.compile(model)` with Inductor's freezing: weights become constants, so BatchNorm folds into the
    convs, oneDNN weights are prepacked once and elementwise ops fuse into generated C++ / Triton kernels.

    For inference only (call it on an eval-mode model and run it under `torch.inference_mode()` or
    `torch.no_grad()`; weights must not change afterwards). Freezing is a process-wide Inductor setting and
    stays on. The first call per input shape compiles: 35-50 s for the released seg / SAM encoders on a 2-core
    CPU. Extra keyword arguments go to `torch.compile` (e.g. `dynamic=False`, `mode="max-autotune"`).
    """
    if model.training:
        raise ValueError("compile_for_inference freezes the weights: call model.eval() first.")
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True
    return torch.compile(model, **compile_kwargs)


__all__ = ["compile_for_inference", "set_inference_optimizations", "tune_cpu_allocator"]
