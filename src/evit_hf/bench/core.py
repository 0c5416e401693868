"""The timing core every benchmark (and `evit-hf demo`'s zoo, and the release cards) measures with.

Owns timing (`time_callable`, `time_round_robin`, `time_pixel_model`, `p90`, `intra_op_threads`, and
`fresh_process_row` for settings that a process reads when it starts), the one MAC
counter (`count_macs` on the meta device; `gmacs` for a table column that stays empty where an op has no meta
kernel), parameter and memory counts, the record of the machine and setting a measurement ran under
(`machine`, `environment`, `measured_setting`) and markdown tables (`markdown_table`, `table_with_setting`).
"""

from __future__ import annotations

import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ..cpu_defaults import OPT_OUT_ENV


def time_callable(
    fn: Callable[[], object],
    warmup: int = 2,
    budget_s: float = 5.0,
    min_runs: int = 3,
    max_runs: int = 50,
) -> dict[str, float]:
    """Median and min wall time of `fn()` in ms: `warmup` calls, then runs until the budget is spent."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_runs and (len(times) < min_runs or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "runs": len(times)}


def time_round_robin(functions: dict[str, Callable[[], object]], budget_s: float, max_rounds: int,
                     min_rounds: int = 3) -> dict[str, list]:
    """Round-robin timing (ms) of every function until the budget is spent (at least `min_rounds` rounds)."""
    times: dict[str, list[float]] = {name: [] for name in functions}
    start = time.perf_counter()
    rounds = 0
    while rounds < max_rounds and (rounds < min_rounds or time.perf_counter() - start < budget_s):
        for name, fn in functions.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1e3)
        rounds += 1
    return times


@contextmanager
def intra_op_threads(threads: int | None) -> Iterator[None]:
    """Run the block with `threads` torch intra-op threads (`None`: leave them), restored afterwards.

    Never time next to another torch job: two processes with 2 threads each on 2 cores slow each other
    down by up to 100x (OpenMP barriers)."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# What a fresh measuring process does not inherit: the OpenMP settings (libgomp reads them when torch loads) and
# evit-hf's CPU-defaults switch (`OPT_OUT_ENV`); a benchmark sets them per row instead.
FRESH_PROCESS_CLEARED = ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", OPT_OUT_ENV)


def fresh_process_row(argv: list[str], overrides: dict[str, str], what: str) -> dict:
    """Run `python *argv` in a fresh process, with this environment less `FRESH_PROCESS_CLEARED` plus `overrides`,
    and return the JSON row it prints last; a failed process raises naming `what` and its last stderr lines."""
    env = {k: v for k, v in os.environ.items() if k not in FRESH_PROCESS_CLEARED}
    env.update(overrides)
    result = subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed: {result.stderr.strip().splitlines()[-3:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def time_pixel_model(model: nn.Module, size: tuple[int, int], budget_s: float, max_runs: int) -> dict:
    """Timing of `model(pixel_values=...)` on one random (1, 3, *size) image, within about `budget_s`.

    One warm-up run is never timed; a model too slow to repeat three times in the budget reports its
    single timed run (`runs` 1).
    """
    pixels = torch.rand(1, 3, *size)

    def forward() -> None:
        with torch.inference_mode():
            model(pixel_values=pixels)

    forward()  # warm-up (kernel selection, first allocations): never timed
    start = time.perf_counter()
    forward()  # a probe run: tells whether repeated timing fits the budget
    probe_ms = (time.perf_counter() - start) * 1e3
    if 3 * probe_ms / 1e3 > budget_s:  # too slow to repeat: report the single timed run
        return {"median_ms": probe_ms, "min_ms": probe_ms, "runs": 1}
    return time_callable(forward, warmup=0, budget_s=budget_s, min_runs=3, max_runs=max_runs)


def count_macs(model: nn.Module, *inputs_shape: tuple[int, ...], **kwargs) -> float:
    """Forward multiply-accumulates (FLOPs / 2) of convs, matmuls and linears, counted on the meta device.

    A model already on the meta device is used as is; any other is copied there (its weights stay put).
    """
    on_meta = next(model.parameters()).device.type == "meta"
    meta_model = model if on_meta else copy.deepcopy(model).to(device="meta")
    inputs = [torch.empty(shape, device="meta") for shape in inputs_shape]
    with torch.no_grad():
        return count_call_macs(lambda: meta_model(*inputs, **kwargs))


def count_call_macs(fn: Callable[[], object]) -> float:
    """Multiply-accumulates (FLOPs / 2) of convs, matmuls and linears that `fn()` runs (any call, e.g. one part
    of a model on meta tensors); `count_macs` counts a whole model's forward with it."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 2


def gmacs(model: nn.Module, *inputs_shape: tuple[int, ...], **kwargs) -> float | None:
    """`count_macs` in billions, or `None` where an op has no meta kernel (the table column stays empty)."""
    try:
        return count_macs(model, *inputs_shape, **kwargs) / 1e9
    except Exception:  # noqa: BLE001  (any op without a meta kernel raises its own error type)
        return None


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def current_rss_bytes() -> int | None:
    """The resident memory of this process in bytes (Linux /proc), or `None` where it cannot be read."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def environment() -> dict[str, str]:
    """The setting a measurement ran under, printed with every table."""
    return {
        "torch": torch.__version__,
        "threads": str(torch.get_num_threads()),
        "cpu": platform.processor() or platform.machine(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
        "GOMP_SPINCOUNT": os.environ.get("GOMP_SPINCOUNT", "unset"),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "allocator": "glibc malloc" + (" + LD_PRELOAD=" + os.environ["LD_PRELOAD"] if "LD_PRELOAD" in os.environ
                                       else ""),
    }


def machine() -> str:
    """The hardware and software of this machine as a results file names them (`evit_hf.release.results`):
    CPU model and logical CPUs, memory, GPU, OS and torch, e.g. "AMD EPYC 9B14 (2 logical CPUs), 24 GB RAM, no
    GPU, Linux 6.8, torch 2.13.0+cpu"."""
    cpu = platform.processor() or platform.machine()
    memory = ""
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
        with open("/proc/meminfo") as info:
            kib = next(int(line.split()[1]) for line in info if line.startswith("MemTotal"))
        memory = f", {kib / 2**20:.0f} GB RAM"
    except (OSError, StopIteration, ValueError, IndexError):
        pass  # not Linux: the processor name platform gives, no memory size
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu} ({os.cpu_count()} logical CPUs){memory}, {gpu}, {platform.system()} "
            f"{platform.release().split('-')[0]}, torch {torch.__version__}")


def measured_setting(rows: list[dict]) -> str:
    """The setting benchmark rows were measured in: `environment()`, the rows' thread count and allocator tuning."""
    env = environment()
    if rows:
        env["threads"] = str(rows[0].get("threads", env["threads"]))
    tuned = any(row.get("allocator_tuned") for row in rows)
    return ", ".join(f"{k}={v}" for k, v in env.items()) + f", mallopt tuning={'on' if tuned else 'off'}"


def markdown_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """Rows as a markdown table; `columns` is [(key, header)], floats get 2-3 significant decimals."""
    def fmt(value) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(row.get(k)) for k, _ in columns) + " |" for row in rows]
    return "\n".join(lines)


def table_with_setting(rows: list[dict], columns: list[tuple[str, str]], note: str) -> str:
    """`markdown_table(rows, columns)`, then `note` and the setting the rows were measured in."""
    return markdown_table(rows, columns) + f"\n\n{note}\nsetting: {measured_setting(rows)}"
