"""One resolver: a model name -> (model, processor, task), for the Python API, every command, the app, eval,
export and release.

A name is, in the order tried:
- `random:<preset>` (`random:b1`, `random:seg-b1-cityscapes`, `random:sam-l0`, `random:sr-light-x3`): the
  released architecture with random weights (the model's own initialisation, or with `seed` the deterministic
  `reference.randomize_` weights), an explicit opt-in said loudly with a `RandomWeightsWarning`;
- a local folder (`evit-hf convert`, `save_pretrained`, a training run's output);
- a released model (`efficientvit-sam-xl1`, `efficientvit-seg-l2-cityscapes`, `efficientvit-b2-r288`, the short
  preset names `sam-xl1`, `seg-l2-cityscapes`, `b2`, ...; `evit-hf models` lists them): the authors' checkpoint,
  downloaded, converted and verified once into a cached folder (`evit_hf.hub`); `efficientvit-sr-light-x2` is
  the x2 checkpoint shipped in the package (`sr_utils`), also the super-resolution default (`None`);
- a Hub id (`org/name`): a repo in transformers' format, loaded with the Auto class of the task (any model of
  the task, not only EfficientViT), or timm's mirror of a classifier (`timm/efficientvit_b1.r224_in1k`),
  converted like a released model.

A preset name without released weights (`sr-light-x3`) asks for `random:` instead of loading random weights
silently. Every failure is a one-line `ValueError` that names the fix, raised before anything slow: a
mistyped name gets the closest names, a Hub id that is neither cached nor reachable fails at once instead of
retrying. `find_source` says where a name points (downloading and converting a released checkpoint when
needed) without loading it; `pretrained(name)` is what `from_pretrained` and `pipeline(model=...)` take.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from torch import nn

from .hub.fetch import hub_reachable, unreachable_reason
from .reference.randomize import randomize_

if TYPE_CHECKING:
    from .hub import ReleasedModel

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
RANDOM_PREFIX = "random:"
# How a task's presets are spoken of, and the name prefix of its presets (classification presets have none).
_TASK_WORDS = {"mask-generation": "SAM", "image-to-image": "SR", "semantic-segmentation": "segmentation",
               "image-classification": "classification"}
_PRESET_PREFIXES = {"sam-": "mask-generation", "sr-": "image-to-image", "seg-": "semantic-segmentation"}
# Bare networks and backbones are built from the classification presets (and classifier checkpoints).
_PRESET_TASK = {"feature-extraction": "image-classification", "backbone": "image-classification"}


class RandomWeightsWarning(UserWarning):
    """A `random:` name was resolved: the model has random weights, so what it outputs is meaningless."""


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
        raise _wrong_preset_task(name, preset_task, task)
    model = _model_classes(config, task)[0](config)
    if seed is not None:
        randomize_(model, seed)
    return model.eval()


def _wrong_preset_task(name: str, preset_task: str, task: str) -> ValueError:
    return ValueError(f"Preset {name!r} ({preset_task}) cannot load as task {task!r}.")


def _warn_random_weights(name: str, task: str, seed: int | None) -> None:
    hint = " (an untrained model returns the bicubic upsampling)" if task == "image-to-image" and seed is None else ""
    warnings.warn(
        f"{RANDOM_PREFIX}{name} has random weights{hint}, so its outputs are meaningless. Pass a released model's "
        f"name (`evit-hf models`), a converted folder or a Hub id for trained weights.",
        RandomWeightsWarning,
        stacklevel=3,
    )


def _unknown_preset(name: str, task: str | None) -> ValueError:
    family = next((t for prefix, t in _PRESET_PREFIXES.items() if name.startswith(prefix)), None)
    family = family if family is not None and task in (None, family) else _PRESET_TASK.get(task, task)
    words = f"{_TASK_WORDS[family]} preset" if family in _TASK_WORDS else "preset"
    return ValueError(f"Unknown {words} {name!r}; presets: {', '.join(preset_names(family))}.")


# ------------------------------------------------------------------------------------------------- names
@dataclass(frozen=True)
class ModelSource:
    """Where a name's weights are, found before anything is loaded.

    `kind`: "random" (`location` is a preset name), "folder" (a local folder; released models are converted
    into one) or "hub" (`location` is a Hub id in transformers' format; `offline`: read it from the local
    cache only).
    """

    kind: str
    location: str
    released: ReleasedModel | None = None  # the released model a released name named
    offline: bool = False


def _with_scale(name: str, task: str | None, scale: int | None) -> str:
    """A super-resolution family name (`sr-light`, `efficientvit-sr-light`) with `scale` -> `sr-light-x{scale}`."""
    from .hub import find_released

    if scale is None or task not in (None, "image-to-image"):
        return name
    scaled = f"{name}-x{scale}"
    return scaled if is_preset(scaled) or find_released(scaled) is not None else name


def _check_released_task(released: ReleasedModel, task: str | None) -> None:
    from .hub import released_names

    family = _PRESET_TASK.get(task, task)
    if task is not None and released.task != family:
        names = [name for name in released_names(family) if name.startswith("efficientvit-")]
        raise ValueError(f"{released.name} is a model for {released.task}, not {task}; {task} models: "
                         f"{', '.join(names) or 'none released'}.")


def _released_hint(name: str) -> str:
    """For `org/<released name>`: the released name that loads without that repo."""
    from .hub import find_released

    released = find_released(name.rsplit("/", 1)[-1])
    if released is None:
        return ""
    return (f" The released model {released.name!r} loads by that name (the authors' checkpoint, converted on "
            f"first use); ORG/{released.name} repos exist only where someone ran `evit-hf release --push`.")


def _hub_source(name: str, online: Callable[[], bool]) -> ModelSource:
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(name, "config.json")
    except ValueError as err:  # huggingface_hub's HFValidationError
        raise ValueError(f"{name!r} is not a valid Hub id ({str(err).splitlines()[0]})."
                         f"{_released_hint(name)}") from err
    reachable = online()
    if not isinstance(cached, str) and not reachable:
        raise ValueError(f"{name!r} is not in the local Hugging Face cache and the Hub cannot be asked "
                         f"({unreachable_reason()}).{_released_hint(name)}")
    return ModelSource("hub", name, offline=not reachable)


def _unknown_name(name: str, task: str | None) -> ValueError:
    from .hub import closest_names, released_names

    family = _PRESET_TASK.get(task, task)
    candidates = released_names(family) + [RANDOM_PREFIX + preset for preset in preset_names(task)]
    close = closest_names(name.removeprefix("./"), candidates)
    if any(part in name for part in ("/", os.sep)) or name.startswith(("~", ".")):
        return ValueError(f"{name!r} does not exist (no such folder), and is not a Hub id (org/name)"
                          + (f"; did you mean {', '.join(map(repr, close))}?" if close else "."))
    return ValueError(f"{name!r} is not a released model, a folder or a Hub id (org/name)"
                      + (f"; did you mean {', '.join(map(repr, close))}?" if close else "")
                      + " `evit-hf models` lists the released models.")


def find_source(name: str | os.PathLike | None, task: str | None = None, *, scale: int | None = None,
                online: Callable[[], bool] = hub_reachable) -> ModelSource:
    """Where `name` points for `task`; a released checkpoint is downloaded, converted and verified here (once).

    `scale` (super-resolution) turns a family name (`sr-light`) into the preset of that factor. Raises a
    one-line `ValueError` for a name that cannot be loaded here.
    """
    from .hub import find_released, prepare

    if task is not None:
        _auto_class(task)  # an unknown task fails before anything loads
    if name is None:
        if task != "image-to-image":
            raise ValueError("no model given: pass a released model's name (`evit-hf models`), a saved folder or a "
                             "Hub id.")
        name = "efficientvit-sr-light-x2"  # the x2 checkpoint shipped in the package
    name = str(name)
    if name.startswith(RANDOM_PREFIX):
        preset = _with_scale(name.removeprefix(RANDOM_PREFIX), task, scale)
        found = _find_preset(preset)
        if found is None:
            raise _unknown_preset(preset, task)
        if task is not None and found[0] != _PRESET_TASK.get(task, task):
            raise _wrong_preset_task(preset, found[0], task)
        return ModelSource("random", preset)
    name = _with_scale(name, task, scale)
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            what = "a file, not a saved model folder" if path.is_file() else "not a saved model folder (no config.json)"
            raise ValueError(f"{name!r} is {what}; convert an original checkpoint with `evit-hf convert --variant "
                             f"VARIANT --checkpoint FILE --out FOLDER`.")
        return ModelSource("folder", str(path))
    released = find_released(name)
    if released is not None:
        _check_released_task(released, task)
        return ModelSource("folder", str(prepare(released, online)), released)
    if is_preset(name):
        raise ValueError(f"{name!r} has no released weights; pass '{RANDOM_PREFIX}{name}' for random weights (its "
                         f"outputs are meaningless), or a folder / Hub id with trained weights.")
    if name.count("/") == 1 and not name.startswith((".", "/", "~")):
        return _hub_source(name, online)
    raise _unknown_name(name, task)


def pretrained(name: str | os.PathLike, task: str | None = None) -> str:
    """What `from_pretrained` and `pipeline(model=...)` take for `name`: the local folder of a released model
    (`efficientvit-sam-xl1`: the authors' checkpoint, downloaded, converted and verified on first use, then
    read from the cache) or of a timm mirror, a local folder as is, a Hub id in transformers' format as is.

    ```python
    model = AutoModel.from_pretrained(evit_hf.pretrained("efficientvit-sam-xl1"))
    segmenter = pipeline("image-segmentation", model=evit_hf.pretrained("efficientvit-seg-b1-cityscapes"))
    ```
    """
    source = find_source(name, task)
    if source.kind == "random":
        raise ValueError(f"{name!r} asks for random weights, which have no folder: build the model from its "
                         f"configuration (`EfficientViTConfig.from_preset`) or use `evit_hf.resolve.load_model`.")
    return source.location


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


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _load_pretrained(source: ModelSource, task: str | None) -> tuple[nn.Module, str]:
    from transformers import AutoConfig

    name, offline = source.location, {"local_files_only": True} if source.offline else {}
    hint = _released_hint(name) if source.kind == "hub" else ""
    try:
        config = AutoConfig.from_pretrained(name, **offline)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot load model {name!r}: {_first_line(err)}{hint}") from err
    task = task or _task_of_config(config, name)
    if not _serves(config, task):
        raise ValueError(f"{name!r} holds a {type(config).__name__}, which cannot load as task {task!r}.")
    try:  # the class itself: `AutoBackbone.from_pretrained` takes a folder for a timm model name
        model = _model_classes(config, task)[0].from_pretrained(name, **offline)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot load model {name!r} for task {task!r}: {_first_line(err)}") from err
    return model.eval(), task


def _own_processor(source: ModelSource):
    """The image processor saved with a folder / Hub repo, or None."""
    from transformers import AutoImageProcessor

    if source.kind == "random":
        return None
    try:
        return AutoImageProcessor.from_pretrained(source.location, local_files_only=source.offline)
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
    """The image processor of `model` as `load_model` gives it: the one saved with `name`'s folder / Hub repo
    where it fits the task (default: the task of the model's class), else the default of the model's family."""
    task = task or _task_of_model(model)
    source = find_source(name, task)
    return _processor(task, source.location, model, _own_processor(source))


def load_model(name: str | os.PathLike | None, task: str | None = None, *, seed: int | None = None,
               scale: int | None = None, online: Callable[[], bool] = hub_reachable) -> ResolvedModel:
    """(model in eval mode, image processor, task) for any name `find_source` takes.

    `task` (one of `TASKS`) picks the model class; None: the released model's, the preset's or the class the
    folder was saved from. `random:<preset>` gets random weights (`seed`: the deterministic `randomize_`
    weights) and a `RandomWeightsWarning`. Super-resolution only: `name=None` is the shipped x2 checkpoint;
    `scale` checks the model's factor, and with a family name (`"sr-light"`) picks `sr-light-x{scale}`. Every
    failure is a one-line `ValueError` that names the problem and the fix.
    """
    source = find_source(name, task, scale=scale, online=online)
    if source.kind == "random":
        model = preset_model(source.location, task, seed)
        task = task or _find_preset(source.location)[0]
        _warn_random_weights(source.location, task, seed)
    else:
        model, task = _load_pretrained(source, task)
    processor = _processor(task, source.location, model, _own_processor(source))
    model_scale = getattr(model.config, "upscale", None)
    if scale is not None and model_scale != scale:
        raise ValueError(f"the model {str(name)!r} upscales x{model_scale}, not x{scale}.")
    return ResolvedModel(model, processor, task)


__all__ = [
    "AUTO_CLASSES",
    "RANDOM_PREFIX",
    "TASKS",
    "ModelSource",
    "RandomWeightsWarning",
    "ResolvedModel",
    "find_source",
    "hub_reachable",
    "is_preset",
    "load_model",
    "load_processor",
    "preset_model",
    "preset_names",
    "pretrained",
]
