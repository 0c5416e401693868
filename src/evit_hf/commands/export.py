"""`evit-hf export`: ONNX (torch.onnx or Optimum), TFLite (LiteRT) and TensorRT exports, each validated against
PyTorch, plus ONNX Runtime INT8 quantization with its accuracy delta."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from . import add_command

FORMATS = ("onnx", "tflite", "tensorrt")
SUMMARY = "Export a model to ONNX, TFLite or TensorRT (validated against PyTorch)."
DESCRIPTION = (
    "Export a model (a released model's name, a folder, a Hub id, or random:PRESET) for a task. ONNX graphs have "
    "dynamic batch, height and width (SAM: dynamic batch and number of prompts/points); every file is run and "
    "compared with PyTorch, and a difference above --atol fails the export."
)


def _size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH, e.g. 512x1024, got {text!r}") from err
    return height, width


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..export.specs import TASKS

    parser = add_command(subparsers, "export", run, SUMMARY, DESCRIPTION)
    parser.add_argument("--format", choices=FORMATS, default="onnx", help="output format (default onnx)")
    parser.add_argument("--model", required=True,
                        help="released model (efficientvit-b1-r224, seg-b1-cityscapes, ...; `evit-hf models`), folder, "
                        "Hub id, or random:PRESET (random weights)")
    parser.add_argument("--task", choices=["auto", *TASKS], default="auto", help="default: from the model")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--size", type=_size, help="sample input HEIGHTxWIDTH (TFLite/TensorRT: the built size)")
    parser.add_argument("--opset", type=int, help="ONNX opset (default 20)")
    parser.add_argument("--atol", type=float, help="validation tolerance (default 1e-4; fp16 engines 5e-2)")
    parser.add_argument("--backend", choices=["torch", "optimum"], default="torch",
                        help="onnx: torch.onnx (default) or Optimum's exporter (needs optimum-onnx, transformers<4.58)")
    parser.add_argument("--quantize", choices=["dynamic", "static"],
                        help="onnx: also write an ONNX Runtime INT8 model (*_int8.onnx) and report its accuracy delta")
    parser.add_argument("--calibration-images", type=Path,
                        help="--quantize static / TensorRT int8: folder of calibration images (default: random inputs)")
    parser.add_argument("--calibration-count", type=int, default=16, help="calibration inputs (default 16)")
    parser.add_argument("--precision", choices=["fp32", "fp16", "int8"], default="fp16",
                        help="tensorrt: engine precision; attention and norm layers stay fp32 (default fp16)")
    parser.add_argument("--resize", choices=["auto", "bicubic", "bilinear"], default="auto",
                        help="tflite: keep bicubic upsampling (auto: unless it fails to convert) or use bilinear")
    parser.add_argument("--no-validate", action="store_true", help="skip the comparison with PyTorch")


def _print_graphs(results) -> None:
    for result in results:
        size_mb = result.path.stat().st_size / 2**20 if result.path.exists() else float("nan")
        print(f"{result.path} ({size_mb:.1f} MB, {result.seconds:.1f} s)")
        for check in result.checks:
            print(f"  {check.inputs} -> {check.outputs}: max abs diff {check.max_abs_diff:.2e}")
        if getattr(result, "resize_delta", None) is not None:  # TFLite with bicubic swapped for bilinear
            print(f"  {result.resize_delta}")


def _save_processor(name: str, out: Path) -> None:
    """Copy the model's image processor beside the export, when its folder has one (pipelines and Optimum read
    it)."""
    from ..resolve import find_source

    where = find_source(name)  # already resolved by `load_model`: no second download or conversion
    source = Path(where.location) / "preprocessor_config.json"
    if where.kind == "folder" and source.is_file():
        shutil.copy(source, out / source.name)


def run(args: argparse.Namespace) -> int:
    from ..resolve import load_model

    # `random:` presets get the deterministic `randomize_` weights: the default init's near-constant outputs
    # would hide a wrong export from the validation.
    model, _, task = load_model(args.model, None if args.task == "auto" else args.task, seed=0)
    args.out.mkdir(parents=True, exist_ok=True)
    kwargs = {"task": task, "size": args.size}
    if args.atol is not None:
        kwargs["atol"] = args.atol
    if args.format == "onnx":
        if args.backend == "optimum":
            from ..export.optimum import export_with_optimum

            results = export_with_optimum(model, args.out, opset=args.opset, validate=not args.no_validate, **kwargs)
        else:
            from ..export.onnx import export_onnx

            if args.opset:
                kwargs["opset"] = args.opset
            results = export_onnx(model, args.out, validate=not args.no_validate, **kwargs)
        _print_graphs(results)
        if args.quantize:
            _quantize(args, model, task, results)
    elif args.format == "tflite":
        from ..export.tflite import export_tflite

        _print_graphs(export_tflite(model, args.out, resize=args.resize, **kwargs))
    else:
        _tensorrt(args, model, kwargs)
    _save_processor(args.model, args.out)
    print(f"task {task}: export written to {args.out}")
    return 0


CALIBRATION_CROP = (256, 256)


def _calibration_inputs(args: argparse.Namespace, model, graph) -> list[dict]:
    """Calibration feeds from --calibration-images, or random inputs (smoke tests only) with a warning."""
    from ..export.quantize import calibration_inputs_from_graph, calibration_inputs_from_images

    if args.calibration_images is None:
        print("warning: no --calibration-images: calibrating on random inputs, which gives the speed but not the "
              "accuracy of a real INT8 model.", file=sys.stderr)
        return calibration_inputs_from_graph(graph, batches=args.calibration_count, size=args.size)
    if not args.calibration_images.is_dir():
        raise ValueError(f"--calibration-images {str(args.calibration_images)!r} is not a folder.")
    from ..resolve import load_processor

    processor = load_processor(args.model, model)
    if processor is None:
        raise ValueError("calibration images need the image processors of transformers >= 5.")
    # Processors that keep the input size (super-resolution) get center crops (--size, else 256x256).
    max_size = None if getattr(processor, "do_resize", True) else (args.size or CALIBRATION_CROP)
    feeds = list(calibration_inputs_from_images(args.calibration_images, processor, limit=args.calibration_count,
                                                max_size=max_size))
    if not feeds:
        raise ValueError(f"no images found in {str(args.calibration_images)!r}.")
    return feeds


def _quantize(args: argparse.Namespace, model, task: str, results) -> None:
    from ..export.quantize import accuracy_delta, quantize_dynamic_int8, quantize_static_int8
    from ..export.specs import export_graphs

    graphs = {g.name: g for g in export_graphs(model, task, args.size)}
    for result in results:
        graph = graphs[result.name]
        if graph.input_names != ["pixel_values"]:
            print(f"{result.path.name}: kept in fp32 (INT8 applies to the image graphs)")
            continue
        target = result.path.with_name(f"{result.path.stem}_int8.onnx")
        if args.quantize == "dynamic":
            quantized = quantize_dynamic_int8(result.path, target, fp32_scopes=graph.fp32_scopes)
            calibration = None
        else:
            calibration = _calibration_inputs(args, model, graph)
            quantized = quantize_static_int8(result.path, target, calibration, fp32_scopes=graph.fp32_scopes)
        inputs = calibration[:4] if calibration else [
            dict(zip(graph.input_names, (t.numpy() for t in graph.sample_inputs(1, args.size))))]
        delta = accuracy_delta(result.path, target, inputs)
        print(f"{target} ({quantized.int8_bytes / 2**20:.1f} MB, {quantized.compression:.1f}x smaller, INT8 "
              f"{args.quantize}, {len(quantized.excluded_nodes)} nodes kept in fp32): {delta}")


def _tensorrt(args: argparse.Namespace, model, kwargs: dict) -> None:
    from ..export.onnx import export_onnx
    from ..export.specs import export_graphs
    from ..export.tensorrt import build_engine, profile_shapes, tensorrt_available

    available, reason = tensorrt_available()
    if not available:
        raise ValueError(f"TensorRT export needs an NVIDIA GPU and TensorRT: {reason}")
    onnx_results = export_onnx(model, args.out, task=kwargs["task"], size=args.size, validate=not args.no_validate)
    graphs = {g.name: g for g in export_graphs(model, kwargs["task"], args.size)}
    for result in onnx_results:
        graph = graphs[result.name]
        engine = result.path.with_suffix(f".{args.precision}.engine")
        source = result.path
        if args.precision == "int8":  # explicit Q/DQ (TensorRT's implicit INT8 calibration is deprecated)
            from ..export.quantize import quantize_static_int8

            source = result.path.with_name(f"{result.path.stem}_qdq.onnx")
            quantize_static_int8(result.path, source, _calibration_inputs(args, model, graph),
                                 fp32_scopes=graph.fp32_scopes, target="tensorrt")
        build_engine(source, engine, precision=args.precision, fp32_scopes=graph.fp32_scopes,
                     shapes=profile_shapes(graph))
        print(f"{engine} ({engine.stat().st_size / 2**20:.1f} MB, {args.precision})")
