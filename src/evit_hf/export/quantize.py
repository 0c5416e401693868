"""ONNX Runtime INT8 quantization of exported EfficientViT graphs, with LiteMLA kept in fp32.

Two recipes, both on a file written by `export_onnx`:

- `quantize_dynamic_int8`: int8 weights, activations quantized on the fly per batch. No calibration data.
  By default only `MatMul` / `Gemm` (the classifier head, SAM decoder projections) are quantized: ORT's
  dynamic `ConvInteger` path is slower than its fp32 convolutions on x86 CPUs (measured in the module's
  tests and the export report), and convolutions are nearly all of EfficientViT's compute. Pass
  `op_types=("MatMul", "Gemm", "Conv")` to quantize convolutions too (smaller file, slower).
- `quantize_static_int8`: QDQ format, per-channel int8 weights and calibrated 8-bit activations. ORT's CPU
  execution provider fuses the QDQ pairs into `QLinearConv` / `QLinearMatMul`; TensorRT reads the same file
  as an explicitly quantized network (`tensorrt.build_engine(..., precision="int8")`).

Every node whose name contains one of the `fp32_scopes` (the `ExportGraph.fp32_scopes` of the task:
`"attention"` for LiteMLA, `"norm"`, ...) is excluded, so the ReLU linear attention (its MatMuls, the key
sum and the division by `denominator + eps`) stays fp32, as in PyTorch.

`calibration_inputs_from_images` builds real calibration data from a folder of images with the model's image
processor; `calibration_inputs_from_graph` uses `ExportGraph.sample_inputs`, which are *random noise*: use
them only for smoke tests, never to quantize a model you ship. `accuracy_delta` compares an int8 file with
its fp32 source (max / mean absolute difference, relative error, argmax agreement of class logits).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .onnx import ort_session

# Union of the fp32 scopes of every task in `specs.export_graphs` (LiteMLA blocks, SAM's LayerNorms and the
# mask decoder's attention / softmax): a scope absent from a graph matches nothing.
DEFAULT_FP32_SCOPES: tuple[str, ...] = ("attention", "norm", "attn", "layer_norm", "softmax")
DYNAMIC_OP_TYPES: tuple[str, ...] = ("MatMul", "Gemm")
STATIC_OP_TYPES: tuple[str, ...] = ("Conv", "MatMul", "Gemm")
# Outputs whose axis 1 is a class axis: their argmax agreement is reported.
CLASS_LOGITS: dict[str, int] = {"logits": 1}
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
_CALIBRATION_METHODS = ("minmax", "entropy", "percentile", "distribution")

Feeds = Mapping[str, Any]


# --------------------------------------------------------------------------------------------- node selection
def _load(model) -> Any:
    import onnx

    if isinstance(model, str | Path):
        return onnx.load(str(model), load_external_data=False)
    return model


def nodes_in_scopes(model, scopes: Sequence[str], op_types: Sequence[str] | None = None) -> list[str]:
    """Names of the nodes of `model` (an ONNX file or `ModelProto`) whose name contains one of `scopes`,
    optionally only those of `op_types`, in graph order. Subgraphs (If / Loop bodies) are included."""
    scopes = [s for s in scopes if s]
    names: list[str] = []

    def visit(graph) -> None:
        for node in graph.node:
            if node.name and any(s in node.name for s in scopes) and (op_types is None or node.op_type in op_types):
                names.append(node.name)
            for attribute in node.attribute:
                if attribute.g.node:
                    visit(attribute.g)
                for sub in attribute.graphs:
                    visit(sub)

    visit(_load(model).graph)
    return names


def upsampling_convs(model) -> list[str]:
    """Conv nodes whose output feeds a `DepthToSpace`: the exact bicubic upsampling of segmentation heads
    (exported as conv + DepthToSpace) and pixel-shuffle reconstructions. Quantizing the bicubic kernel took the
    seg-b0 pixel agreement from 0.88 to 0.53 (128x256, random weights), so these stay fp32 by default."""
    graph = _load(model).graph
    feeds_depth_to_space = {name for node in graph.node if node.op_type == "DepthToSpace" for name in node.input}
    return [n.name for n in graph.node if n.op_type == "Conv" and any(o in feeds_depth_to_space for o in n.output)]


def _excluded(model, fp32_scopes: Sequence[str], keep_upsampling_fp32: bool) -> list[str]:
    model = _load(model)
    names = nodes_in_scopes(model, fp32_scopes)
    if keep_upsampling_fp32:
        names += [n for n in upsampling_convs(model) if n not in names]
    return names


def quantized_consumers(model, scopes: Sequence[str], op_types: Sequence[str] = ("MatMul", "Div")) -> list[str]:
    """Nodes in `scopes` (of `op_types`) that read an int8 value: the output of a `QuantizeLinear`,
    `DynamicQuantizeLinear` or `DequantizeLinear` node, or an integer-arithmetic node. Empty when the fp32
    scopes were respected (the check of the tests)."""
    graph = _load(model).graph
    int8_ops = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger",
                "QLinearMatMul", "QLinearConv"}
    producer = {out: node for node in graph.node for out in node.output}
    bad = []
    for node in graph.node:
        if node.op_type not in op_types or not any(s in node.name for s in scopes):
            continue
        if node.op_type in int8_ops or any(
            producer.get(name) is not None and producer[name].op_type in int8_ops for name in node.input
        ):
            bad.append(node.name)
    # An integer node (ConvInteger / MatMulInteger / QLinear*) in a scope is a quantized scope node too.
    bad += [n.name for n in graph.node if n.op_type in int8_ops and any(s in n.name for s in scopes)
            and n.op_type not in ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear")]
    return bad


# ----------------------------------------------------------------------------------------- calibration data
def _as_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # torch.Tensor
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    return array.astype(np.float32) if array.dtype in (np.float64, np.float16) else array


def _feeds(batch: Feeds) -> dict[str, np.ndarray]:
    return {name: _as_numpy(value) for name, value in batch.items()}


class IterableCalibrationReader:
    """An ONNX Runtime `CalibrationDataReader` over an iterable of feeds (dicts of input name -> array or
    torch tensor), materialised once so that it can be rewound (`rewind`) by calibrators that read twice."""

    def __init__(self, inputs: Iterable[Feeds], limit: int | None = None) -> None:
        self.batches: list[dict[str, np.ndarray]] = []
        for batch in inputs:
            if limit is not None and len(self.batches) >= limit:
                break
            self.batches.append(_feeds(batch))
        if not self.batches:
            raise ValueError("No calibration inputs: pass at least one dict of input name -> array.")
        self._iterator: Iterator[dict[str, np.ndarray]] = iter(self.batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._iterator, None)

    def rewind(self) -> None:
        self._iterator = iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def _calibration_reader(inputs: Iterable[Feeds], limit: int | None):
    from onnxruntime.quantization import CalibrationDataReader

    reader = IterableCalibrationReader(inputs, limit)

    class Reader(CalibrationDataReader):
        def get_next(self):
            return reader.get_next()

        def rewind(self):
            reader.rewind()

        def __len__(self):
            return len(reader)

    return Reader()


def calibration_inputs_from_images(
    folder: str | Path,
    image_processor,
    input_name: str = "pixel_values",
    batch_size: int = 1,
    limit: int | None = None,
    extensions: Sequence[str] = _IMAGE_EXTENSIONS,
    max_size: tuple[int, int] | None = None,
    **processor_kwargs: Any,
) -> Iterator[dict[str, np.ndarray]]:
    """Calibration feeds from the images of `folder` (recursively, sorted), preprocessed by `image_processor`
    (the model's own, e.g. `EfficientViTSegImageProcessor`; `processor_kwargs` such as `size=` go to its
    call). Yields `{input_name: float32 array (batch, 3, H, W)}`; at most `limit` images. Use a few hundred
    images of the deployment distribution for a model you ship.

    `max_size` (height, width) center-crops larger images first, for processors that keep the input size
    (super-resolution): cropping keeps the pixel statistics the activation ranges come from, and a
    full-resolution photograph through a stride-1 network needs gigabytes of activations."""
    from PIL import Image

    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in extensions)
    if limit is not None:
        files = files[:limit]
    if not files:
        raise FileNotFoundError(f"No images ({', '.join(extensions)}) under {folder}.")
    for start in range(0, len(files), batch_size):
        images = [_center_crop(Image.open(p).convert("RGB"), max_size) for p in files[start:start + batch_size]]
        pixels = image_processor(images=images, return_tensors="np", **processor_kwargs)["pixel_values"]
        yield {input_name: np.asarray(pixels, dtype=np.float32)}


def _center_crop(image, max_size: tuple[int, int] | None):
    if max_size is None:
        return image
    height, width = min(image.height, max_size[0]), min(image.width, max_size[1])
    top, left = (image.height - height) // 2, (image.width - width) // 2
    return image.crop((left, top, left + width, top + height))


def calibration_inputs_from_graph(graph, batches: int = 4, batch_size: int = 1,
                                  size: tuple[int, int] | None = None) -> list[dict[str, np.ndarray]]:
    """`batches` feeds from `ExportGraph.sample_inputs` (different seeds per batch size only, so the batch
    index is mixed into the size-independent noise here).

    RANDOM NOISE: only for smoke tests of the quantization pipeline. Activation ranges calibrated on noise
    are not those of real images; quantize a model you ship with `calibration_inputs_from_images`.
    """
    import torch

    feeds = []
    for index in range(batches):
        inputs = graph.sample_inputs(batch_size, size)
        generator = torch.Generator().manual_seed(index)
        inputs = tuple(t + 0.1 * index * torch.randn(t.shape, generator=generator) if t.is_floating_point()
                       and graph.name != "prompt_encoder_mask_decoder" else t for t in inputs)
        feeds.append({name: _as_numpy(t) for name, t in zip(graph.input_names, inputs)})
    return feeds


# --------------------------------------------------------------------------------------------- quantization
@dataclass
class QuantizationResult:
    """What a quantization wrote: the file, the fp32-pinned (excluded) nodes and sizes."""

    path: Path
    mode: str  # "dynamic" or "static"
    op_types: list[str]
    excluded_nodes: list[str]
    fp32_bytes: int
    int8_bytes: int
    seconds: float
    preprocessed: bool = False
    calibration_batches: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def compression(self) -> float:
        return self.fp32_bytes / max(self.int8_bytes, 1)


def _file_bytes(path: Path) -> int:
    """Size of an ONNX file with its external data files, if any."""
    total = path.stat().st_size
    data = path.with_name(path.name + ".data")
    return total + (data.stat().st_size if data.exists() else 0)


def _preprocess(onnx_path: Path, work: Path) -> Path:
    """`quant_pre_process` (symbolic shape inference + ORT's basic graph optimisation) into `work`."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = work / "preprocessed.onnx"
    large = _file_bytes(onnx_path) > 1_800_000_000
    quant_pre_process(str(onnx_path), str(out), skip_symbolic_shape=True, save_as_external_data=large,
                      all_tensors_to_one_file=True)
    return out


def _quant_type(name: str | Any):
    from onnxruntime.quantization import QuantType

    if not isinstance(name, str):
        return name
    return {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}[name.lower()]


def quantize_dynamic_int8(
    onnx_path: str | Path,
    out_path: str | Path,
    fp32_scopes: Sequence[str] = DEFAULT_FP32_SCOPES,
    op_types: Sequence[str] = DYNAMIC_OP_TYPES,
    per_channel: bool = False,
    reduce_range: bool = False,
    preprocess: bool = False,
    keep_upsampling_fp32: bool = True,
) -> QuantizationResult:
    """Dynamic INT8 quantization (int8 weights, activation scales computed at run time) of `onnx_path` into
    `out_path`, excluding every node in `fp32_scopes` (and, with `keep_upsampling_fp32`, the `upsampling_convs`).
    `preprocess` runs `quant_pre_process` first (off by
    default: it did not change the dynamic result measurably on these graphs)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    onnx_path, out_path = Path(onnx_path), Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        source = _preprocess(onnx_path, Path(work)) if preprocess else onnx_path
        excluded = _excluded(source, fp32_scopes, keep_upsampling_fp32)
        quantize_dynamic(
            str(source), str(out_path), op_types_to_quantize=list(op_types), per_channel=per_channel,
            reduce_range=reduce_range, weight_type=QuantType.QInt8, nodes_to_exclude=excluded,
            use_external_data_format=_file_bytes(source) > 1_800_000_000,
            extra_options={"MatMulConstBOnly": True},
        )
    return QuantizationResult(out_path, "dynamic", list(op_types), excluded, _file_bytes(onnx_path),
                              _file_bytes(out_path), time.perf_counter() - start, preprocess)


def quantize_static_int8(
    onnx_path: str | Path,
    out_path: str | Path,
    calibration_inputs: Iterable[Feeds],
    fp32_scopes: Sequence[str] = DEFAULT_FP32_SCOPES,
    op_types: Sequence[str] = STATIC_OP_TYPES,
    per_channel: bool = True,
    reduce_range: bool | None = None,
    activation_type: str | None = None,
    target: str = "cpu",
    calibration_method: str = "minmax",
    max_batches: int | None = None,
    preprocess: bool = True,
    keep_upsampling_fp32: bool = True,
) -> QuantizationResult:
    """Static INT8 quantization in QDQ format of `onnx_path` into `out_path`.

    `calibration_inputs`: an iterable of feeds, dicts of input name -> array / torch tensor (at most
    `max_batches` are used); see `calibration_inputs_from_images`. Weights are int8 per output channel,
    activations per tensor. `target="cpu"` (ONNX Runtime): uint8 activations and 7-bit weights
    (`reduce_range`, against U8S8 saturation on x86 CPUs without VNNI), the most accurate and fastest setting
    measured on seg-b0; `target="tensorrt"`: symmetric int8 activations, as TensorRT's explicit quantization
    requires (`tensorrt.build_engine(..., precision="int8")`). `activation_type` / `reduce_range` override.
    `calibration_method`: "minmax" (default; memory-light), "entropy", "percentile" or
    "distribution" (histograms: more memory). Every node in `fp32_scopes` is excluded, so LiteMLA's attention
    runs in fp32 between DequantizeLinear / QuantizeLinear pairs; with `keep_upsampling_fp32` so do the
    `upsampling_convs` (bicubic as conv). `preprocess` runs `quant_pre_process` first (ONNX shape inference and
    ORT's graph optimisation; on seg-b0 it cut the error of int8 activations 4x, uint8 ones were unchanged).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, quantize_static

    if target not in ("cpu", "tensorrt"):
        raise ValueError(f"target must be 'cpu' or 'tensorrt', not {target!r}.")
    tensorrt = target == "tensorrt"
    activation_type = activation_type or ("int8" if tensorrt else "uint8")
    reduce_range = (not tensorrt) if reduce_range is None else reduce_range
    if calibration_method not in _CALIBRATION_METHODS:
        raise ValueError(f"calibration_method must be one of {_CALIBRATION_METHODS}, not {calibration_method!r}.")
    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile, "distribution": CalibrationMethod.Distribution}
    onnx_path, out_path = Path(onnx_path), Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    reader = _calibration_reader(calibration_inputs, max_batches)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        source = _preprocess(onnx_path, Path(work)) if preprocess else onnx_path
        excluded = _excluded(source, fp32_scopes, keep_upsampling_fp32)
        quantize_static(
            str(source), str(out_path), reader, quant_format=QuantFormat.QDQ, op_types_to_quantize=list(op_types),
            per_channel=per_channel, reduce_range=reduce_range, activation_type=_quant_type(activation_type),
            weight_type=_quant_type("int8"), nodes_to_exclude=excluded, calibrate_method=method[calibration_method],
            use_external_data_format=_file_bytes(source) > 1_800_000_000,
            extra_options={"ActivationSymmetric": tensorrt, "WeightSymmetric": True},
        )
    return QuantizationResult(out_path, "static", list(op_types), excluded, _file_bytes(onnx_path),
                              _file_bytes(out_path), time.perf_counter() - start, preprocess, len(reader))


# ----------------------------------------------------------------------------------------------- accuracy
@dataclass
class OutputDelta:
    """The difference of one output between the fp32 and the int8 model, over all the inputs."""

    name: str
    max_abs_diff: float
    mean_abs_diff: float
    relative_error: float  # ||int8 - fp32|| / ||fp32|| (L2 over all elements)
    argmax_agreement: float | None = None  # fraction of equal argmax over the class axis (top-1 / pixels)
    nan: bool = False

    def __str__(self) -> str:
        text = (f"{self.name}: max |d| {self.max_abs_diff:.4g}, mean |d| {self.mean_abs_diff:.4g}, "
                f"rel {self.relative_error:.4g}")
        if self.argmax_agreement is not None:
            text += f", argmax agreement {self.argmax_agreement:.4f}"
        return text + (", NaN in int8 output" if self.nan else "")


@dataclass
class AccuracyDelta:
    outputs: dict[str, OutputDelta]
    batches: int

    def __getitem__(self, name: str) -> OutputDelta:
        return self.outputs[name]

    def __str__(self) -> str:
        return "; ".join(str(d) for d in self.outputs.values())


def accuracy_delta(
    fp32_path: str | Path,
    int8_path: str | Path,
    inputs: Feeds | Iterable[Feeds],
    class_axes: Mapping[str, int] | None = None,
    threads: int | None = None,
) -> AccuracyDelta:
    """Run the fp32 and the int8 model on `inputs` (one feed dict or an iterable of them) in ONNX Runtime
    (CPU) and compare every output. `class_axes` maps output names to their class axis (default: `logits`
    on axis 1), for which the argmax agreement is reported: top-1 agreement for classification logits
    (batch, classes), pixel agreement for segmentation logits (batch, classes, H, W)."""
    class_axes = dict(CLASS_LOGITS if class_axes is None else class_axes)
    reference, quantized = ort_session(fp32_path, threads), ort_session(int8_path, threads)
    names = [o.name for o in reference.get_outputs()]
    batches = [inputs] if isinstance(inputs, Mapping) else list(inputs)
    sums: dict[str, dict[str, float]] = {n: dict.fromkeys(("max", "abs", "count", "err2", "ref2", "agree",
                                                           "pixels", "nan"), 0.0) for n in names}
    for batch in batches:
        feeds = _feeds(batch)
        for name, ref, out in zip(names, reference.run(names, feeds), quantized.run(names, feeds)):
            ref, out = ref.astype(np.float64), out.astype(np.float64)
            stats = sums[name]
            if np.isnan(out).any():
                stats["nan"] = 1.0
            diff = np.abs(out - ref)
            stats["max"] = max(stats["max"], float(np.nanmax(diff, initial=0.0)))
            stats["abs"] += float(np.nansum(diff))
            stats["count"] += diff.size
            stats["err2"] += float(np.nansum(diff**2))
            stats["ref2"] += float(np.sum(ref**2))
            axis = class_axes.get(name)
            if axis is not None and ref.ndim > axis and ref.shape[axis] > 1:
                agree = np.argmax(ref, axis=axis) == np.argmax(out, axis=axis)
                stats["agree"] += float(agree.sum())
                stats["pixels"] += agree.size
    outputs = {}
    for name, s in sums.items():
        outputs[name] = OutputDelta(
            name, s["max"], s["abs"] / max(s["count"], 1.0), float(np.sqrt(s["err2"] / max(s["ref2"], 1e-30))),
            s["agree"] / s["pixels"] if s["pixels"] else None, bool(s["nan"]),
        )
    return AccuracyDelta(outputs, len(batches))


__all__ = [
    "DEFAULT_FP32_SCOPES",
    "DYNAMIC_OP_TYPES",
    "STATIC_OP_TYPES",
    "AccuracyDelta",
    "IterableCalibrationReader",
    "OutputDelta",
    "QuantizationResult",
    "accuracy_delta",
    "calibration_inputs_from_graph",
    "calibration_inputs_from_images",
    "nodes_in_scopes",
    "quantize_dynamic_int8",
    "quantize_static_int8",
    "quantized_consumers",
    "upsampling_convs",
]
