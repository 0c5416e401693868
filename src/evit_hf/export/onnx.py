"""ONNX export with `torch.onnx` (the TorchScript exporter) and validation in ONNX Runtime.

Opset 20 by default: its `Gelu` op (tanh approximation) runs 2x faster in ONNX Runtime than the opset-17
decomposition into Mul/Tanh/Add. The TorchScript exporter is used on purpose: the dynamo exporter's
onnxscript optimiser deletes LiteMLA's `+ eps` in the attention denominator, turning exact-zero denominators
into NaN (docs/export.md). Bicubic upsampling is exported as an exact conv + DepthToSpace
(`upsample_bicubic_as_conv`), which ONNX Runtime runs over 10x faster than its cubic Resize. Every
export is run in ONNX Runtime at the sample size and at a second size (a different batch, height and width,
or number of prompts) and compared with PyTorch: the maximum absolute difference is reported and a
difference above `atol` (or any NaN) fails the export.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .specs import ExportGraph, export_graphs

DEFAULT_OPSET = 20
DEFAULT_ATOL = 1e-4


class ExportValidationError(ValueError):
    """The exported graph's outputs differ from PyTorch's by more than the tolerance (or contain NaN)."""


@dataclass
class ValidationCheck:
    """One comparison of an exported graph with PyTorch on the same inputs."""

    inputs: str  # the input shapes, e.g. "pixel_values 2x3x256x512"
    max_abs_diff: float
    outputs: str = ""


@dataclass
class ExportedGraph:
    name: str
    path: Path
    seconds: float
    checks: list[ValidationCheck] = field(default_factory=list)

    @property
    def max_abs_diff(self) -> float:
        return max((c.max_abs_diff for c in self.checks), default=float("nan"))


def describe(names: list[str], tensors: tuple[torch.Tensor, ...]) -> str:
    return ", ".join(f"{n} {'x'.join(map(str, t.shape))}" for n, t in zip(names, tensors))


def ort_session(path: str | Path, threads: int | None = None, providers: list | None = None, optimize: bool = True):
    """An ONNX Runtime session for `path` (CPU unless `providers` says otherwise)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])


def compare(expected: tuple[torch.Tensor, ...], actual: list[np.ndarray], names: list[str]) -> float:
    """The largest absolute difference over all outputs; `inf` on NaN or a shape mismatch."""
    worst = 0.0
    for name, ref, out in zip(names, expected, actual):
        ref = ref.detach().float().cpu().numpy()
        if ref.shape != out.shape:
            raise ExportValidationError(f"output {name!r} has shape {out.shape} in the export, {ref.shape} in "
                                        f"PyTorch.")
        if np.isnan(out).any() and not np.isnan(ref).any():
            return float("inf")
        worst = max(worst, float(np.abs(out.astype(np.float32) - ref).max(initial=0.0)))
    return worst


def validation_inputs(graph: ExportGraph, batch: int) -> list[tuple[torch.Tensor, ...]]:
    """The sample inputs and, for dynamic axes, inputs of another batch size and spatial size."""
    samples = [graph.sample_inputs(batch)]
    if graph.name == "prompt_encoder_mask_decoder":
        embeddings, points, labels = graph.sample_inputs(1)
        # One prompt of five points (last one padding) instead of two prompts of three.
        points = torch.cat([points[:, :1], points[:, :1, :2]], dim=2)
        labels = torch.tensor([[[1, 1, 0, 2, 3]]])
        samples.append((embeddings, points, labels))
    elif graph.fixed_size:
        samples.append(graph.sample_inputs(1))
    else:
        height, width = graph.default_size
        step = 32 if height >= 64 else 8
        samples.append(graph.make_inputs(1, height + step, max(width - step, step)))
    return samples


def run_graph(graph: ExportGraph, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    with torch.inference_mode():
        outputs = graph.module(*inputs)
    return outputs if isinstance(outputs, tuple) else (outputs,)


def validate_onnx(graph: ExportGraph, path: Path, batch: int = 2, atol: float = DEFAULT_ATOL,
                  session=None) -> list[ValidationCheck]:
    """Compare ONNX Runtime with PyTorch on `validation_inputs`; raises `ExportValidationError` above `atol`."""
    session = session or ort_session(path)
    checks = []
    for inputs in validation_inputs(graph, batch):
        expected = run_graph(graph, inputs)
        feeds = {name: t.numpy() for name, t in zip(graph.input_names, inputs)}
        actual = session.run(graph.output_names, feeds)
        diff = compare(expected, actual, graph.output_names)
        check = ValidationCheck(describe(graph.input_names, inputs), diff,
                                describe(graph.output_names, tuple(torch.from_numpy(a) for a in actual)))
        checks.append(check)
        if not diff <= atol:
            raise ExportValidationError(
                f"{path.name}: ONNX Runtime and PyTorch differ by {diff:.3g} (> atol {atol:g}) on {check.inputs}."
            )
    return checks


def export_graph_onnx(graph: ExportGraph, path: Path, opset: int = DEFAULT_OPSET, batch: int = 2,
                      size: tuple[int, int] | None = None) -> float:
    """Write `graph` to `path`; returns the export time in seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    inputs = graph.sample_inputs(batch, size)
    start = time.perf_counter()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings about Python control flow we resolved on purpose
        torch.onnx.export(
            graph.module, inputs, str(path), dynamo=False, opset_version=opset, input_names=graph.input_names,
            output_names=graph.output_names, dynamic_axes=graph.dynamic_axes, do_constant_folding=True,
        )
    # The exporter restores the wrapper's training flag on every submodule: keep the model in eval mode.
    graph.module.eval()
    return time.perf_counter() - start


def export_onnx(
    model: nn.Module,
    output_dir: str | Path,
    task: str | None = None,
    size: tuple[int, int] | None = None,
    opset: int = DEFAULT_OPSET,
    batch: int = 2,
    atol: float = DEFAULT_ATOL,
    validate: bool = True,
) -> list[ExportedGraph]:
    """Export `model` for `task` to `output_dir` (`model.onnx`, or SAM's `vision_encoder.onnx` and
    `prompt_encoder_mask_decoder.onnx`) with `config.json`, validating each graph in ONNX Runtime."""
    output_dir = Path(output_dir)
    graphs = export_graphs(model, task, size)
    results = []
    for graph in graphs:
        path = output_dir / f"{graph.name}.onnx"
        seconds = export_graph_onnx(graph, path, opset, batch, size)
        result = ExportedGraph(graph.name, path, seconds)
        if validate:
            result.checks = validate_onnx(graph, path, batch, atol)
        results.append(result)
    model.config.save_pretrained(output_dir)
    return results
