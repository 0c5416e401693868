"""TensorRT 10 engines for exported EfficientViT graphs, with the numerically fragile layers pinned to fp32.

EfficientViT-SAM encoders built in plain fp16 score 0 mAP (mit-han-lab/efficientvit#113, #142): LayerNorm
overflows and LiteMLA's `eps = 1e-15` is 0 in fp16. `build_engine` therefore keeps in fp32, with
`OBEY_PRECISION_CONSTRAINTS`, every layer that comes from

- a node whose name contains one of the graph's `fp32_scopes` (`ExportGraph.fp32_scopes`: `"attention"` =
  the whole LiteMLA block, `"norm"` = SAM's LayerNorm, ...), and
- every normalization, softmax and reduction, and every division (LiteMLA's `numerator / (denominator +
  eps)`), whatever its name.

`fp32_node_names` computes that selection from the ONNX file alone (pure Python, tested on CPU); at build
time a TensorRT layer is pinned when its name starts with one of those node names (the ONNX parser names
layers after their node, adding suffixes to helper layers), contains a scope, or is of a pinned layer type.

INT8: explicit quantization is used when the ONNX file already holds QuantizeLinear / DequantizeLinear nodes
(write it with `quantize.quantize_static_int8`, which leaves the fp32 scopes unquantized; TensorRT then runs
exactly the int8 layers that ONNX Runtime validated with `quantize.accuracy_delta`). This is the recommended
path: implicit quantization (a calibrator choosing int8 for any layer) is deprecated since TensorRT 10.1
and distorts SAM masks (NVIDIA/TensorRT#3708). For a plain fp32 ONNX file, `precision="int8"` with
`calibration_inputs` falls back to the legacy `IInt8EntropyCalibrator2`, still honouring the fp32 pins.

`TensorRTRunner` runs an engine on torch CUDA tensors (`set_input_shape`, `set_tensor_address`,
`execute_async_v3`); `ort_tensorrt_session` is the ONNX Runtime TensorrtExecutionProvider alternative (fp16
with `trt_layer_norm_fp32_fallback`; it cannot pin attention layers, use `build_engine` for that).

Requires an NVIDIA GPU, CUDA torch and `pip install tensorrt` (>= 10); `tensorrt_available()` says why not.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .quantize import DEFAULT_FP32_SCOPES, _load

Shape = tuple[int, ...]
ProfileShapes = dict[str, tuple[Shape, Shape, Shape]]

PRECISIONS = ("fp32", "fp16", "int8")
# ONNX ops kept in fp32 wherever they are (normalizations, softmax, reductions, divisions, pow / sqrt of
# decomposed norms).
ALWAYS_FP32_OPS: frozenset[str] = frozenset({
    "LayerNormalization", "GroupNormalization", "InstanceNormalization", "BatchNormalization",
    "LpNormalization", "Softmax", "LogSoftmax", "ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL2",
    "ReduceMax", "ReduceMin", "ReduceProd", "ReduceLogSumExp", "Div", "Pow", "Sqrt", "Reciprocal",
})
# Ops that compute shapes / indices rather than activations: never pinned (they are not float).
_SHAPE_OPS: frozenset[str] = frozenset({"Shape", "Size", "NonZero", "Range", "ConstantOfShape"})
_FLOAT_TYPES = {1, 10, 11, 16}  # onnx.TensorProto FLOAT, FLOAT16, DOUBLE, BFLOAT16
_QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
_INSTALL_HINT = "pip install 'tensorrt>=10,<11' (with a CUDA build of torch and an NVIDIA GPU)"


class TensorRTUnavailableError(RuntimeError):
    """TensorRT (or the ONNX Runtime TensorRT provider) cannot run here: no GPU, package or provider."""


# ------------------------------------------------------------------------------------------- availability
def tensorrt_available() -> tuple[bool, str]:
    """(True, "TensorRT x on <GPU>") when engines can be built and run here, else (False, the reason)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False, "torch is not installed"
    if not torch.cuda.is_available():
        return False, "no CUDA GPU (torch.cuda.is_available() is False; TensorRT needs an NVIDIA GPU)"
    try:
        import tensorrt as trt
    except ImportError:
        return False, f"tensorrt is not installed: {_INSTALL_HINT}"
    except Exception as error:  # a broken install (missing CUDA libraries) raises OSError and friends
        return False, f"tensorrt failed to import: {error}"
    major = int(str(trt.__version__).split(".")[0])
    if major < 10:
        return False, f"TensorRT {trt.__version__} is too old: this module uses the TensorRT 10 API ({_INSTALL_HINT})"
    if major > 10 or not hasattr(trt.BuilderFlag, "FP16"):
        return False, (f"TensorRT {trt.__version__} removed weakly typed builds (BuilderFlag.FP16 / INT8, "
                       f"OBEY_PRECISION_CONSTRAINTS) that the fp32 pinning relies on: {_INSTALL_HINT}, or use "
                       f"ort_tensorrt_session")
    return True, f"TensorRT {trt.__version__} on {torch.cuda.get_device_name()}"


def _require_tensorrt():
    ok, reason = tensorrt_available()
    if not ok:
        raise TensorRTUnavailableError(reason)
    import tensorrt as trt

    return trt


# ------------------------------------------------------------------------------- fp32 selection (pure Python)
def _float_outputs(model) -> dict[str, bool]:
    """Value name -> whether it is a float tensor, from ONNX shape inference (unknown names are absent)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # inference is best effort (custom ops, huge models)
        inferred = model
    graph = inferred.graph
    types = {}
    for value in [*graph.value_info, *graph.output, *graph.input]:
        if value.type.HasField("tensor_type"):
            types[value.name] = value.type.tensor_type.elem_type in _FLOAT_TYPES
    for tensor in graph.initializer:
        types[tensor.name] = tensor.data_type in _FLOAT_TYPES
    for node in graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    types[node.output[0]] = attribute.t.data_type in _FLOAT_TYPES
    return types


def fp32_node_names(
    model: str | Path | Any,
    fp32_scopes: Sequence[str] = DEFAULT_FP32_SCOPES,
    always_fp32_ops: Iterable[str] = ALWAYS_FP32_OPS,
) -> list[str]:
    """Names of the ONNX nodes of `model` (a file or `ModelProto`) that `build_engine` pins to fp32, in graph
    order: float-valued nodes whose name contains one of `fp32_scopes`, and float-valued nodes of
    `always_fp32_ops` (normalizations, softmax, reductions, divisions). Shape arithmetic (integer outputs)
    and QuantizeLinear / DequantizeLinear nodes are left out."""
    model = _load(model)
    always = set(always_fp32_ops)
    scopes = [s for s in fp32_scopes if s]
    is_float = _float_outputs(model)
    names = []
    for node in model.graph.node:
        if not node.name or node.op_type in _SHAPE_OPS or node.op_type in _QDQ_OPS:
            continue
        if not (node.op_type in always or any(s in node.name for s in scopes)):
            continue
        if all(is_float.get(out, True) for out in node.output if out):
            names.append(node.name)
    return names


def has_qdq(model) -> bool:
    """Whether `model` holds QuantizeLinear / DequantizeLinear nodes (an explicitly quantized network)."""
    return any(node.op_type in _QDQ_OPS for node in _load(model).graph.node)


def _layer_matches(name: str, nodes: frozenset[str], prefixes: re.Pattern | None, scopes: Sequence[str]) -> bool:
    """Whether a TensorRT layer called `name` comes from a pinned node (same name, or the node name followed by
    a suffix the parser adds to helper layers) or lies in a scope."""
    if name in nodes or any(s in name for s in scopes):
        return True
    return bool(prefixes and prefixes.match(name))


def _prefix_pattern(nodes: Iterable[str]) -> re.Pattern | None:
    nodes = sorted(nodes, key=len, reverse=True)
    if not nodes:
        return None
    return re.compile("(?:" + "|".join(re.escape(n) for n in nodes) + r")(?:$|[_.:/\[ ])")


# ------------------------------------------------------------------------------------------ profile shapes
def _round(value: int, multiple: int) -> int:
    return max(multiple, (int(value) + multiple - 1) // multiple * multiple)


def profile_shapes(
    graph,
    batch: tuple[int, int, int] = (1, 1, 8),
    size: tuple[int, int] | None = None,
    min_size: tuple[int, int] | None = None,
    max_size: tuple[int, int] | None = None,
    prompts: tuple[int, int, int] = (1, 2, 32),
    points: tuple[int, int, int] = (1, 3, 16),
    multiple: int = 32,
) -> ProfileShapes:
    """(min, opt, max) shapes of every input of an `ExportGraph`, from its `dynamic_axes`.

    `batch` is (min, opt, max) of the batch axis. Spatial axes of size-dynamic graphs: opt = `size` (default
    the graph's `default_size`), min = `min_size` (default opt / 4), max = `max_size` (default 2 x opt), all
    rounded up to `multiple` (the network stride). SAM's decoder: `prompts` and `points` are (min, opt, max)
    of the number of prompts per image and of points per prompt (a box counts as 2 points; profiles too small
    for multi-box prompts were mit-han-lab/efficientvit#75).
    """
    opt_size = size or graph.default_size
    lo = min_size or (opt_size[0] // 4, opt_size[1] // 4)
    hi = max_size or (opt_size[0] * 2, opt_size[1] * 2)
    sample = graph.sample_inputs(batch[1], None if graph.fixed_size else tuple(opt_size))
    shapes: ProfileShapes = {}
    for name, tensor in zip(graph.input_names, sample):
        axes = graph.dynamic_axes.get(name, {})
        low, opt, high = list(tensor.shape), list(tensor.shape), list(tensor.shape)
        for axis, label in axes.items():
            if "batch" in label and "point" not in label:
                low[axis], opt[axis], high[axis] = batch
            elif label == "point_batch_size":
                low[axis], opt[axis], high[axis] = prompts
            elif label == "num_points":
                low[axis], opt[axis], high[axis] = points
            elif label in ("height", "width"):
                index = 0 if label == "height" else 1
                low[axis] = _round(lo[index], multiple)
                opt[axis] = _round(opt_size[index], multiple)
                high[axis] = _round(hi[index], multiple)
            else:
                raise ValueError(f"No profile rule for dynamic axis {label!r} of input {name!r}.")
        if not all(a <= b <= c for a, b, c in zip(low, opt, high)):
            raise ValueError(f"Profile of {name!r} is not ordered: min {low}, opt {opt}, max {high}.")
        shapes[name] = (tuple(low), tuple(opt), tuple(high))
    return shapes


def onnx_input_shapes(model, max_batch: int = 8) -> ProfileShapes:
    """Profile shapes of an ONNX file whose only dynamic axes are batch axes (dim params containing "batch"):
    (1, 1, `max_batch`). Other dynamic axes need explicit `shapes` (see `profile_shapes`)."""
    graph = _load(model).graph
    initializers = {t.name for t in graph.initializer}
    shapes: ProfileShapes = {}
    for value in graph.input:
        if value.name in initializers:
            continue
        low, opt, high = [], [], []
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_value") and dim.dim_value > 0:
                triple = (dim.dim_value,) * 3
            elif "batch" in dim.dim_param and "point" not in dim.dim_param:
                triple = (1, 1, max_batch)
            else:
                raise ValueError(f"Input {value.name!r} has the dynamic axis {dim.dim_param or '?'!r}: pass "
                                 f"shapes={{name: (min, opt, max)}} (e.g. from tensorrt.profile_shapes(graph)).")
            for values, dim_size in zip((low, opt, high), triple):
                values.append(dim_size)
        shapes[value.name] = (tuple(low), tuple(opt), tuple(high))
    return shapes


# ------------------------------------------------------------------------------------------ engine building
def _torch_dtype(trt, dtype):
    import torch

    table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32, trt.int8: torch.int8,
             trt.bool: torch.bool, trt.uint8: torch.uint8}
    for attribute, value in (("int64", torch.int64), ("bf16", torch.bfloat16)):
        if hasattr(trt, attribute):
            table[getattr(trt, attribute)] = value
    if dtype not in table:
        raise TypeError(f"TensorRT dtype {dtype} has no torch equivalent.")
    return table[dtype]


def _make_calibrator(trt, batches: Sequence[Mapping[str, Any]], cache_path: Path | None):
    """A legacy entropy calibrator (implicit INT8) feeding `batches` (dicts of input name -> array / tensor)
    as torch CUDA tensors."""
    import numpy as np
    import torch

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.batches = list(batches)
            self.index = 0
            self.current: dict[str, torch.Tensor] = {}  # keeps the device buffers alive during a step
            first = next(iter(self.batches[0].values()))
            self.batch_size = int(first.shape[0])

        def get_batch_size(self) -> int:
            return self.batch_size

        def get_batch(self, names):
            if self.index >= len(self.batches):
                return None
            batch = self.batches[self.index]
            self.index += 1
            self.current = {}
            for name in names:
                value = batch[name]
                value = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.asarray(value))
                if value.is_floating_point():
                    value = value.float()
                self.current[name] = value.to("cuda").contiguous()
            return [int(self.current[name].data_ptr()) for name in names]

        def read_calibration_cache(self):
            if cache_path is not None and cache_path.exists():
                return cache_path.read_bytes()
            return None

        def write_calibration_cache(self, cache) -> None:
            if cache_path is not None:
                cache_path.write_bytes(bytes(cache))

    return EntropyCalibrator()


def _pin_layers(trt, network, nodes: Sequence[str], scopes: Sequence[str]) -> list[str]:
    """Set precision and output types of the matching float layers of `network` to fp32; returns their names."""
    node_set = frozenset(nodes)
    prefixes = _prefix_pattern(node_set)
    pinned_types = {trt.LayerType.NORMALIZATION, trt.LayerType.SOFTMAX, trt.LayerType.REDUCE}
    # Constants are pinned when they match (LiteMLA's eps = 1e-15 is 0 in fp16); shape layers never are.
    skipped_types = {trt.LayerType.SHAPE, trt.LayerType.ASSERTION}
    for attribute in ("QUANTIZE", "DEQUANTIZE", "DYNAMIC_QUANTIZE"):
        if hasattr(trt.LayerType, attribute):
            skipped_types.add(getattr(trt.LayerType, attribute))
    float_types = {trt.float32, trt.float16}
    pinned = []
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        if layer.type in skipped_types:
            continue
        outputs = [layer.get_output(i) for i in range(layer.num_outputs)]
        if not outputs or any(out.dtype not in float_types for out in outputs):
            continue  # integer / boolean layers (shape arithmetic, comparisons) have no fp32 to keep
        is_div = False
        if layer.type == trt.LayerType.ELEMENTWISE:
            layer.__class__ = trt.IElementWiseLayer  # get_layer returns the base ILayer: downcast to read `op`
            is_div = layer.op == trt.ElementWiseOperation.DIV
        if not (layer.type in pinned_types or is_div or _layer_matches(layer.name, node_set, prefixes, scopes)):
            continue
        layer.precision = trt.float32
        for i in range(layer.num_outputs):
            layer.set_output_type(i, trt.float32)
        pinned.append(layer.name)
    return pinned


@dataclass
class EngineBuild:
    """A built engine: its file, precision, the layers pinned to fp32 and the build time."""

    path: Path
    precision: str
    pinned_layers: list[str] = field(default_factory=list)
    explicit_int8: bool = False
    seconds: float = 0.0

    def __fspath__(self) -> str:
        return os.fspath(self.path)


def build_engine(
    onnx_path: str | Path,
    engine_path: str | Path,
    precision: str = "fp16",
    fp32_scopes: Sequence[str] = DEFAULT_FP32_SCOPES,
    shapes: Mapping[str, tuple[Shape, Shape, Shape]] | None = None,
    calibration_inputs: Iterable[Mapping[str, Any]] | None = None,
    workspace_gb: float = 4.0,
    timing_cache: str | Path | None = None,
    calibration_cache: str | Path | None = None,
    tf32: bool = False,
    verbose: bool = False,
) -> EngineBuild:
    """Build a serialized TensorRT engine from `onnx_path` into `engine_path`.

    `precision`: "fp32", "fp16" (fp32 pins) or "int8" (explicit QDQ when the file has Q/DQ nodes, else the
    legacy entropy calibrator over `calibration_inputs`, both with fp16 allowed for the unquantized layers
    and the fp32 pins). `fp32_scopes`: the graph's `ExportGraph.fp32_scopes` (the default covers every task).
    `shapes`: {input: (min, opt, max)} for the optimisation profile (see `profile_shapes`); by default only
    batch axes may be dynamic (1 ... 8). `timing_cache`: a file read if present and written after the build
    (rebuilds get faster). `tf32=False` keeps fp32 layers in true fp32 on Ampere and newer GPUs.
    Returns an `EngineBuild` (usable as a path: `TensorRTRunner(build)`), with the fp32-pinned layers.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}.")
    trt = _require_tensorrt()
    start = time.perf_counter()
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):  # from a file, so external data next to it is found
        errors = "\n".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}:\n{errors}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    if not tf32:
        config.clear_flag(trt.BuilderFlag.TF32)

    profile_shapes_ = dict(shapes) if shapes is not None else onnx_input_shapes(onnx_path)
    profile = builder.create_optimization_profile()
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        if tensor.name not in profile_shapes_:
            if any(d < 0 for d in tensor.shape):
                raise ValueError(f"No profile shapes for the dynamic input {tensor.name!r} {tuple(tensor.shape)}.")
            static = tuple(tensor.shape)
            profile_shapes_[tensor.name] = (static, static, static)
        low, opt, high = (tuple(int(d) for d in s) for s in profile_shapes_[tensor.name])
        profile.set_shape(tensor.name, low, opt, high)
    config.add_optimization_profile(profile)

    explicit_int8 = has_qdq(onnx_path)
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        if not explicit_int8:
            if calibration_inputs is None:
                raise ValueError("precision='int8' needs a QDQ ONNX file (quantize.quantize_static_int8) or "
                                 "calibration_inputs for the legacy calibrator.")
            batches = list(calibration_inputs)
            if not batches:
                raise ValueError("calibration_inputs is empty.")
            config.int8_calibrator = _make_calibrator(
                trt, batches, Path(calibration_cache) if calibration_cache else None)
            config.set_calibration_profile(profile)
    elif explicit_int8:
        raise ValueError(f"{onnx_path.name} holds QuantizeLinear / DequantizeLinear nodes: build it with "
                         f"precision='int8' (or build the fp32 export).")

    pinned: list[str] = []
    if precision != "fp32":
        nodes = fp32_node_names(onnx_path, fp32_scopes)
        pinned = _pin_layers(trt, network, nodes, fp32_scopes)
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)

    cache = None
    if timing_cache is not None:
        timing_cache = Path(timing_cache)
        cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.exists() else b"")
        config.set_timing_cache(cache, ignore_mismatch=False)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path} ({precision}); rerun with "
                           f"verbose=True for the builder log.")
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    engine_path.write_bytes(bytes(serialized))
    if timing_cache is not None:
        timing_cache.parent.mkdir(parents=True, exist_ok=True)
        timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
    return EngineBuild(engine_path, precision, pinned, explicit_int8, time.perf_counter() - start)


# ------------------------------------------------------------------------------------------------- running
class TensorRTRunner:
    """Runs a serialized engine on torch CUDA tensors (TensorRT 10 name-based I/O).

    `runner(pixel_values=tensor)` or `runner({"pixel_values": tensor})` returns {output name: CUDA tensor};
    inputs are moved to the GPU and cast to the engine's input dtypes, dynamic shapes are set per call.
    """

    def __init__(self, engine_path: str | Path | EngineBuild, device: int | None = None) -> None:
        import torch

        trt = _require_tensorrt()
        self.trt, self.torch = trt, torch
        self.device = torch.device("cuda", torch.cuda.current_device() if device is None else device)
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(Path(os.fspath(engine_path)).read_bytes())
        if self.engine is None:
            raise RuntimeError(f"Could not deserialize {engine_path} (built by another TensorRT version or GPU?).")
        self.context = self.engine.create_execution_context()
        self.input_names, self.output_names = [], []
        for index in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(index)
            if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                self.input_names.append(name)
            else:
                self.output_names.append(name)

    def __call__(self, inputs: Mapping[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        torch = self.torch
        feeds = {**(inputs or {}), **kwargs}
        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise ValueError(f"Missing engine inputs: {missing} (the engine takes {self.input_names}).")
        keep = []  # device buffers referenced by the context until the stream is done
        stream = torch.cuda.current_stream(self.device)
        for name in self.input_names:
            value = feeds[name]
            value = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
            dtype = _torch_dtype(self.trt, self.engine.get_tensor_dtype(name))
            value = value.to(device=self.device, dtype=dtype).contiguous()
            keep.append(value)
            if not self.context.set_input_shape(name, tuple(value.shape)):
                raise ValueError(f"Input {name!r} of shape {tuple(value.shape)} is outside the engine's profile "
                                 f"{self.engine.get_tensor_profile_shape(name, 0)}.")
            self.context.set_tensor_address(name, value.data_ptr())
        unresolved = self.context.infer_shapes()
        if unresolved:
            raise RuntimeError(f"TensorRT could not infer the shapes of {unresolved}.")
        outputs = {}
        for name in self.output_names:
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = _torch_dtype(self.trt, self.engine.get_tensor_dtype(name))
            outputs[name] = torch.empty(shape, dtype=dtype, device=self.device)
            self.context.set_tensor_address(name, outputs[name].data_ptr())
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execution failed (execute_async_v3 returned False).")
        stream.synchronize()
        del keep
        return outputs


# --------------------------------------------------------------------------------------- ONNX Runtime + TRT
def ort_tensorrt_session(
    onnx_path: str | Path,
    fp16: bool = True,
    cache_dir: str | Path | None = None,
    shapes: Mapping[str, tuple[Shape, Shape, Shape]] | None = None,
    workspace_gb: float = 4.0,
    device_id: int = 0,
    int8: bool = False,
):
    """An ONNX Runtime session on the TensorrtExecutionProvider (CUDA, then CPU, for unsupported nodes).

    fp16 runs with `trt_layer_norm_fp32_fallback` (LayerNorm in fp32, the maintainers' fix for SAM encoders);
    the provider cannot pin other layers, so LiteMLA may run in fp16 here: compare with `build_engine` when
    accuracy matters. `cache_dir` keeps engines and timing caches between sessions (the first build takes
    minutes). `shapes`: {input: (min, opt, max)} profiles for dynamic axes. `int8` uses the Q/DQ nodes of a
    `quantize_static_int8` file. Raises `TensorRTUnavailableError` without the provider (needs
    `pip install onnxruntime-gpu` and the TensorRT libraries).
    """
    import onnxruntime as ort

    available = ort.get_available_providers()
    if "TensorrtExecutionProvider" not in available:
        raise TensorRTUnavailableError(
            "ONNX Runtime has no TensorrtExecutionProvider (available: " + ", ".join(available) + "); install "
            "onnxruntime-gpu with the TensorRT libraries (pip install onnxruntime-gpu tensorrt) on an NVIDIA GPU."
        )
    options: dict[str, Any] = {
        "device_id": device_id,
        "trt_fp16_enable": bool(fp16),
        "trt_layer_norm_fp32_fallback": bool(fp16),
        "trt_int8_enable": bool(int8),
        "trt_max_workspace_size": int(workspace_gb * (1 << 30)),
    }
    if cache_dir is not None:
        cache_dir = Path(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
        options.update({"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache_dir),
                        "trt_timing_cache_enable": True, "trt_timing_cache_path": str(cache_dir)})
    if shapes:
        for key, index in (("trt_profile_min_shapes", 0), ("trt_profile_opt_shapes", 1),
                           ("trt_profile_max_shapes", 2)):
            options[key] = ",".join(f"{name}:{'x'.join(str(d) for d in s[index])}" for name, s in shapes.items())
    providers = [("TensorrtExecutionProvider", options)]
    if "CUDAExecutionProvider" in available:
        providers.append(("CUDAExecutionProvider", {"device_id": device_id}))
    providers.append("CPUExecutionProvider")
    return ort.InferenceSession(str(onnx_path), providers=providers)


__all__ = [
    "ALWAYS_FP32_OPS",
    "EngineBuild",
    "PRECISIONS",
    "TensorRTRunner",
    "TensorRTUnavailableError",
    "build_engine",
    "fp32_node_names",
    "has_qdq",
    "onnx_input_shapes",
    "ort_tensorrt_session",
    "profile_shapes",
    "tensorrt_available",
]
