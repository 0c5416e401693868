"""The optimiser recipe: AdamW without weight decay on norms and biases, linear warm-up then cosine decay."""

from __future__ import annotations

import math

import torch
from torch import nn


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: weights with `weight_decay`, and norms / biases (all 1-D parameters) without.

    Decaying BatchNorm/LayerNorm scales and biases only shrinks them towards zero without regularising the
    function, which is why the EfficientViT (and most vision) recipes exempt them.
    """
    decay, no_decay = [], []
    for parameter in model.parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim <= 1 else decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def warmup_cosine_schedule(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up from 0 over `warmup_steps`, then cosine decay to `min_lr_ratio` at `total_steps`.

    Steps past `total_steps` stay at the minimum (a streamed split can be a little longer than estimated).
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be positive, got {total_steps}.")
    warmup_steps = min(max(warmup_steps, 0), total_steps - 1)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


__all__ = ["parameter_groups", "warmup_cosine_schedule"]
