"""Parameters and MACs of a release target, counted from the model itself (never typed in).

The model is built on the meta device (no memory, no weights) and run once under
`torch.utils.flop_counter.FlopCounterMode` (`evit_hf.bench.core.count_macs`: convs, matmuls and linears;
bicubic interpolation and elementwise ops are not counted). Inputs: classification at the checkpoint's
resolution, Cityscapes at 1024x2048, ADE20K at 512x512, SAM's image encoder at its own resolution (512 or
1024; the prompt encoder and mask decoder are not counted), super-resolution at 256x256. Counting every
variant takes ~20 s, so `evit-hf release --cards-only` stores the numbers next to the cards
(`model_stats.json`) and regenerating the cards can reuse them.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .catalog import ReleaseTarget
from .models import default_config, model_class

STATS_FILE = "model_stats.json"


@dataclass(frozen=True)
class ModelStats:
    params: int                        # every parameter of the released model
    macs: int                          # forward multiply-accumulates at `input_size` (of `counted_part`)
    encoder_params: int | None = None  # SAM: the image encoder's parameters


def counted_part(target: ReleaseTarget) -> str:
    """What the MACs cover."""
    return "image encoder only" if target.family == "sam" else "whole model"


def input_size(target: ReleaseTarget, config=None) -> tuple[int, int]:
    """The (height, width) the MACs are counted at."""
    if target.family == "cls":
        return target.resolution, target.resolution
    if target.family == "seg":
        return (1024, 2048) if target.dataset == "cityscapes" else (512, 512)
    if target.family == "sam":
        size = int((config or default_config(target)).vision_config.image_size)
        return size, size
    return 256, 256


def compute_stats(target: ReleaseTarget, config=None) -> ModelStats:
    """Count the parameters and MACs of `target` (built from `config`, default: the variant's preset)."""
    from ..bench.core import count_macs, count_parameters

    config = config or default_config(target)
    with torch.device("meta"):
        model = model_class(target)(config).eval()
    height, width = input_size(target, config)
    counted_module = model.vision_encoder if target.family == "sam" else model
    return ModelStats(
        params=count_parameters(model),
        macs=round(count_macs(counted_module, (1, 3, height, width))),
        encoder_params=count_parameters(model.vision_encoder) if target.family == "sam" else None,
    )


def load_stats(path: str | os.PathLike) -> dict[str, ModelStats]:
    """Stats stored by `save_stats`, keyed by repo name (empty if the file does not exist)."""
    path = Path(path)
    if not path.is_file():
        return {}
    return {name: ModelStats(**fields) for name, fields in json.loads(path.read_text()).items()}


def save_stats(stats: dict[str, ModelStats], path: str | os.PathLike) -> None:
    data = {name: asdict(value) for name, value in sorted(stats.items())}
    Path(path).write_text(json.dumps(data, indent=2) + "\n")
