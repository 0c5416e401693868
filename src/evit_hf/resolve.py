"""One resolver: a model name -> (model, processor, task), for every command, the app, eval, export and release.

A name is
- a preset (`b1`, `seg-b1-cityscapes`, `sam-l0`, `sr-light-x2`, ...): the released architecture with random
  weights (the model's own initialisation, or with `seed` the deterministic `reference.randomize_` weights),
  said loudly with a `RandomWeightsWarning`: its outputs are meaningless;
- a saved folder or a Hub id: loaded with the transformers Auto class of the task (any model of the task, not
  only EfficientViT), with the folder's own image processor where it fits the task, else the family default;
- for super-resolution, `None`: the x2 checkpoint embedded in the package (`sr_utils`).

`locate` says where a name points without loading anything (the app checks its models at start-up this way).
Downloads of the authors' released checkpoints by variant name belong here too.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from torch import nn

from . import sr_utils
from .reference.randomize import randomize_

# Task -> the transformers Auto class whose mapping gives the model class of a configuration (EfficientViT is
# registered with them on `import evit_hf`). The order is the inference order for a saved folder, most specific
# first: `AutoModel` also maps the SAM and SR configurations.
AUTO_CLASSES: dict[str, str] = {
    "mask-generation": "AutoModelForMaskGeneration",
    "image-to-image": "AutoModelForImageToImage",
    "semantic-segmentation": "AutoModelForSemanticSegmentation",
    "image-classification": "AutoModelForImageClassification",
    "backbone": "AutoBackbone",
    "feature-extraction": "AutoModel",
}
TASKS = tuple(AUTO_CLASSES)
# How a task's presets are spoken of, and the name prefix of its presets (classification presets have none).
_TASK_WORDS = {"mask-generation": "SAM", "image-to-image": "SR", "semantic-segmentation": "segmentation",
               "image-classification": "classification"}
_PRESET_PREFIXES = {"sam-": "mask-generation", "sr-": "image-to-image", "seg-": "semantic-segmentation"}
# Bare networks and backbones are built from the classification presets.
_PRESET_TASK = {"feature-extraction": "image-classification", "backbone": "image-classification"}


class RandomWeightsWarning(UserWarning):
    """A preset name was resolved: the model has random weights, so what it outputs is meaningless."""


class ResolvedModel(NamedTuple):
    """What a name resolves to."""

    model: nn.Module  # in eval mode, on the CPU
    processor: Any    # its image processor; None only on transformers < 5 (no PIL image processors)
    task: str         # one of `TASKS`


# ------------------------------------------------------------------------------------------------- presets
def _preset_tables() -> tuple[tuple[str, dict, Any], ...]:
    """(task, presets, config class) per family, in the order presets are listed."""
    from .models.efficientvit import (
        PRESETS,
        SAM_PRESETS,
        SEGMENTATION_PRESETS,
        SR_PRESETS,
        EfficientViTConfig,
        EfficientViTSamConfig,
        EfficientViTSRConfig,
    )

    return (
        ("image-classification", PRESETS, EfficientViTConfig),
        ("semantic-segmentation", SEGMENTATION_PRESETS, EfficientViTConfig),
        ("mask-generation", SAM_PRESETS, EfficientViTSamConfig),
        ("image-to-image", SR_PRESETS, EfficientViTSRConfig),
    )


def preset_names(task: str | None = None) -> list[str]:
    """The preset names of `task` (every preset when None), sorted within each family."""
    family = _PRESET_TASK.get(task, task)
    return [name for table_task, presets, _ in _preset_tables() if family in (None, table_task)
            for name in sorted(presets)]


def _find_preset(name: str) -> tuple[str, Any] | None:
    """(task, config class) of preset `name`, or None when it is not a preset."""
    return next(((task, config_class) for task, presets, config_class in _preset_tables() if name in presets), None)


def is_preset(name: str) -> bool:
    return _find_preset(name) is not None


def preset_model(name: str, task: str | None = None, seed: int | None = None) -> nn.Module:
    """The model of preset `name` for `task` (default: the preset's own) in eval mode, with the model's own
    random initialisation, or with `seed` the deterministic `randomize_` weights. No warning: callers that
    hand it to a user say so (`load_model` does)."""
    found = _find_preset(name)
    if found is None:
        raise ValueError(f"Unknown preset {name!r}; presets: {', '.join(preset_names())}.")
    preset_task, config_class = found
    config = config_class.from_preset(name)
    task = task or preset_task
    if not _serves(config, task):
        raise ValueError(f"Preset {name!r} ({preset_task}) cannot load as task {task!r}.")
    model = _model_classes(config, task)[0](config)
    if seed is not None:
        randomize_(model, seed)
    return model.eval()


def _warn_random_weights(name: str, task: str, seed: int | None) -> None:
    hint = " (an untrained model returns the bicubic upsampling)" if task == "image-to-image" and seed is None else ""
    warnings.warn(
        f"{name!r} is a preset name: the model has random weights{hint}, so its outputs are meaningless. Pass "
        f"a converted folder or Hub id (`evit-hf convert`) for trained weights.",
        RandomWeightsWarning,
        stacklevel=3,
    )


# ------------------------------------------------------------------------------------------------ loading
def _auto_class(task: str):
    if task not in AUTO_CLASSES:
        raise ValueError(f"Unknown task {task!r}; choose one of: {', '.join(TASKS)}.")
    import transformers  # EfficientViT is registered with the Auto classes on `import evit_hf`

    return getattr(transformers, AUTO_CLASSES[task])


def _model_classes(config, task: str) -> tuple[type, ...]:
    """The classes the Auto class of `task` builds for `config` (none when it does not take this config)."""
    mapping = _auto_class(task)._model_mapping
    if type(config) not in mapping:
        return ()
    classes = mapping[type(config)]
    return classes if isinstance(classes, tuple) else (classes,)


def _serves(config, task: str) -> bool:
    """Whether `task` builds a model of its own for `config`: not one a more specific task owns (`AutoModel`
    builds the SAM model for a SAM config, which is mask generation, not feature extraction)."""
    classes = _model_classes(config, task)
    return bool(classes) and not any(set(classes) & set(_model_classes(config, earlier))
                                     for earlier in TASKS[:TASKS.index(task)])


def _task_of_config(config, name: str) -> str:
    """The task of the class a checkpoint was saved from (`config.architectures[0]`)."""
    architecture = (getattr(config, "architectures", None) or [""])[0]
    for task in TASKS:
        if architecture in {cls.__name__ for cls in _model_classes(config, task)}:
            return task
    raise ValueError(f"cannot infer the task of {name!r} (architectures {config.architectures}); name the task "
                     f"(one of {', '.join(TASKS)}).")


def _check_name(name: str, task: str | None) -> None:
    """A clear error for a name that is neither a preset, an existing path nor a Hub id (`org/name`)."""
    if Path(name).exists() or "/" in name:
        return
    family = next((t for prefix, t in _PRESET_PREFIXES.items() if name.startswith(prefix)), None)
    if family is not None and task in (None, family):
        raise ValueError(f"Unknown {_TASK_WORDS[family]} preset {name!r}; known presets: "
                         f"{', '.join(preset_names(family))}.")
    raise ValueError(f"{name!r} is not a preset, a folder or a Hub id; presets: {', '.join(preset_names(task))}.")


def _load_pretrained(name: str, task: str | None) -> tuple[nn.Module, str]:
    from transformers import AutoConfig

    _check_name(name, task)
    try:
        config = AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot load model {name!r} (not a preset, a folder or a reachable Hub id): {err}") from err
    task = task or _task_of_config(config, name)
    if not _serves(config, task):
        raise ValueError(f"{name!r} holds a {type(config).__name__}, which cannot load as task {task!r}.")
    try:  # the class itself: `AutoBackbone.from_pretrained` takes a folder for a timm model name
        model = _model_classes(config, task)[0].from_pretrained(name)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot load model {name!r} for task {task!r}: {err}") from err
    return model.eval(), task


def _own_processor(name: str):
    """The image processor saved with a folder / Hub repo, or None."""
    from transformers import AutoImageProcessor

    try:
        return AutoImageProcessor.from_pretrained(name)
    except (OSError, ValueError):
        return None


def _processor(task: str, name: str, model: nn.Module, own) -> Any:
    """`own` (the saved processor) where it fits `task`, else the default processor of the model's family."""
    from .models.efficientvit import (
        EfficientViTImageProcessor,
        EfficientViTSamImageProcessor,
        EfficientViTSamModel,
        EfficientViTSegImageProcessor,
        EfficientViTSRImageProcessor,
    )

    if EfficientViTImageProcessor is None:  # transformers < 5: the models work, the processors do not exist
        return None
    if task == "mask-generation":
        if hasattr(own, "post_process_masks"):
            return own
        if not isinstance(model, EfficientViTSamModel):
            raise ValueError(f"{name!r} has no SAM image processor.")
        return EfficientViTSamImageProcessor.for_config(model.config)
    if task == "semantic-segmentation":
        if isinstance(own, EfficientViTSegImageProcessor):
            return own
        return EfficientViTSegImageProcessor.for_dataset("ade20k" if model.config.num_labels == 150 else "cityscapes")
    if task == "image-to-image":
        return own if hasattr(own, "post_process_super_resolution") else EfficientViTSRImageProcessor()
    return own if own is not None else EfficientViTImageProcessor()


def _task_of_model(model: nn.Module) -> str:
    for task in TASKS:
        if type(model) in _model_classes(model.config, task):
            return task
    raise ValueError(f"No task loads a {type(model).__name__}; tasks: {', '.join(TASKS)}.")


def load_processor(name: str | os.PathLike, model: nn.Module, task: str | None = None) -> Any:
    """The image processor of `model` as `load_model` gives it: the one saved with folder / Hub id `name` where it
    fits the task (default: the task of the model's class), else the default of the model's family."""
    name = str(name)
    task = task or _task_of_model(model)
    return _processor(task, name, model, None if is_preset(name) else _own_processor(name))


def load_model(name: str | os.PathLike | None, task: str | None = None, *, seed: int | None = None,
               scale: int | None = None) -> ResolvedModel:
    """(model in eval mode, image processor, task) for a preset, a saved folder or a Hub id.

    `task` (one of `TASKS`) picks the model class; None: the preset's own, or the class the folder was saved
    from. A preset gets random weights (`seed`: the deterministic `randomize_` weights) and a
    `RandomWeightsWarning`. Super-resolution only: `name=None` is the embedded x2 checkpoint; `scale` checks
    the model's factor, and with a preset family (`"sr-light"`) picks `sr-light-x{scale}`. Every failure is a
    `ValueError` that names the problem.
    """
    if task is not None:
        _auto_class(task)  # an unknown task fails before anything loads
    if name is None:
        if task != "image-to-image":
            raise ValueError("no model given: pass a preset name, a saved folder or a Hub id.")
        name = sr_utils.require_embedded_sr_checkpoint()
    name = str(name)
    if scale is not None and task in (None, "image-to-image") and is_preset(f"{name}-x{scale}"):
        name = f"{name}-x{scale}"
    if is_preset(name):
        model = preset_model(name, task, seed)
        task = task or _find_preset(name)[0]
        _warn_random_weights(name, task, seed)
    else:
        model, task = _load_pretrained(name, task)
    processor = load_processor(name, model, task)
    model_scale = getattr(model.config, "upscale", None)
    if scale is not None and model_scale != scale:
        raise ValueError(f"the model {name!r} upscales x{model_scale}, not x{scale}.")
    return ResolvedModel(model, processor, task)


# ----------------------------------------------------------------------------------------------- location
@dataclass(frozen=True)
class ModelLocation:
    """Where a name points, found without loading it.

    `kind`: "preset", "embedded" (the shipped SR checkpoint), "folder", "hub-cache" (a Hub id in the local
    cache), "hub" (a Hub id the Hub will serve), or, when it cannot be loaded here, "embedded-missing",
    "not-a-model-folder" (no config.json), "not-a-name" (neither a folder, a preset nor a Hub id),
    "invalid-hub-id", "hub-offline" (not cached and the Hub cannot be reached).
    """

    kind: str
    path: Path | None = None  # the folder (embedded, folder, not-a-model-folder)

    @property
    def available(self) -> bool:
        return self.kind in ("preset", "embedded", "folder", "hub-cache", "hub")


_REACHABLE: dict[str, bool] = {}


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub endpoint answers (asked once per process, `timeout` seconds at most); `HF_HUB_OFFLINE`
    means no."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    endpoint = constants.ENDPOINT
    if endpoint not in _REACHABLE:
        import urllib.error
        import urllib.request

        try:
            urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout).close()
            _REACHABLE[endpoint] = True
        except urllib.error.HTTPError:  # it answered
            _REACHABLE[endpoint] = True
        except (OSError, ValueError):
            _REACHABLE[endpoint] = False
    return _REACHABLE[endpoint]


def locate(name: str | os.PathLike | None, task: str, online: Callable[[], bool] = hub_reachable) -> ModelLocation:
    """Where `name` (as `load_model` takes it) points for `task`, and whether it can be loaded here."""
    if name is None and task == "image-to-image":
        folder = sr_utils.embedded_sr_checkpoint()
        return ModelLocation("embedded" if sr_utils.has_embedded_sr_checkpoint() else "embedded-missing", folder)
    name = str(name)
    if name in preset_names(task):
        return ModelLocation("preset")
    path = Path(name).expanduser()
    if path.exists():
        return ModelLocation("folder" if (path / "config.json").is_file() else "not-a-model-folder", path)
    if name.count("/") != 1 or name.startswith((".", "/", "~")):
        return ModelLocation("not-a-name")
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(name, "config.json")
    except ValueError:  # not a valid repo id
        return ModelLocation("invalid-hub-id")
    if isinstance(cached, str):
        return ModelLocation("hub-cache")
    return ModelLocation("hub" if online() else "hub-offline")


__all__ = [
    "AUTO_CLASSES",
    "TASKS",
    "ModelLocation",
    "RandomWeightsWarning",
    "ResolvedModel",
    "hub_reachable",
    "is_preset",
    "load_model",
    "load_processor",
    "locate",
    "preset_model",
    "preset_names",
]
