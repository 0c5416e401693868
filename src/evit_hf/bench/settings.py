"""Thread, OpenMP and allocator settings measured, not guessed (`evit-hf bench cpu --settings`).

OpenMP reads its environment when torch loads, so each setting runs in a fresh Python process that times
our default eval graph of one variant at one size (random weights, batch 1, fp32) and prints one JSON row.
The settings compared: torch's defaults; glibc allocator tuning (`tune_cpu_allocator`: big activations stay on
the heap instead of being mmap'ed and page-faulted back on every forward pass); `GOMP_SPINCOUNT` (idle
OpenMP workers spin before sleeping, so the next parallel region starts without a wake-up); both; and
`OMP_WAIT_POLICY=ACTIVE` (workers spin forever); each with the machine's default thread count and with 1.
"""

from __future__ import annotations

from ..cpu_defaults import OPT_OUT_ENV
from ..progress import track
from .core import fresh_process_row, markdown_table

SETTINGS: dict[str, tuple[dict[str, str], bool]] = {
    "defaults": ({}, False),
    "allocator tuned": ({}, True),
    "GOMP_SPINCOUNT=10000000": ({"GOMP_SPINCOUNT": "10000000"}, False),
    "allocator tuned + GOMP_SPINCOUNT=10000000": ({"GOMP_SPINCOUNT": "10000000"}, True),
    "allocator tuned + OMP_WAIT_POLICY=ACTIVE": ({"OMP_WAIT_POLICY": "ACTIVE"}, True),
}

_CHILD = """
import json, statistics, sys, torch
from evit_hf.bench.core import time_callable
from evit_hf.optimization import tune_cpu_allocator
from evit_hf.bench.inference import _ours_without_original
variant, height, width, threads, tune, budget = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), \\
    sys.argv[5] == "1", float(sys.argv[6])
tuned = tune_cpu_allocator() if tune else False
if threads > 0:
    torch.set_num_threads(threads)
model = _ours_without_original(variant)
pixels = torch.randn(1, 3, height, width)
call = (lambda: model(pixels)) if variant.startswith("sam-") else (lambda: model(pixel_values=pixels))
with torch.inference_mode():
    timing = time_callable(call, warmup=2, budget_s=budget, min_runs=3, max_runs=30)
print(json.dumps({**timing, "threads": torch.get_num_threads(), "allocator_tuned": tuned}))
"""


def run(
    variant: str = "seg-b1-cityscapes",
    size: tuple[int, int] = (1024, 2048),
    budget_s: float = 10.0,
    thread_counts: tuple[int, ...] = (0, 1),
) -> list[dict]:
    """One row per (setting, threads); `0` threads means torch's default. Each row is a separate process."""
    rows = []
    jobs = [(threads, name, setting) for threads in thread_counts for name, setting in SETTINGS.items()]
    for threads, name, (env_overrides, tune) in track(jobs, "bench settings", unit="setting"):
        args = [variant, str(size[0]), str(size[1]), str(threads), "1" if tune else "0", str(budget_s)]
        # each row its own setting, not evit-hf's defaults (`evit_hf.cpu_defaults`)
        row = fresh_process_row(["-c", _CHILD, *args], {**env_overrides, OPT_OUT_ENV: "0"}, f"setting {name!r}")
        rows.append({"setting": name, "model": variant, "input": f"{size[0]}x{size[1]}", **row})
    fastest = min(row["median_ms"] for row in rows)
    for row in rows:
        row["vs_fastest"] = row["median_ms"] / fastest
    return rows


COLUMNS = [
    ("setting", "setting"), ("threads", "threads"), ("model", "model"), ("input", "input"),
    ("median_ms", "median ms"), ("min_ms", "min ms"), ("runs", "runs"), ("vs_fastest", "time / fastest"),
]


def format_table(rows: list[dict]) -> str:
    return markdown_table(rows, COLUMNS) + (
        "\n\nEach row: a fresh process (OpenMP reads its environment when torch loads), our default eval graph, "
        "random weights, batch 1, fp32, torch.inference_mode."
    )


__all__ = ["SETTINGS", "run", "format_table"]
