"""Semantic segmentation latency: every EfficientViT-Seg preset against transformers' SegFormer B0/B1/B2.

All models run in the same process and setting (random weights, fp32, eval, `torch.inference_mode()`,
batch 1), so the ratios are comparable. Reported per model and input size: parameters, median / min latency,
the speed-up over SegFormer-B0/B1/B2 at the same size (`segformer_ms / ours_ms`), and the growth factor
from 512x1024 to 1024x2048 (`ms(1024x2048) / ms(512x1024)`; 4.0 means linear in pixels).

Setting: on glibc, `tune_cpu_allocator()` keeps large activations on the heap instead of mmap/munmap'ing them on
every forward pass (mallopt M_MMAP_MAX=0, M_TRIM_THRESHOLD=1 GiB, M_TOP_PAD=64 MiB; 3x faster EfficientViT-Seg
at 1024x2048 on the reference 2-vCPU VM). `GOMP_SPINCOUNT=10000000` must be set in the environment before
Python starts to take effect (OpenMP reads it when torch loads), so it is documented, not set, here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..optimization import tune_cpu_allocator
from ..progress import Progress
from ..reference.peers import SEGFORMER_CONFIGS, segformer_model
from ..resolve import preset_model
from .core import count_parameters, intra_op_threads, table_with_setting, time_pixel_model

PEER_FAMILY = "transformers SegFormer"


def run(
    sizes: Sequence[tuple[int, int]] = ((512, 1024), (1024, 2048)),
    presets: Sequence[str] | None = None,
    budget_s: float = 20.0,
    peers: bool = True,
    max_runs: int = 20,
    tune: bool = True,
    peer_models: Sequence[str] | None = None,
    threads: int | None = None,
) -> list[dict]:
    """Time every seg preset (default: all 11) and, with `peers`, SegFormer B0/B1/B2 at every size.

    Returns one row per (model, size): `model`, `family`, `size`, `params_m`, `median_ms`, `min_ms`, `runs`,
    `vs_segformer-b0/b1/b2` (SegFormer latency / ours, same size) and `growth` (largest / smallest size).
    `peer_models` restricts the SegFormer peers (default: B0, B1 and B2). `threads` sets torch's intra-op
    threads for the run (restored afterwards); with 2 threads per process, two torch processes sharing 2
    cores slow each other down by up to 100x (OpenMP barriers), so never time next to another job.
    """
    from ..models.efficientvit import SEGMENTATION_PRESETS

    presets = list(presets) if presets is not None else list(SEGMENTATION_PRESETS)
    unknown = [p for p in presets if p not in SEGMENTATION_PRESETS]
    if unknown:
        raise ValueError(
            f"Unknown segmentation presets {unknown}; expected some of {sorted(SEGMENTATION_PRESETS)}."
        )
    sizes = [tuple(int(v) for v in s) for s in sizes]
    for height, width in sizes:
        if height % 32 or width % 32:
            raise ValueError(
                f"Sizes must be multiples of 32 (EfficientViT's total stride), got {height}x{width}."
            )
    tuned = tune_cpu_allocator() if tune else False
    models = [(p, "EfficientViT-Seg", lambda p=p: preset_model(p)) for p in presets]
    if peers:
        names = list(peer_models) if peer_models is not None else list(SEGFORMER_CONFIGS)
        models += [(name, PEER_FAMILY, lambda name=name: segformer_model(name)) for name in names]
    rows: list[dict] = []
    with intra_op_threads(threads), Progress("bench seg", len(models) * len(sizes), unit="row") as progress:
        for name, family, build in models:
            model = build()
            params = count_parameters(model) / 1e6
            for size in sizes:
                timing = time_pixel_model(model, size, budget_s, max_runs)
                rows.append({"model": name, "family": family, "size": f"{size[0]}x{size[1]}", "params_m": params,
                             "threads": torch.get_num_threads(), "allocator_tuned": tuned, **timing})
                progress.update()
            del model
    _add_ratios(rows, sizes)
    return rows


def _add_ratios(rows: list[dict], sizes: list[tuple[int, int]]) -> None:
    by_key = {(row["model"], row["size"]): row for row in rows}
    labels = [f"{h}x{w}" for h, w in sizes]
    for row in rows:
        for peer in SEGFORMER_CONFIGS:
            peer_row = by_key.get((peer, row["size"]))
            if peer_row is not None and row["family"] != PEER_FAMILY:
                row[f"vs_{peer}"] = peer_row["median_ms"] / row["median_ms"]
        if len(labels) > 1:
            small = by_key.get((row["model"], labels[0]))
            large = by_key.get((row["model"], labels[-1]))
            if small and large:
                row["growth"] = large["median_ms"] / small["median_ms"]


COLUMNS = [
    ("model", "model"), ("size", "input"), ("params_m", "params M"), ("median_ms", "median ms"),
    ("min_ms", "min ms"), ("runs", "runs"), ("vs_segformer-b0", "SegFormer-B0 / ours"),
    ("vs_segformer-b1", "SegFormer-B1 / ours"), ("vs_segformer-b2", "SegFormer-B2 / ours"),
    ("growth", "growth (largest/smallest size)"),
]


def format_table(rows: list[dict]) -> str:
    """The rows as a markdown table, followed by the setting they were measured in."""
    return table_with_setting(rows, COLUMNS, "Random weights, fp32, eval, torch.inference_mode, batch 1. Ratios > 1: "
                              "EfficientViT is faster. A row with 1 run was too slow for the budget: one timed run "
                              "after the warm-up is reported.")


__all__ = ["COLUMNS", "format_table", "run"]
