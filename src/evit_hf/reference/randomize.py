"""Deterministic random weights with realistic scales (`randomize_`), for presets and comparisons.

Owns the one randomiser of the library: the resolver gives preset models these weights when asked for a
seed (`evit-hf export` / `bench backends` on a preset name), `bench.inference` gives them to the original
model and to ours, and export tests use them. Untrained defaults (unit BatchNorm, zero biases) make a
network's output nearly constant, which would hide numerical differences; these give every layer a
well-spread output.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Fill `model`'s floating-point state in place (and return it): fan-in-scaled conv / linear weights,
    norm scales near 1, small biases, BatchNorm running variances away from 1; the same `seed` gives the
    same weights."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            noise = torch.randn(tensor.shape, generator=generator)
            if name.endswith("running_var"):
                tensor.copy_(0.5 + noise.abs())
            elif name.endswith("weight") and tensor.ndim == 1:  # norm scales
                tensor.copy_(1.0 + 0.1 * noise)
            elif tensor.ndim <= 1:
                tensor.copy_(0.05 * noise)
            else:
                tensor.copy_(noise * (1.0 / math.sqrt(max(tensor[0].numel(), 1))))
    return model


__all__ = ["randomize_"]
