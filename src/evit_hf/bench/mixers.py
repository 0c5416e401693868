"""Token-mixer scaling study (`evit-hf bench --study mixers`): latency and peak memory per mixer and resolution.

This module owns the study: `run()` measures, for every token mixer (`lite_mla`, `softmax`, `hyena`,
`retention`) and square input size (default 256 ... 2048 pixels), one EfficientViT stage (the first
attention stage of the preset: its stride-2 MBConv and EfficientViT blocks, fed the map it would get from
that image) and the whole segmentation model; `format_table()` renders the rows and the scaling exponents
(least-squares slope of log latency against log pixels); `plot()` draws them.

Each measurement runs in a fresh Python process (`memory=True`, the default), so the peak memory is that of
one measurement alone: the growth of the process's peak resident set (`ru_maxrss`) over its resident set just
before the first forward pass, i.e. activations, workspaces and allocator overhead of one inference, not the
weights. The same process then times the forward pass (random weights, fp32, eval, `torch.inference_mode()`,
batch 1). Sizes whose extrapolated latency or memory exceeds the caps are skipped with a note instead of
swapping the machine or running for hours.
"""

from __future__ import annotations

import gc
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..progress import Progress
from .core import (
    count_parameters,
    current_rss_bytes,
    gmacs,
    markdown_table,
    measured_setting,
    time_callable,
)

DEFAULT_SIZES = (256, 512, 1024, 2048)
DEFAULT_PRESET = "seg-b1-cityscapes"
TARGETS = ("stage", "model")


def _mixers() -> tuple[str, ...]:
    from ..models.efficientvit.configuration_efficientvit import TOKEN_MIXERS

    return TOKEN_MIXERS


def _config(preset: str, mixer: str):
    from ..models.efficientvit import EfficientViTConfig

    return EfficientViTConfig.from_preset(preset, token_mixer=mixer)


def attention_stage_index(config) -> int:
    """The first stage made of EfficientViT blocks (the highest-resolution one, where the mixer costs most)."""
    if "att" not in config.block_types:
        raise ValueError(f"The preset has no attention stage (block types {config.block_types}).")
    return config.block_types.index("att")


def build_target(target: str, preset: str, mixer: str, size: int) -> tuple[torch.nn.Module, torch.Tensor]:
    """The module to time and its input for a `size` x `size` image: the attention stage or the seg model."""
    from ..models.efficientvit.modeling_efficientvit import EfficientViTStage
    from ..models.efficientvit.modeling_efficientvit_fastpath import set_inference_optimizations
    from ..models.efficientvit.modeling_efficientvit_seg import EfficientViTForSemanticSegmentation

    config = _config(preset, mixer)
    if target == "model":
        return EfficientViTForSemanticSegmentation(config).eval(), torch.rand(1, 3, size, size)
    if target != "stage":
        raise ValueError(f"Unknown target {target!r}; expected one of {TARGETS}.")
    index = attention_stage_index(config)
    stage = EfficientViTStage(config, index, [0.0] * config.depths[index]).eval()
    set_inference_optimizations(stage, config.optimize_inference)
    side = size // 2**index  # the stage's input map: the previous stage's output (stride 2**index)
    pixels = torch.randn(1, config.widths[index - 1], side, side)
    if config.optimize_inference:  # as the encoder hands it over in eval mode on CPU
        pixels = pixels.contiguous(memory_format=torch.channels_last)
    return stage, pixels


def _forward(module: torch.nn.Module, inputs: torch.Tensor, target: str) -> Callable[[], None]:
    def forward() -> None:
        with torch.inference_mode():
            if target == "model":
                module(pixel_values=inputs)
            else:
                module(inputs)

    return forward


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB, macOS bytes


def measure(target: str, preset: str, mixer: str, size: int, budget_s: float = 10.0, max_runs: int = 10,
            threads: int | None = None, tune: bool = True, memory: bool = True, seed: int = 0) -> dict[str, Any]:
    """One row, measured in this process: peak RSS growth of the first forward pass (with `memory`, meaningful
    in a fresh process only), then the latency, as `time_pixel_model` does (a probe run; a forward too slow to
    repeat three times within `budget_s` reports that single run)."""
    from ..optimization import tune_cpu_allocator

    tuned = tune_cpu_allocator() if tune else False
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    module, inputs = build_target(target, preset, mixer, size)
    forward = _forward(module, inputs, target)
    gc.collect()
    before = current_rss_bytes() if memory else None
    forward()  # warm-up, and the one whose memory is measured (first-call allocations included)
    peak_mb = None
    if before is not None:
        peak_mb = max(0, _peak_rss_bytes() - before) / 2**20
    start = time.perf_counter()
    forward()
    probe_ms = (time.perf_counter() - start) * 1e3
    if 3 * probe_ms / 1e3 > budget_s:
        timing = {"median_ms": probe_ms, "min_ms": probe_ms, "runs": 1}
    else:
        timing = time_callable(forward, warmup=0, budget_s=budget_s, min_runs=3, max_runs=max_runs)
    return {"peak_mb": peak_mb, "threads": torch.get_num_threads(), "allocator_tuned": tuned, **timing}


def _measure_in_subprocess(job: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    command = [sys.executable, "-m", "evit_hf.bench.mixers", "--worker", json.dumps(job)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"note": f"failed: no result within {timeout_s:.0f} s"}
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return {"note": f"failed (exit {result.returncode}): {tail[:200]}"}
    return json.loads(lines[-1])


def softmax_attention_gb(config, size: int) -> float:
    """Size of the largest softmax score matrix (heads x N x N fp32, one block) for a `size` x `size` image:
    what a non-fused attention kernel materialises (fused kernels such as PyTorch's CPU flash attention
    tile it instead)."""
    worst = 0.0
    for index, (block, width) in enumerate(zip(config.block_types, config.widths)):
        if block == "att":
            heads = int(width // config.attention_head_dim * config.attention_heads_ratio)
            tokens = math.ceil(size / 2 ** (index + 1)) ** 2
            worst = max(worst, heads * tokens**2 * 4 / 2**30)
    return worst


def _extrapolate(points: list[tuple[float, float]], pixels: float) -> float | None:
    """Power-law extrapolation from the two largest measured points (pixels, value)."""
    if len(points) < 2:
        return None
    (p0, v0), (p1, v1) = points[-2], points[-1]
    if v0 <= 0 or v1 <= 0:
        return None
    return v1 * (pixels / p1) ** (math.log(v1 / v0) / math.log(p1 / p0))


def run(
    sizes: Sequence[int] = DEFAULT_SIZES,
    mixers: Sequence[str] | None = None,
    preset: str = DEFAULT_PRESET,
    targets: Sequence[str] = TARGETS,
    budget_s: float = 10.0,
    max_runs: int = 10,
    memory: bool = True,
    threads: int | None = None,
    tune: bool = True,
    max_forward_s: float = 120.0,
    max_memory_gb: float = 12.0,
    progress: bool = False,
) -> list[dict]:
    """Measure every (target, mixer, size) and return one row each (sizes are square inputs, in pixels).

    Rows: `target` (`stage` or `model`), `mixer`, `size`, `pixels`, `params_m`, `gmacs` (convs, matmuls, linears
    and attention; FFTs are not counted), `median_ms`, `min_ms`, `runs`, `peak_mb` (peak RSS growth of one
    forward pass, with `memory`), `vs_lite_mla` (latency over lite_mla's at the same target and size),
    `exponent` (the target/mixer's least-squares slope of log latency vs log pixels over every measured size)
    and `exponent_last` (the slope between its two largest measured sizes); skipped or failed rows carry a
    `note` and no latency. `memory` runs each measurement in a fresh subprocess (honest peak memory, isolated
    allocator state); without it everything runs in this process and `peak_mb` is empty. A size is skipped
    when the latency or memory extrapolated from the two previous sizes exceeds `max_forward_s` seconds per
    forward or `max_memory_gb`. `threads` sets torch's intra-op threads (default: torch's); never time next to
    another job (OpenMP threads of two processes sharing cores slow each other down by up to 100x).
    """
    mixers = list(mixers) if mixers is not None else list(_mixers())
    unknown = [m for m in mixers if m not in _mixers()]
    if unknown:
        raise ValueError(f"Unknown token mixers {unknown}; expected some of {list(_mixers())}.")
    bad_targets = [t for t in targets if t not in TARGETS]
    if bad_targets:
        raise ValueError(f"Unknown targets {bad_targets}; expected some of {list(TARGETS)}.")
    sizes = sorted(int(s) for s in sizes)
    if any(s < 32 or s % 32 for s in sizes):
        raise ValueError(f"Sizes must be multiples of 32 (the model's total stride), got {sizes}.")
    rows: list[dict] = []
    bar = Progress("bench mixers", len(targets) * len(mixers) * len(sizes), unit="row")
    for target in targets:
        for mixer in mixers:
            config = _config(preset, mixer)
            latencies: list[tuple[float, float]] = []
            memories: list[tuple[float, float]] = []
            for size in sizes:
                module, inputs = build_target(target, preset, mixer, size)
                pixels = size * size
                row: dict[str, Any] = {"target": target, "mixer": mixer, "preset": preset, "size": f"{size}x{size}",
                                       "pixels": pixels, "params_m": count_parameters(module) / 1e6,
                                       "gmacs": gmacs(module, tuple(inputs.shape))}
                if mixer == "softmax":
                    row["attention_matrix_gb"] = softmax_attention_gb(config, size)
                del module, inputs
                predicted_ms = _extrapolate(latencies, pixels)
                predicted_mb = _extrapolate(memories, pixels)
                if predicted_ms is not None and predicted_ms / 1e3 > max_forward_s:
                    row["note"] = f"skipped: ~{predicted_ms / 1e3:.0f} s/forward predicted (cap {max_forward_s:g} s)"
                elif predicted_mb is not None and predicted_mb / 1024 > max_memory_gb:
                    row["note"] = f"skipped: ~{predicted_mb / 1024:.1f} GB predicted (cap {max_memory_gb:g} GB)"
                else:
                    job = {"target": target, "preset": preset, "mixer": mixer, "size": size, "budget_s": budget_s,
                           "max_runs": max_runs, "threads": threads, "tune": tune}
                    if memory:
                        expected = 2 * (predicted_ms or 60e3) / 1e3  # warm-up and probe; budget on top
                        row.update(_measure_in_subprocess(job, timeout_s=120 + budget_s + 3 * expected))
                    else:
                        previous_threads = torch.get_num_threads()
                        try:
                            row.update(measure(**job, memory=False))
                        finally:
                            torch.set_num_threads(previous_threads)
                if "median_ms" in row:
                    latencies.append((pixels, row["median_ms"]))
                    if row.get("peak_mb"):
                        memories.append((pixels, row["peak_mb"]))
                if progress:
                    shown = row.get("note") or f"{row['median_ms']:.1f} ms, peak {row.get('peak_mb') or 0:.0f} MB"
                    bar.write(f"{target} {mixer} {row['size']}: {shown}")
                bar.update()
                rows.append(row)
    bar.close()
    _add_derived(rows)
    return rows


def best_of(*runs: list[dict]) -> list[dict]:
    """Several `run()` results merged: per (target, mixer, size) the row with the lowest median latency, with the
    ratios and exponents recomputed. Interference from other jobs only ever adds time, so on a shared machine
    the fastest of repeated measurements is the better estimate of a forward pass's cost."""
    best: dict[tuple[str, str, str], dict] = {}
    for rows in runs:
        for row in rows:
            key = (row["target"], row["mixer"], row["size"])
            kept = best.get(key)
            if kept is None or ("median_ms" in row and row["median_ms"] < kept.get("median_ms", math.inf)):
                best[key] = {k: v for k, v in row.items() if k not in ("vs_lite_mla", "exponent", "exponent_last")}
    merged = list(best.values())  # the first run's order: a replaced row keeps its key's place
    _add_derived(merged)
    return merged


def scaling_exponent(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(latency) against log(pixels); 1 is linear in pixels, 2 quadratic."""
    points = [(p, v) for p, v in points if v and v > 0]
    if len(points) < 2:
        return None
    xs = [math.log(p) for p, _ in points]
    ys = [math.log(v) for _, v in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / var if var else None


def _add_derived(rows: list[dict]) -> None:
    measured = [row for row in rows if "median_ms" in row]
    reference = {(row["target"], row["size"]): row["median_ms"] for row in measured if row["mixer"] == "lite_mla"}
    for row in measured:
        lite = reference.get((row["target"], row["size"]))
        if lite:
            row["vs_lite_mla"] = row["median_ms"] / lite
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in measured:
        groups.setdefault((row["target"], row["mixer"]), []).append(row)
    for group in groups.values():
        points = [(row["pixels"], row["median_ms"]) for row in group]
        exponent = scaling_exponent(points)
        last = scaling_exponent(points[-2:]) if len(points) >= 2 else None
        for row in group:
            row["exponent"], row["exponent_last"] = exponent, last


COLUMNS = [
    ("target", "target"), ("mixer", "mixer"), ("size", "input"), ("params_m", "params M"), ("gmacs", "GMACs"),
    ("median_ms", "median ms"), ("min_ms", "min ms"), ("runs", "runs"), ("peak_mb", "peak MB"),
    ("vs_lite_mla", "ms / lite_mla ms"), ("note", "note"),
]
SUMMARY_COLUMNS = [
    ("target", "target"), ("mixer", "mixer"), ("exponent", "exponent (all sizes)"),
    ("exponent_last", "exponent (two largest)"), ("size", "largest input"), ("median_ms", "ms there"),
    ("vs_lite_mla", "ms / lite_mla ms there"),
]


def summary_rows(rows: list[dict]) -> list[dict]:
    """Per (target, mixer): its exponents and the latency at its largest measured size."""
    last: dict[tuple[str, str], dict] = {}
    for row in rows:
        if "median_ms" in row:
            last[(row["target"], row["mixer"])] = row
    return list(last.values())


def format_table(rows: list[dict]) -> str:
    """The rows as a markdown table, the scaling exponents per mixer, and the setting they were measured in."""
    note = ("Random weights, fp32, eval, torch.inference_mode, batch 1, square inputs. `stage`: the preset's first "
            "attention stage alone, fed the map an image of that size gives it; `model`: the whole seg model. "
            "GMACs leave FFTs out (hyena's long convolutions are uncounted). peak MB: growth of the peak resident "
            "set over one forward pass in a fresh process (activations, workspaces, allocator overhead; weights "
            "excluded). A row with 1 run was too slow for the budget: one timed run after the warm-up.")
    summary = ("Scaling exponent: least-squares slope of log(latency) against log(pixels) (1: linear in pixels, "
               "2: quadratic).")
    return (markdown_table(rows, COLUMNS) + f"\n\n{note}\n\n" + markdown_table(summary_rows(rows), SUMMARY_COLUMNS)
            + f"\n\n{summary}\nsetting: {measured_setting(rows)}")


_COLOURS = {"lite_mla": "tab:blue", "softmax": "tab:red", "hyena": "tab:green", "retention": "tab:purple"}


def plot(rows: list[dict], path: str | os.PathLike) -> None:
    """Log-log latency (top) and, when measured, peak memory (bottom) against pixels, one panel per target, one
    line per mixer (its scaling exponent in the legend), with dashed slope-1 and slope-2 guides. Needs
    matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = [t for t in TARGETS if any(row["target"] == t and "median_ms" in row for row in rows)]
    if not targets:
        raise ValueError("No measured rows to plot.")
    metrics = [("median_ms", "latency (ms)")]
    if any(row.get("peak_mb") for row in rows):
        metrics.append(("peak_mb", "peak memory (MB)"))
    fig, axes = plt.subplots(len(metrics), len(targets), figsize=(6.2 * len(targets), 4.2 * len(metrics)),
                             squeeze=False)
    for column, target in enumerate(targets):
        mine = [row for row in rows if row["target"] == target and "median_ms" in row]
        for row_index, (key, label) in enumerate(metrics):
            ax = axes[row_index][column]
            for mixer in dict.fromkeys(row["mixer"] for row in mine):
                points = [(row["pixels"], row[key]) for row in mine if row["mixer"] == mixer and row.get(key)]
                if not points:
                    continue
                exponent = scaling_exponent(points)
                name = mixer if exponent is None else f"{mixer} (slope {exponent:.2f})"
                ax.plot([p for p, _ in points], [v for _, v in points], marker="o", label=name,
                        color=_COLOURS.get(mixer))
            lows = [(row["pixels"], row[key]) for row in mine if row.get(key)]
            if lows:
                x0, y0 = min(lows)
                x1 = max(p for p, _ in lows)
                for slope in (1, 2):
                    ax.plot([x0, x1], [y0, y0 * (x1 / x0) ** slope], linestyle="--", color="grey", linewidth=0.8)
                    ax.annotate(f"slope {slope}", (x1, y0 * (x1 / x0) ** slope), fontsize=7, color="grey")
            ax.set_xscale("log")
            ax.set_yscale("log")
            sizes = sorted({row["pixels"] for row in mine})
            ax.set_xticks(sizes, [f"{int(math.isqrt(p))}²" for p in sizes])
            ax.minorticks_off()
            ax.set_xlabel("input pixels")
            ax.set_ylabel(label)
            what = "attention stage" if target == "stage" else "whole seg model"
            ax.set_title(f"{what}: {label.split(' (')[0]}")
            ax.grid(True, which="major", alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(f"EfficientViT token mixers ({rows[0].get('preset', DEFAULT_PRESET)}), CPU, batch 1", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:  # python -m evit_hf.bench.mixers [--worker JSON]
    import argparse

    parser = argparse.ArgumentParser(description="Token-mixer scaling study (latency, peak memory, exponents).")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # one measurement as JSON, for run()'s subprocesses
    parser.add_argument("--sizes", type=int, nargs="*", default=list(DEFAULT_SIZES))
    parser.add_argument("--mixers", nargs="*")
    parser.add_argument("--preset", default=DEFAULT_PRESET)
    parser.add_argument("--budget", type=float, default=10.0)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--plot", help="write the scaling plot (PNG) here")
    parser.add_argument("--json", help="write the rows as JSON here")
    parser.add_argument("--merge", nargs="+", metavar="JSON",
                        help="measure nothing: merge earlier --json results (best of, see `best_of`) and report them")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(**json.loads(args.worker))), flush=True)
        return 0
    if args.merge:
        runs = []
        for path in args.merge:
            with open(path) as handle:
                data = json.load(handle)
            runs.append(data["rows"] if isinstance(data, dict) else data)  # `evit-hf bench --json`: a results file
        rows = best_of(*runs)
    else:
        rows = run(sizes=args.sizes, mixers=args.mixers, preset=args.preset, budget_s=args.budget,
                   threads=args.threads, progress=True)
    print(format_table(rows))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)
    if args.plot:
        plot(rows, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["run", "measure", "best_of", "format_table", "plot", "summary_rows", "scaling_exponent",
           "softmax_attention_gb", "build_target", "DEFAULT_SIZES", "DEFAULT_PRESET"]
