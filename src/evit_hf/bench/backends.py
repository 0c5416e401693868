"""`evit-hf bench backends`: one model on every available inference back end, and its peers, in one run.

For each case (a model at one input size) the rows are: our PyTorch eager graph (the reference row), the
plain op-by-op eager graph, `torch.compile` (back end `compile`, opt-in), ONNX Runtime fp32 (the `evit-hf export` graph)
and INT8 (static QDQ, calibrated on random inputs: its speed, not its accuracy), TFLite (when `litert-torch`
is installed), TensorRT (on a CUDA GPU with `tensorrt`), and the peer model of the task in PyTorch eager
(transformers' SegFormer, SAM ViT-B, Swin2SR, with random weights).

How it measures: random fan-in-scaled weights (the same for every back end of a case), batch `batch`, fp32
unless the row says otherwise; every back end gets two warm-up calls, then our back ends are timed in blocks,
two passes over all of them, each back end running back to back for its share of the budget (the first call
of each block, after the switch between thread pools, is not kept), so that a load change hits all of them
alike without one framework's spinning threads slowing the other's calls; the slow peers run after them,
one warm-up call and then until the budget is spent (at least one timed call).
`ratio` is the reference row's median / the row's median (above 1: faster than our PyTorch eager);
`max_abs_diff` compares the first output with the reference row's. `peak_mb` is the growth of the process's
peak resident memory (VmHWM, reset before each back end where Linux allows) over its resident memory before
that back end's preparation: activations, workspaces and, for converted back ends, their copy of the weights
and what conversion or INT8 calibration left in the (tuned, non-trimming) allocator.
"""

from __future__ import annotations

import copy
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..progress import track
from ..reference.peers import peer_model
from .core import current_rss_bytes, environment, gmacs, markdown_table, p90, time_callable

BACKENDS = ("pytorch", "pytorch-plain", "compile", "onnxruntime", "onnxruntime-int8", "tflite", "tensorrt")
DEFAULT_BACKENDS = ("pytorch", "pytorch-plain", "onnxruntime", "onnxruntime-int8", "tflite", "tensorrt")


@dataclass
class Case:
    """One model at one input size, with the peer model timed beside it."""

    name: str
    preset: str
    size: tuple[int, int]
    peer: str | None = None
    peer_size: tuple[int, int] | None = None


CASES: dict[str, Case] = {
    "seg": Case("seg", "seg-b1-cityscapes", (512, 1024), "segformer-b1", (512, 1024)),
    "seg-1024x2048": Case("seg-1024x2048", "seg-b1-cityscapes", (1024, 2048), "segformer-b1", (1024, 2048)),
    "seg-b0": Case("seg-b0", "seg-b0-cityscapes", (512, 1024), "segformer-b0", (512, 1024)),
    "sam": Case("sam", "sam-l0", (512, 512), "sam-vit-b", (1024, 1024)),
    "sam-xl1": Case("sam-xl1", "sam-xl1", (1024, 1024), "sam-vit-b", (1024, 1024)),
    "sr": Case("sr", "sr-light-x2", (256, 256), "swin2sr-lightweight-x2", (256, 256)),
    "cls": Case("cls", "b1", (224, 224)),
}
DEFAULT_CASES = ("seg", "sam", "sr", "cls")


@dataclass
class Runner:
    """A back end ready to run one case: `call()` returns the first output as a numpy array."""

    backend: str
    precision: str
    call: Callable[[], np.ndarray]
    note: str = ""
    warmup_s: float | None = None
    peak_mb: float | None = None
    extra: dict = field(default_factory=dict)


class BackendUnavailable(RuntimeError):
    """The back end cannot run here (a missing package or device); the reason goes in the table's notes."""


def _rss_mb() -> float | None:
    rss = current_rss_bytes()
    return None if rss is None else rss / 2**20


def _peak_rss_mb() -> float | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None


def _reset_peak_rss() -> None:
    try:  # "5" resets the peak resident set size (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass


def _first(outputs) -> np.ndarray:
    first = outputs[0] if isinstance(outputs, (tuple, list)) else outputs
    return first.detach().float().cpu().numpy() if isinstance(first, torch.Tensor) else np.asarray(first)


def _torch_runner(backend: str, module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], precision="fp32"):
    def call() -> np.ndarray:
        with torch.inference_mode():
            return _first(module(*inputs))

    return Runner(backend, precision, call)


def build_runner(backend: str, graph, model: torch.nn.Module, inputs: tuple[torch.Tensor, ...], workdir: Path,
                 threads: int) -> Runner:
    """The `Runner` of `backend` for `graph` (an `ExportGraph`); `BackendUnavailable` when it cannot run."""
    from ..export.specs import export_graphs

    if backend == "pytorch":
        return _torch_runner(backend, graph.module, inputs)
    if backend == "pytorch-plain":
        if not hasattr(model, "set_inference_optimizations"):
            raise BackendUnavailable(f"{type(model).__name__} has a single (plain) eager graph")
        plain = copy.deepcopy(model)
        plain.set_inference_optimizations(False)
        plain_graph = next(g for g in export_graphs(plain, None, graph.default_size) if g.name == graph.name)
        return _torch_runner(backend, plain_graph.module, inputs)
    if backend == "compile":
        from ..optimization import compile_for_inference

        return _torch_runner(backend, compile_for_inference(graph.module), inputs)
    if backend in ("onnxruntime", "onnxruntime-int8"):
        return _onnxruntime_runner(backend, graph, inputs, workdir, threads)
    if backend == "tflite":
        return _tflite_runner(graph, model, inputs, workdir, threads)
    if backend == "tensorrt":
        return _tensorrt_runner(graph, inputs, workdir)
    raise ValueError(f"Unknown back end {backend!r}; choose from {', '.join(BACKENDS)}.")


def _onnxruntime_runner(backend, graph, inputs, workdir: Path, threads: int) -> Runner:
    try:
        import onnxruntime  # noqa: F401
    except ImportError as err:
        raise BackendUnavailable("onnxruntime is not installed (pip install onnxruntime)") from err
    from ..export.onnx import export_graph_onnx, ort_session

    path = workdir / f"{graph.name}.onnx"
    if not path.exists():
        export_graph_onnx(graph, path, batch=max(2, inputs[0].shape[0]), size=graph.default_size)
    precision = "fp32"
    if backend == "onnxruntime-int8":
        from ..export.quantize import calibration_inputs_from_graph, quantize_static_int8

        quantized = workdir / f"{graph.name}_int8.onnx"
        # Static QDQ (dynamic quantization of the convs is several times slower on CPU); random calibration
        # inputs give the speed of an INT8 graph, not its accuracy.
        calibration = calibration_inputs_from_graph(graph, batches=2, size=graph.default_size)
        quantize_static_int8(path, quantized, calibration, fp32_scopes=graph.fp32_scopes)
        path, precision = quantized, "int8 (static QDQ)"
    session = ort_session(path, threads=threads)
    feeds = {name: t.numpy() for name, t in zip(graph.input_names, inputs)}
    output = graph.output_names[0]
    return Runner(backend, precision, lambda: session.run([output], feeds)[0])


def _tflite_runner(graph, model, inputs, workdir: Path, threads: int) -> Runner:
    try:
        from ai_edge_litert.interpreter import Interpreter

        from ..export.tflite import export_tflite, run_tflite
    except ImportError as err:
        raise BackendUnavailable("litert-torch is not installed (pip install litert-torch)") from err
    if inputs[0].shape[0] != 1:
        raise BackendUnavailable("TFLite graphs are built for batch 1")
    # Not validated here: the table reports the difference to the reference row.
    results = export_tflite(model, workdir / "tflite", size=graph.default_size, validate=False)
    path = next(r.path for r in results if r.name == graph.name)
    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    return Runner("tflite", "fp32", lambda: run_tflite(interpreter, inputs)[0])


def _tensorrt_runner(graph, inputs, workdir: Path) -> Runner:
    try:
        from ..export.tensorrt import TensorRTRunner, build_engine, profile_shapes, tensorrt_available
    except ImportError as err:
        raise BackendUnavailable(f"the TensorRT module cannot be imported: {err}") from err
    available, reason = tensorrt_available()
    if not available:
        raise BackendUnavailable(reason)
    from ..export.onnx import export_graph_onnx

    path = workdir / f"{graph.name}.onnx"
    if not path.exists():
        export_graph_onnx(graph, path, size=graph.default_size)
    engine = workdir / f"{graph.name}.fp16.engine"
    build_engine(path, engine, precision="fp16", fp32_scopes=graph.fp32_scopes, shapes=profile_shapes(graph))
    runner = TensorRTRunner(engine)
    feeds = {name: t.cuda() for name, t in zip(graph.input_names, inputs)}
    output = graph.output_names[0]

    def call() -> np.ndarray:
        result = runner(feeds)[output]
        torch.cuda.synchronize()
        return result.float().cpu().numpy()

    return Runner("tensorrt", "fp16 (attention, norms fp32)", call, note="includes the device-to-host copy")


def time_in_blocks(functions: dict[str, Callable[[], object]], budget_s: float, max_runs: int,
                   passes: int = 2) -> dict[str, list[float]]:
    """Times (ms) of every function, timed in blocks: `passes` passes over the functions, each function running
    back to back for its share of the budget (at least 2 calls, at most `max_runs` over all passes).

    Blocks instead of one call per function per round: PyTorch's OpenMP pool and ONNX Runtime's pool both spin
    after a call, so alternating frameworks call by call makes each wait for the other's spinning threads. The
    first call of every block (the switch) is not kept.
    """
    times: dict[str, list[float]] = {name: [] for name in functions}
    share = budget_s / max(1, passes * len(functions))
    for _ in range(passes):
        for name, fn in functions.items():
            fn()  # the switch from the previous back end: not timed
            start = time.perf_counter()
            runs = 0
            while runs < 2 or (time.perf_counter() - start < share and runs < max(2, max_runs // passes)):
                t0 = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t0) * 1e3)
                runs += 1
    return times


def _row(case: Case, runner: Runner, times: list[float], batch: int, size: tuple[int, int], threads: int,
         warmup: int) -> dict:
    median = statistics.median(times)
    return {
        "case": case.name, "model": case.preset, "backend": runner.backend, "precision": runner.precision,
        "batch": batch, "resolution": f"{size[0]}x{size[1]}", "threads": threads, "warmup": warmup,
        "iterations": len(times), "median_ms": median, "p90_ms": p90(times), "min_ms": min(times),
        "throughput": batch / (median / 1e3), "peak_mb": runner.peak_mb, "note": runner.note,
    }


def bench_case(case: Case, backends: tuple[str, ...] = DEFAULT_BACKENDS, batch: int = 1, threads: int = 2,
               budget_s: float = 20.0, max_rounds: int = 30, peers: bool = True, warmup: int = 2,
               progress: Callable[[str], None] | None = None) -> list[dict]:
    """Rows for one case: every available back end, then the peer; back ends that cannot run give a row
    with the reason in `note` and no timing."""
    from ..export.specs import export_graphs
    from ..resolve import preset_model

    say = progress or (lambda message: None)
    torch.set_num_threads(threads)
    model = preset_model(case.preset, seed=0)
    graph = export_graphs(model, None, case.size)[0]  # SAM: the image encoder
    inputs = graph.sample_inputs(batch, case.size)
    runners: dict[str, Runner] = {}
    skipped: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="evit-bench-") as tmp:
        for backend in backends:
            say(f"{case.name}: preparing {backend}")
            _reset_peak_rss()
            before = _rss_mb()
            start = time.perf_counter()
            try:
                runner = build_runner(backend, graph, model, inputs, Path(tmp), threads)
                for _ in range(warmup):
                    runner.call()
            except BackendUnavailable as err:
                skipped.append({"case": case.name, "model": case.preset, "backend": backend, "note": str(err)})
                continue
            except Exception as err:  # noqa: BLE001  (one failing back end must not lose the other rows)
                note = f"failed: {type(err).__name__}: {err}"
                skipped.append({"case": case.name, "model": case.preset, "backend": backend, "note": note})
                continue
            runner.warmup_s = time.perf_counter() - start
            peak = _peak_rss_mb()
            runner.peak_mb = None if peak is None or before is None else max(0.0, peak - before)
            runners[backend] = runner
        say(f"{case.name}: timing {', '.join(runners)}")
        times = time_in_blocks({name: r.call for name, r in runners.items()}, budget_s, max_rounds)
        reference_name = "pytorch" if "pytorch" in runners else next(iter(runners))
        reference = runners[reference_name].call()
        rows = []
        for name, runner in runners.items():
            row = _row(case, runner, times[name], batch, case.size, threads, warmup)
            row["max_abs_diff"] = float(np.abs(runner.call().astype(np.float32) - reference).max())
            row["setup_s"] = runner.warmup_s
            rows.append(row)
    if peers and case.peer:
        say(f"{case.name}: timing the peer {case.peer}")
        rows.append(_peer_row(case, batch, threads))
    reference_ms = next(r["median_ms"] for r in rows if r["backend"] == reference_name)
    for row in rows:
        row["ratio"] = reference_ms / row["median_ms"]
        row["reference"] = reference_name
    graph_gmacs = gmacs(graph.module, *[tuple(t.shape) for t in inputs])
    for row in rows:
        row["gmacs"] = graph_gmacs if row["model"] == case.preset else None
    return rows + skipped


def _peer_row(case: Case, batch: int, threads: int) -> dict:
    torch.manual_seed(0)
    _reset_peak_rss()
    before = _rss_mb()
    model, forward = peer_model(case.peer)
    pixels = torch.rand(batch, 3, *case.peer_size)
    with torch.inference_mode():
        forward(pixels)  # warm-up
        timing = time_callable(lambda: forward(pixels), warmup=0, budget_s=5.0, min_runs=1, max_runs=10)
    peak = _peak_rss_mb()
    runner = Runner("pytorch", "fp32", lambda: None, note="peer, random weights",
                    peak_mb=None if peak is None or before is None else max(0.0, peak - before))
    row = _row(case, runner, [timing["median_ms"]], batch, case.peer_size, threads, 1)
    row.update(model=case.peer, iterations=timing["runs"], p90_ms=None, min_ms=timing["min_ms"], max_abs_diff=None)
    return row


def run(cases: tuple[str, ...] = DEFAULT_CASES, backends: tuple[str, ...] = DEFAULT_BACKENDS, batch: int = 1,
        threads: int = 2, budget_s: float = 20.0, peers: bool = True, tune: bool = True,
        progress: Callable[[str], None] | None = print) -> list[dict]:
    """Rows for every case (see the module docstring)."""
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        raise ValueError(f"Unknown case(s) {unknown}; choose from {', '.join(CASES)}.")
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise ValueError(f"Unknown back end(s) {unknown}; choose from {', '.join(BACKENDS)}.")
    if tune:
        from ..optimization import tune_cpu_allocator

        tune_cpu_allocator()
    rows = []
    for name in track(cases, "bench backends", unit="case"):
        rows += bench_case(CASES[name], backends, batch, threads, budget_s, peers=peers, progress=progress)
    return rows


COLUMNS = [
    ("model", "model"), ("backend", "backend"), ("precision", "precision"), ("batch", "batch"),
    ("resolution", "resolution"), ("threads", "threads"), ("warmup", "warm-up"), ("iterations", "iterations"),
    ("median_ms", "median ms"), ("p90_ms", "p90 ms"), ("throughput", "img/s"), ("peak_mb", "peak MB"),
    ("ratio", "ratio to PyTorch eager"), ("max_abs_diff", "max abs diff"),
]


def method() -> str:
    env = environment()
    return ("Measured by `evit-hf bench backends` (" + ", ".join(f"{k}={v}" for k, v in env.items())
            + "): " + " ".join(__doc__.split("How it measures: ", 1)[1].split()))


def format_table(rows: list[dict]) -> str:
    timed = [r for r in rows if "median_ms" in r]
    notes = [f"- {r['model']} / {r['backend']}: not run ({r['note']})" for r in rows if "median_ms" not in r]
    text = markdown_table(timed, COLUMNS)
    return text + ("\n\n" + "\n".join(notes) if notes else "")


def plot(rows: list[dict], path: str | os.PathLike) -> None:
    """Median latency per back end and case (linear scale from 0, one panel per case), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timed = [r for r in rows if "median_ms" in r]
    cases = list(dict.fromkeys(r["case"] for r in timed))
    figure, axes = plt.subplots(len(cases), 1, figsize=(8, 1.2 + 0.45 * len(timed)), squeeze=False)
    for axis, case in zip(axes[:, 0], cases):
        case_rows = [r for r in timed if r["case"] == case]
        labels = [f"{r['model']} {r['backend']} ({r['precision']})" for r in case_rows]
        colours = ["#888888" if r["model"] != case_rows[0]["model"] else "#1f77b4" for r in case_rows]
        axis.barh(labels, [r["median_ms"] for r in case_rows], color=colours)
        axis.set_xlim(0, 1.18 * max(r["median_ms"] for r in case_rows))
        axis.invert_yaxis()
        axis.set_title(f"{case}: {case_rows[0]['resolution']}, batch {case_rows[0]['batch']}, "
                       f"{case_rows[0]['threads']} threads", fontsize=9)
        for y, row in enumerate(case_rows):
            axis.text(row["median_ms"], y, f" {row['median_ms']:.0f} ms", va="center", fontsize=7)
    axes[-1, 0].set_xlabel("median latency (ms; grey: the peer model, PyTorch eager)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
