"""Models to export or benchmark, by name: a saved folder or Hub id (loaded with the model class of the task),
or a preset name (the original variant's configuration with deterministic random weights, warned)."""

from __future__ import annotations

import sys
from pathlib import Path

from torch import nn

from .specs import TASKS, task_of


def preset_names() -> list[str]:
    from ..models.efficientvit import PRESETS, SAM_PRESETS, SEGMENTATION_PRESETS, SR_PRESETS

    return sorted(PRESETS) + sorted(SEGMENTATION_PRESETS) + sorted(SAM_PRESETS) + sorted(SR_PRESETS)


def preset_model(name: str, task: str | None = None, seed: int = 0) -> nn.Module | None:
    """The model of preset `name` for `task` with deterministic fan-in-scaled random weights, or `None` when
    `name` is not a preset. Classification presets also serve `feature-extraction` and `backbone`."""
    from ..bench.original import randomize_
    from ..models.efficientvit import (
        PRESETS,
        SAM_PRESETS,
        SEGMENTATION_PRESETS,
        SR_PRESETS,
        EfficientViTConfig,
        EfficientViTSamConfig,
        EfficientViTSRConfig,
    )

    if name in SAM_PRESETS:
        config, default = EfficientViTSamConfig.from_preset(name), "mask-generation"
    elif name in SR_PRESETS:
        config, default = EfficientViTSRConfig(**SR_PRESETS[name]), "image-to-image"
    elif name in SEGMENTATION_PRESETS:
        config, default = EfficientViTConfig.from_preset(name), "semantic-segmentation"
    elif name in PRESETS:
        config, default = EfficientViTConfig.from_preset(name), "image-classification"
    else:
        return None
    task = task or default
    if task not in TASKS:
        raise ValueError(f"Unknown task {task!r}; choose one of: {', '.join(TASKS)}.")
    if TASKS[task].config_class is not type(config):
        raise ValueError(f"Preset {name!r} cannot export as task {task!r} (it is a {default} preset).")
    return randomize_(TASKS[task](config), seed).eval()


def load_model(name: str, task: str | None = None, quiet: bool = False) -> tuple[nn.Module, str]:
    """(model in eval mode, task) for a folder / Hub id or a preset name; a clear `ValueError` otherwise."""
    if task is not None and task != "auto" and task not in TASKS:
        raise ValueError(f"Unknown task {task!r}; choose one of: {', '.join(TASKS)}.")
    task = None if task == "auto" else task
    model = preset_model(name, task)
    if model is not None:
        if not quiet:
            print(f"warning: {name!r} is a preset name: exporting its architecture with random weights. Pass a "
                  "converted folder or Hub id (`evit-hf convert`) to export trained weights.", file=sys.stderr)
        return model, task_of(model)
    from transformers import AutoConfig

    if "/" not in name and not Path(name).is_dir():  # neither a folder nor an org/name Hub id
        raise ValueError(f"{name!r} is not a preset, a folder or a Hub id; presets: {', '.join(preset_names())}.")
    try:
        config = AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot load {name!r}: not a preset, folder or reachable Hub id ({err}).") from err
    if task is None:  # the class the checkpoint was saved from
        architecture = (getattr(config, "architectures", None) or [""])[0]
        task = next((t for t, cls in TASKS.items() if cls.__name__ == architecture), None)
        if task is None:
            raise ValueError(f"cannot infer the task of {name!r} (architectures {config.architectures}); pass "
                             f"--task ({', '.join(TASKS)}).")
    model_class = TASKS[task]
    if not isinstance(config, model_class.config_class):
        raise ValueError(f"{name!r} holds a {type(config).__name__}, which cannot export as task {task!r}.")
    try:
        model = model_class.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot load {name!r} for task {task!r}: {err}") from err
    return model.eval(), task_of(model)
