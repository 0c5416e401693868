"""TFLite (LiteRT) export with `litert-torch` and validation in the `ai-edge-litert` interpreter.

Owns converting each graph of `specs.export_graphs` to `<graph name>.tflite`, the choice of resize kernel
and the validation: every file runs in the LiteRT interpreter on the sample inputs and is compared with
PyTorch (the maximum absolute difference is recorded; above `atol`, or NaN, fails the export).

Bicubic resizing (segmentation head, SAM neck, SR skip path) converts exactly: export graphs upsample by
integer factors with an exact conv + pixel shuffle, and litert-torch lowers any other bicubic
`F.interpolate` into gathers and multiply-adds. `resize="bilinear"` swaps both for TFLite's native bilinear
resize inside the export only (for runtimes that want it); the reference is then the swapped PyTorch model,
and `resize_delta` reports what the swap costs against the unmodified one. TFLite graphs are static-shape:
batch 1 at the export size.

Needs `pip install litert-torch` (the `tflite` extra), which brings `ai-edge-litert`; no TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .onnx import ExportedGraph, ExportValidationError, ValidationCheck, compare, describe, run_graph
from .specs import ExportGraph, check_task, export_graphs

DEFAULT_TFLITE_ATOL = 1e-4
Resize = Literal["auto", "bilinear", "bicubic"]
_INSTALL = "TFLite export needs litert-torch: `pip install litert-torch` (or `pip install 'evit-hf[tflite]'`)."


@dataclass
class ResizeDelta:
    """What replacing bicubic by bilinear resizing costs: the TFLite output vs the unmodified PyTorch model."""

    max_abs_diff: float
    mean_abs_diff: float
    argmax_changed: float | None = None  # semantic segmentation: the share of logit pixels whose class changes

    def __str__(self) -> str:
        text = f"bilinear vs bicubic: max abs diff {self.max_abs_diff:.3g}, mean {self.mean_abs_diff:.3g}"
        if self.argmax_changed is not None:
            text += f", argmax class changed on {100 * self.argmax_changed:.2f}% of pixels"
        return text


@dataclass
class TFLiteExportedGraph(ExportedGraph):
    """An `ExportedGraph` with the resize kernel it was exported with and, when bicubic was swapped for
    bilinear, the accuracy that cost (`resize_delta`)."""

    resize: str = "bicubic"
    resize_delta: ResizeDelta | None = None


def _require_litert():
    try:
        import litert_torch
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as error:
        raise ImportError(_INSTALL) from error
    return litert_torch, Interpreter


@contextlib.contextmanager
def bicubic_as_bilinear() -> Iterator[None]:
    """Within the block, bicubic resizing is bilinear (same output size, align_corners=False): calls of
    `F.interpolate(mode="bicubic")` and the exact bicubic conv (`upsample_bicubic_as_conv`) that the models'
    export graphs use for integer factors."""
    from ..models.efficientvit import modeling_efficientvit_blocks

    original, conv = F.interpolate, modeling_efficientvit_blocks.upsample_bicubic_as_conv

    def interpolate(input, size=None, scale_factor=None, mode="nearest", *args, **kwargs):  # noqa: A002
        return original(input, size, scale_factor, "bilinear" if mode == "bicubic" else mode, *args, **kwargs)

    def upsample_bilinear(x: torch.Tensor, factor: int) -> torch.Tensor:
        size = (int(x.shape[-2]) * factor, int(x.shape[-1]) * factor)
        return original(x, size=size, mode="bilinear", align_corners=False)

    holders = [m for name, m in list(sys.modules.items())
               if name.startswith("evit_hf.") and getattr(m, "upsample_bicubic_as_conv", None) is conv]
    F.interpolate = interpolate
    for module in holders:
        module.upsample_bicubic_as_conv = upsample_bilinear
    try:
        yield
    finally:
        F.interpolate = original
        for module in holders:
            module.upsample_bicubic_as_conv = conv


def uses_bicubic(graph: ExportGraph, inputs: tuple[torch.Tensor, ...]) -> bool:
    """Whether `graph` calls `F.interpolate(mode="bicubic")` on `inputs` (one PyTorch forward pass)."""
    original, modes = F.interpolate, []

    def interpolate(*args, **kwargs):
        modes.append(kwargs.get("mode", args[3] if len(args) > 3 else "nearest"))
        return original(*args, **kwargs)

    F.interpolate = interpolate
    try:
        run_graph(graph, inputs)
    finally:
        F.interpolate = original
    return "bicubic" in modes


def _resize_context(resize: str) -> contextlib.AbstractContextManager:
    return bicubic_as_bilinear() if resize == "bilinear" else contextlib.nullcontext()


def run_tflite(interpreter, inputs: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    """Run the default signature of a LiteRT `Interpreter` on positional `inputs`; outputs in graph order."""
    runner = interpreter.get_signature_runner()
    details = runner.get_input_details()
    # litert-torch narrows int64 inputs (SAM's point labels) to int32: cast to the types the graph declares.
    feeds = {f"args_{i}": t.detach().cpu().numpy() for i, t in enumerate(inputs)}
    outputs = runner(**{name: array.astype(details[name]["dtype"]) for name, array in feeds.items()})
    return [outputs[f"output_{i}"] for i in range(len(outputs))]


def _resize_delta(task: str, expected: tuple[torch.Tensor, ...], actual: list[np.ndarray]) -> ResizeDelta:
    diffs = [np.abs(out.astype(np.float32) - ref.float().numpy()) for ref, out in zip(expected, actual)]
    changed = None
    if task == "semantic-segmentation":
        changed = float((expected[0].argmax(1).numpy() != actual[0].argmax(1)).mean())
    return ResizeDelta(max(float(d.max()) for d in diffs), float(np.mean([d.mean() for d in diffs])), changed)


def export_graph_tflite(graph: ExportGraph, path: Path, inputs: tuple[torch.Tensor, ...], resize: str) -> float:
    """Convert `graph` at the static shapes of `inputs` and write it to `path`; returns the seconds it took."""
    litert_torch, _ = _require_litert()
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get("LITERT_TORCH_SHOW_PROGRESS")
    litert_torch.config.show_progress = False
    start = time.perf_counter()
    try:
        with _resize_context(resize), torch.no_grad():
            litert_torch.convert(graph.module, inputs).export(str(path))
    except Exception as error:
        raise RuntimeError(
            f"litert-torch could not convert graph {graph.name!r} ({describe(graph.input_names, inputs)}; TFLite "
            f"graphs are static-shape, batch 1 at the export size): {type(error).__name__}: {error}"
        ) from error
    finally:
        if previous is None:
            os.environ.pop("LITERT_TORCH_SHOW_PROGRESS", None)
        else:
            os.environ["LITERT_TORCH_SHOW_PROGRESS"] = previous
        graph.module.eval()
    return time.perf_counter() - start


def validate_tflite(graph: ExportGraph, path: Path, inputs: tuple[torch.Tensor, ...], resize: str,
                    atol: float = DEFAULT_TFLITE_ATOL) -> tuple[ValidationCheck, list[np.ndarray]]:
    """Compare the LiteRT interpreter with PyTorch (resized as exported) on `inputs`; raises
    `ExportValidationError` above `atol` or on NaN. Returns the check and the TFLite outputs."""
    _, Interpreter = _require_litert()
    interpreter = Interpreter(model_path=str(path))
    try:
        actual = run_tflite(interpreter, inputs)
    except Exception as error:
        shapes = describe(graph.input_names, inputs)
        raise ExportValidationError(f"{path.name}: the LiteRT interpreter failed on {shapes} (TFLite graphs are "
                                    f"static-shape: feed exactly these shapes): {error}") from error
    with _resize_context(resize):
        expected = run_graph(graph, inputs)
    diff = compare(expected, actual, graph.output_names)
    check = ValidationCheck(describe(graph.input_names, inputs), diff,
                            describe(graph.output_names, tuple(torch.from_numpy(a) for a in actual)))
    if not diff <= atol:
        raise ExportValidationError(f"{path.name}: LiteRT and PyTorch ({resize} resize) differ by {diff:.3g} "
                                    f"(> atol {atol:g}) on {check.inputs} (static shape, batch 1).")
    return check, actual


def export_tflite(
    model: nn.Module,
    output_dir: str | Path,
    task: str | None = None,
    size: tuple[int, int] | None = None,
    atol: float = DEFAULT_TFLITE_ATOL,
    resize: Resize = "auto",
    validate: bool = True,
) -> list[ExportedGraph]:
    """Export `model` for `task` to `output_dir` (`model.tflite`, or SAM's `vision_encoder.tflite` and
    `prompt_encoder_mask_decoder.tflite`) with `config.json`, validating each file in the LiteRT interpreter.

    TFLite graphs are static-shape: each is converted for batch 1 at `size` (height, width; the task's default
    export size when `None`; SAM graphs have the model's fixed sizes and 2 prompts of 3 points) and takes
    exactly those input shapes. `resize`: `"bicubic"` keeps the models' bicubic resizing (exact), `"bilinear"`
    replaces it by TFLite's native bilinear resize in graphs that use it and records the cost in
    `resize_delta`, `"auto"` keeps bicubic and falls back to bilinear only if bicubic fails to convert.
    Returns `TFLiteExportedGraph`s.
    """
    if resize not in ("auto", "bilinear", "bicubic"):
        raise ValueError(f"resize must be 'auto', 'bilinear' or 'bicubic', not {resize!r}.")
    _require_litert()
    output_dir = Path(output_dir)
    task = check_task(model, task)
    graphs = export_graphs(model, task, size)
    results: list[ExportedGraph] = []
    for graph in graphs:
        inputs = graph.sample_inputs(1, size)
        path = output_dir / f"{graph.name}.tflite"
        chosen = "bicubic" if resize == "auto" or not uses_bicubic(graph, inputs) else resize
        try:
            seconds = export_graph_tflite(graph, path, inputs, chosen)
        except RuntimeError:
            if resize != "auto" or not uses_bicubic(graph, inputs):
                raise
            chosen = "bilinear"  # bicubic did not convert: fall back to TFLite's native bilinear resize
            seconds = export_graph_tflite(graph, path, inputs, chosen)
        result = TFLiteExportedGraph(graph.name, path, seconds, resize=chosen)
        if validate:
            check, actual = validate_tflite(graph, path, inputs, chosen, atol)
            result.checks = [check]
            if chosen == "bilinear":
                result.resize_delta = _resize_delta(task, run_graph(graph, inputs), actual)
        results.append(result)
    model.config.save_pretrained(output_dir)
    return results
