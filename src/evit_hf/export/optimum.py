"""ONNX export through Optimum (`optimum-onnx`, which needs transformers < 4.58: use the compat environment).

The Optimum ONNX configs here are built from `specs.py`, the one I/O specification of every exporter: input and
output names, dynamic axes and sample inputs come from `export_graphs`, evaluated on a model built on the meta
device from the config (no weights, no compute). During the export a model patcher replaces the model's
`forward` with the spec's graph module (`SamImageEncoder` / `SamPromptMaskDecoder` for SAM), so Optimum traces
exactly the graph that `evit_hf.export.onnx` exports.

`register()` makes Optimum know the EfficientViT model types (also as `trust_remote_code` folders, whose classes
live in `transformers_modules.*`):

- one `OnnxConfig` per task registered with `TasksManager` for `efficientvit` (feature-extraction, backbone,
  image-classification, semantic-segmentation / image-segmentation), `efficientvit_sr` (image-to-image) and
  `efficientvit_sam` (feature-extraction / mask-generation);
- Optimum's library inference accepts `evit_hf.*` model classes as "transformers" (it otherwise refuses them,
  whatever `--library` says), and a local folder of ours gets its task from `config.json` (`--task` optional);
- EfficientViT-SAM exports "split" like Optimum's `SamOnnxConfig`: `vision_encoder.onnx` and
  `prompt_encoder_mask_decoder.onnx` (Optimum only splits the model type "sam"; `--monolith` is refused);
- the task `backbone` (stage feature maps) is added as a custom class task of `efficientvit`.

Command line: `evit-optimum-cli export onnx --model <folder> --task semantic-segmentation out/` (or
`python -m evit_hf.export.optimum ...`) is `optimum-cli` with these registrations. Python:
`export_with_optimum(model_or_path, output_dir)`, which also validates the result with
`evit_hf.export.onnx.validate_onnx` (two input sizes, strict tolerance; Optimum's own check only warns).
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..models.efficientvit import (
    EfficientViTConfig,
    EfficientViTSamConfig,
    EfficientViTSRConfig,
)
from .onnx import DEFAULT_ATOL, DEFAULT_OPSET, ExportedGraph, validate_onnx
from .specs import TASKS, ExportGraph, export_graphs, task_of

INSTALL_HINT = (
    "ONNX export through Optimum needs `pip install optimum-onnx onnx onnxruntime`, and optimum-onnx 0.1 needs "
    "transformers < 4.58 (it pins transformers 4.57): install it in a separate environment, e.g. "
    "`pip install 'transformers<4.58' optimum-onnx onnx onnxruntime`. The `torch.onnx` exporter "
    "(`evit-hf export --backend torch`) works on any transformers version."
)

CONFIG_CLASSES = {cls.model_type: cls for cls in (EfficientViTConfig, EfficientViTSamConfig, EfficientViTSRConfig)}

# model_type -> Optimum task -> the task of `specs.py` (its graphs, inputs and outputs).
OPTIMUM_TASKS: dict[str, dict[str, str]] = {
    EfficientViTConfig.model_type: {
        "feature-extraction": "feature-extraction",
        "backbone": "backbone",
        "image-classification": "image-classification",
        "semantic-segmentation": "semantic-segmentation",
        "image-segmentation": "semantic-segmentation",
    },
    EfficientViTSamConfig.model_type: {"feature-extraction": "mask-generation", "mask-generation": "mask-generation"},
    EfficientViTSRConfig.model_type: {"image-to-image": "image-to-image"},
}
SAM_GRAPHS = ("vision_encoder", "prompt_encoder_mask_decoder")
_MARK = "_evit_hf_patch"  # set on the Optimum functions `register()` replaced (idempotence)


def require_optimum() -> None:
    """Raise a clear `ImportError` when Optimum's ONNX exporter is not importable."""
    try:
        import optimum.exporters.onnx  # noqa: F401
    except ImportError as err:
        raise ImportError(f"{err}. {INSTALL_HINT}") from err


def _package_config(config):
    """`config` as this package's config class (remote-code folders bring their own copy of the class)."""
    cls = CONFIG_CLASSES.get(getattr(config, "model_type", None))
    if cls is None:
        raise ValueError(f"Not an EfficientViT config: model_type {getattr(config, 'model_type', None)!r}.")
    return config if type(config) is cls else cls.from_dict(config.to_dict())


def package_model(model: nn.Module) -> nn.Module:
    """`model` as an instance of this package's class, sharing its parameters and buffers.

    `specs.task_of` matches the package classes exactly; a model loaded with `trust_remote_code=True` is an
    instance of a class of the same name in `transformers_modules.*`, rebuilt here on the meta device and given
    the original tensors (no copy)."""
    if type(model) in TASKS.values():
        return model
    cls = next((c for c in TASKS.values() if c.__name__ == type(model).__name__), None)
    if cls is None:
        raise ValueError(f"No export task for {type(model).__name__}; known tasks: {', '.join(TASKS)}.")
    with torch.device("meta"):
        twin = cls(_package_config(model.config))
    twin.load_state_dict(model.state_dict(keep_vars=True), assign=True, strict=True)
    for name, buffer in model.named_buffers():  # non-persistent buffers are not in the state dict
        owner_name, _, attr = name.rpartition(".")
        owner = twin.get_submodule(owner_name)
        if attr in owner._non_persistent_buffers_set:
            owner._buffers[attr] = buffer
    return twin.eval()


def spec_graphs(config, task: str, size: tuple[int, int] | None = None) -> list[ExportGraph]:
    """The `specs.py` graphs of `task` for `config`, on a meta-device model: names, axes and sample inputs
    without weights (the modules must not be run)."""
    with torch.device("meta"):
        model = TASKS[task](_package_config(config))
    return export_graphs(model, task, size)


def _graph(graphs: list[ExportGraph], name: str) -> ExportGraph:
    return next(g for g in graphs if g.name == name)


@functools.cache
def onnx_config_classes() -> dict[str, type]:
    """Spec task -> Optimum `OnnxConfig` class (built on first use: Optimum is imported lazily)."""
    require_optimum()
    from optimum.exporters.onnx import OnnxConfig
    from optimum.exporters.onnx.model_patcher import ModelPatcher
    from optimum.utils import DEFAULT_DUMMY_SHAPES, DummyInputGenerator, NormalizedConfig

    float_dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

    class EfficientViTDummyInputGenerator(DummyInputGenerator):
        """The spec's sample inputs (`ExportGraph.sample_inputs`): `batch_size` (2 by default, so batch is not
        specialised), `height` x `width` for graphs of any size; fixed-size graphs (SAM) use their own size,
        and SAM's decoder gets 2 prompts of 3 points (foreground, background, padding)."""

        def __init__(self, task: str, normalized_config, graph: ExportGraph,
                     batch_size: int = DEFAULT_DUMMY_SHAPES["batch_size"],
                     height: int = DEFAULT_DUMMY_SHAPES["height"], width: int = DEFAULT_DUMMY_SHAPES["width"],
                     **kwargs: Any) -> None:
            self.task, self.graph = task, graph
            size = None if graph.fixed_size else (height, width)
            self.inputs = dict(zip(graph.input_names, graph.sample_inputs(batch_size, size)))

        def supports_input(self, input_name: str) -> bool:
            return input_name in self.inputs

        def generate(self, input_name: str, framework: str = "pt", int_dtype: str = "int64",
                     float_dtype: str = "fp32"):
            tensor = self.inputs[input_name].clone()
            if tensor.is_floating_point():
                tensor = tensor.to(float_dtypes[float_dtype])
            return tensor if framework == "pt" else tensor.numpy()

    class EfficientViTModelPatcher(ModelPatcher):
        """During export and validation, `model.forward` is the spec's graph module: it takes the graph's inputs
        (by name or in order) and returns its outputs as a dict in `output_names` order."""

        def __init__(self, config, model, model_kwargs: dict[str, Any] | None = None) -> None:
            super().__init__(config, model, model_kwargs)
            graph = config.model_graph(model)
            module, input_names, output_names = graph.module, graph.input_names, graph.output_names

            def patched_forward(*args, **kwargs):
                named = dict(zip(input_names, args), **kwargs)
                outputs = module(*(named[name] for name in input_names))
                outputs = outputs if isinstance(outputs, tuple) else (outputs,)
                return dict(zip(output_names, outputs))

            # Optimum orders and checks the inputs with the forward signature.
            patched_forward.__signature__ = inspect.Signature(
                [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in input_names]
            )
            self.patched_forward = patched_forward

    class EfficientViTOnnxConfig(OnnxConfig):
        """Inputs, outputs, dynamic axes and dummy inputs of one `specs.py` graph (`SPEC_TASK`, `graph_name`)."""

        NORMALIZED_CONFIG_CLASS = NormalizedConfig
        DEFAULT_ONNX_OPSET = DEFAULT_OPSET
        ATOL_FOR_VALIDATION = DEFAULT_ATOL
        _MODEL_PATCHER = EfficientViTModelPatcher
        SPEC_TASK = "feature-extraction"

        def __init__(self, config, task: str = "feature-extraction", int_dtype: str = "int64",
                     float_dtype: str = "fp32", preprocessors: list[Any] | None = None) -> None:
            super().__init__(config, task=task, int_dtype=int_dtype, float_dtype=float_dtype,
                             preprocessors=preprocessors)

        @property
        def graph_name(self) -> str:
            return "model"

        @functools.cached_property
        def graph(self) -> ExportGraph:
            """The spec graph (meta device): names, axes and sample inputs only."""
            return _graph(spec_graphs(self._config, self.SPEC_TASK), self.graph_name)

        def model_graph(self, model: nn.Module) -> ExportGraph:
            """The spec graph on the real `model` (what the patcher runs). The graph wraps a shallow copy, which
            shares the modules and tensors but keeps the class `forward` when the patcher replaces `model.forward`
            (with the model itself, the graph would call the patched forward again)."""
            return _graph(export_graphs(copy.copy(package_model(model)), self.SPEC_TASK), self.graph_name)

        @property
        def inputs(self) -> dict[str, dict[int, str]]:
            return {name: dict(self.graph.dynamic_axes.get(name, {})) for name in self.graph.input_names}

        @property
        def outputs(self) -> dict[str, dict[int, str]]:
            return {name: dict(self.graph.dynamic_axes.get(name, {})) for name in self.graph.output_names}

        def _create_dummy_input_generator_classes(self, **kwargs: Any) -> list:
            return [EfficientViTDummyInputGenerator(self.task, self._normalized_config, self.graph, **kwargs)]

    class EfficientViTFeatureExtractionOnnxConfig(EfficientViTOnnxConfig):
        SPEC_TASK = "feature-extraction"

    class EfficientViTBackboneOnnxConfig(EfficientViTOnnxConfig):
        SPEC_TASK = "backbone"

    class EfficientViTImageClassificationOnnxConfig(EfficientViTOnnxConfig):
        SPEC_TASK = "image-classification"

    class EfficientViTSemanticSegmentationOnnxConfig(EfficientViTOnnxConfig):
        SPEC_TASK = "semantic-segmentation"

    class EfficientViTSRImageToImageOnnxConfig(EfficientViTOnnxConfig):
        SPEC_TASK = "image-to-image"

    class EfficientViTSamOnnxConfig(EfficientViTOnnxConfig):
        """EfficientViT-SAM, "split" like Optimum's `SamOnnxConfig` (same constructor arguments, so Optimum's
        `get_sam_models_for_export` builds the two configs): `vision_encoder=True` is the image encoder,
        `False` the prompt encoder + mask decoder (the spec's `SamPromptMaskDecoder`: no positional
        embedding input, boxes as two labelled corner points)."""

        SPEC_TASK = "mask-generation"
        VARIANTS = {"split": "vision_encoder.onnx (image encoder) and prompt_encoder_mask_decoder.onnx."}  # noqa: RUF012
        DEFAULT_VARIANT = "split"

        def __init__(self, config, task: str = "feature-extraction", int_dtype: str = "int64",
                     float_dtype: str = "fp32", variant: str = "split", vision_encoder: bool | None = None,
                     preprocessors: list[Any] | None = None) -> None:
            super().__init__(config, task=task, int_dtype=int_dtype, float_dtype=float_dtype,
                             preprocessors=preprocessors)
            self.variant = variant
            self.vision_encoder = vision_encoder

        @property
        def graph_name(self) -> str:
            return SAM_GRAPHS[0] if self.vision_encoder in (None, True) else SAM_GRAPHS[1]

    classes = (
        EfficientViTFeatureExtractionOnnxConfig,
        EfficientViTBackboneOnnxConfig,
        EfficientViTImageClassificationOnnxConfig,
        EfficientViTSemanticSegmentationOnnxConfig,
        EfficientViTSRImageToImageOnnxConfig,
        EfficientViTSamOnnxConfig,
    )
    for cls in classes:
        cls.__module__ = __name__
    return {cls.SPEC_TASK: cls for cls in classes}


def onnx_config(config, task: str | None = None, **kwargs: Any):
    """The Optimum `OnnxConfig` for an EfficientViT `config` and an Optimum or spec `task` (default: the first
    task of the model type), e.g. for `optimum.exporters.onnx.export(model, onnx_config(...), path)`."""
    tasks = OPTIMUM_TASKS[_package_config(config).model_type]
    task = task or next(iter(tasks))
    if task in tasks:
        optimum_task, spec_task = task, tasks[task]
    else:
        optimum_task = next((t for t, s in tasks.items() if s == task), None)
        if optimum_task is None:
            raise ValueError(f"A {config.model_type} model exports for the tasks {', '.join(tasks)}, not {task!r}.")
        spec_task = task
    return onnx_config_classes()[spec_task](config, task=optimum_task, **kwargs)


def _task_from_folder(path: str | Path) -> str | None:
    """The spec task of a local EfficientViT folder, from `config.json`'s `architectures`."""
    config_path = Path(path) / "config.json"
    if not config_path.is_file():
        return None
    config = json.loads(config_path.read_text())
    if config.get("model_type") not in OPTIMUM_TASKS:
        return None
    names = {cls.__name__: task for task, cls in TASKS.items()}
    return next((names[a] for a in config.get("architectures") or [] if a in names), None)


def _is_package_class(cls: type) -> bool:
    return cls.__module__.startswith("evit_hf.")


def _patch_classmethod(owner: type, name: str, make) -> None:
    original = owner.__dict__[name].__func__
    if getattr(original, _MARK, False):
        return
    patched = make(original)
    setattr(patched, _MARK, True)
    setattr(owner, name, classmethod(patched))


def register() -> None:
    """Register the EfficientViT ONNX configs with Optimum (idempotent; see the module docstring)."""
    classes = onnx_config_classes()
    from optimum.exporters.onnx import convert as onnx_convert
    from optimum.exporters.onnx import utils as onnx_utils
    from optimum.exporters.tasks import TasksManager
    from optimum.exporters.utils import get_sam_models_for_export

    # "backbone" is no Optimum task: a custom class task (it then also counts as a known task).
    backbone_key = ("pt", EfficientViTConfig.model_type, "backbone")
    TasksManager._CUSTOM_CLASSES[backbone_key] = ("evit_hf", "EfficientViTBackbone")
    register_onnx = TasksManager.create_register("onnx", overwrite_existing=True)
    for model_type, tasks in OPTIMUM_TASKS.items():
        for optimum_task, spec_task in tasks.items():
            register_onnx(model_type, optimum_task)(classes[spec_task])

    def make_library_inference(original):
        def infer(cls, model=None, model_class=None):
            if (model is None) != (model_class is None) and _is_package_class(model_class or type(model)):
                return "transformers"
            return original(cls, model=model, model_class=model_class)

        return infer

    def make_task_inference(original):
        def infer(cls, model_name_or_path, *args, **kwargs):
            task = _task_from_folder(Path(model_name_or_path, kwargs.get("subfolder") or ""))
            return task if task is not None else original(cls, model_name_or_path, *args, **kwargs)

        return infer

    _patch_classmethod(TasksManager, "_infer_library_from_model_or_model_class", make_library_inference)
    _patch_classmethod(TasksManager, "_infer_task_from_model_name_or_path", make_task_inference)

    original = onnx_convert._get_submodels_and_onnx_configs
    if getattr(original, _MARK, False):
        return

    def submodels_and_onnx_configs(model, *args, **kwargs):
        """Split EfficientViT-SAM into its two graphs (Optimum splits only the model type "sam")."""
        config = getattr(model, "config", None)
        if getattr(config, "model_type", None) != EfficientViTSamConfig.model_type or kwargs.get(
            "custom_onnx_configs"
        ):
            return original(model, *args, **kwargs)
        if kwargs.get("monolith"):
            raise ValueError("EfficientViT-SAM exports as two graphs (vision_encoder + prompt_encoder_mask_decoder):"
                             " --monolith is not supported.")
        constructor = TasksManager.get_exporter_config_constructor(
            model=model, exporter="onnx", task=kwargs["task"], library_name=kwargs.get("library_name")
        )
        export_config = constructor(config, int_dtype=kwargs.get("int_dtype", "int64"),
                                    float_dtype=kwargs.get("float_dtype", "fp32"),
                                    preprocessors=kwargs.get("preprocessors"))
        export_config.variant = kwargs.get("_variant", "default")
        return export_config, get_sam_models_for_export(model, export_config)

    setattr(submodels_and_onnx_configs, _MARK, True)
    onnx_convert._get_submodels_and_onnx_configs = submodels_and_onnx_configs
    onnx_utils._get_submodels_and_onnx_configs = submodels_and_onnx_configs


def _load(path: str | Path, task: str | None, trust_remote_code: bool) -> nn.Module:
    """The model to export: without `trust_remote_code` whatever `evit_hf.resolve` takes (a released model's name,
    a folder, a Hub id); with it, transformers' remote code of a folder or Hub id, through Optimum."""
    if not trust_remote_code:
        from ..resolve import load_model

        return load_model(path, task).model
    from transformers import AutoConfig

    task = task or _task_from_folder(path)
    if task is None:
        config = AutoConfig.from_pretrained(path, trust_remote_code=True)
        architectures = getattr(config, "architectures", None) or []
        names = {cls.__name__: t for t, cls in TASKS.items()}
        task = next((names[a] for a in architectures if a in names), None)
        if task is None:
            raise ValueError(f"Cannot infer the export task of {path}: pass task (one of {', '.join(TASKS)}).")
    from optimum.exporters.tasks import TasksManager

    optimum_task = "feature-extraction" if task == "mask-generation" else task
    return TasksManager.get_model_from_task(optimum_task, str(path), trust_remote_code=True,
                                            library_name="transformers", framework="pt")


def export_with_optimum(
    model_or_path: nn.Module | str | Path,
    output_dir: str | Path,
    task: str | None = None,
    size: tuple[int, int] | None = None,
    opset: int | None = None,
    batch: int = 2,
    atol: float = DEFAULT_ATOL,
    validate: bool = True,
    trust_remote_code: bool = False,
) -> list[ExportedGraph]:
    """Export a model (or a saved folder) with Optimum's `onnx_export_from_model` and the configs above.

    Writes `model.onnx` (SAM: `vision_encoder.onnx` + `prompt_encoder_mask_decoder.onnx`) and `config.json` (plus
    the folder's preprocessor config) to `output_dir`. `task` is a `specs.TASKS` task (inferred when `None`);
    `size` the (height, width) of the sample inputs (default: the spec's); `opset` defaults to the configs'
    `DEFAULT_ONNX_OPSET`, the package's `evit_hf.export.onnx.DEFAULT_OPSET`. With `validate`, each graph is compared
    with PyTorch in ONNX Runtime by `evit_hf.export.onnx.validate_onnx` (sample size and a second batch / size;
    raises `ExportValidationError` above `atol`). Optimum's `optimize` levels are not offered: its ORTOptimizer
    knows only transformer architectures ("not available yet" for the EfficientViT model types).
    Returns one `ExportedGraph` per file; `seconds` is the whole Optimum export.
    """
    require_optimum()
    register()
    from optimum.exporters.onnx import onnx_export_from_model

    model = model_or_path if isinstance(model_or_path, nn.Module) else _load(model_or_path, task, trust_remote_code)
    model.eval()
    spec_task = task_of(package_model(model)) if task in (None, "auto") else task
    if task not in (None, "auto") and spec_task != task_of(package_model(model)):
        raise ValueError(f"A {type(model).__name__} exports as task {task_of(package_model(model))!r}, not {task!r}.")
    optimum_task = next(t for t, s in OPTIMUM_TASKS[model.config.model_type].items() if s == spec_task)
    graphs = export_graphs(package_model(model), spec_task, size)
    height, width = size or graphs[0].default_size
    output_dir = Path(output_dir)
    start = time.perf_counter()
    onnx_export_from_model(model, output_dir, opset=opset, task=optimum_task,
                           do_validation=False, batch_size=batch, height=height, width=width)
    seconds = time.perf_counter() - start
    results = []
    for graph in graphs:
        path = output_dir / f"{graph.name}.onnx"
        result = ExportedGraph(graph.name, path, seconds)
        if validate:
            result.checks = validate_onnx(graph, path, batch, atol)
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    """`optimum-cli` with the EfficientViT registrations: `evit-optimum-cli export onnx --model <folder> out/`."""
    try:
        require_optimum()
    except ImportError as err:
        print(f"evit-optimum-cli: error: {err}", file=sys.stderr)
        return 1
    register()
    from optimum.commands.optimum_cli import main as optimum_cli_main

    saved = sys.argv
    sys.argv = ["evit-optimum-cli", *(sys.argv[1:] if argv is None else argv)]
    try:
        optimum_cli_main()
    finally:
        sys.argv = saved
    return 0


if __name__ == "__main__":
    sys.exit(main())
