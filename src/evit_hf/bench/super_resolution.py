"""Super-resolution latency: EfficientViT-SR against transformers' Swin2SR, measured in the same run.

This module owns `evit-hf bench sr`: `run()` returns rows and `format_table()` renders them. Every model
runs in the same process and setting (random weights, fp32, eval, `torch.inference_mode()`, batch 1) at
each input size (default 256x256 -> 512x512 and 512x512 -> 1024x1024 for x2). The peer is
`Swin2SRForImageSuperResolution` in the lightweight configuration of the released
`caidas/swin2SR-lightweight-x2-64` checkpoint (`reference.peers`). Rows report parameters, GMACs (convs,
matmuls and linears, counted on the meta device), median / min latency and `vs_swin2sr` (Swin2SR ms / ours at
the same size; > 1 means EfficientViT-SR is faster). Latency of a whole image in one pass (no tiling).

Setting: as the segmentation benchmark, glibc's allocator is tuned (`tune_cpu_allocator`), and
`GOMP_SPINCOUNT=10000000` must be set in the environment before Python starts (documented, not set here).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..optimization import tune_cpu_allocator
from ..progress import Progress
from ..reference.peers import SWIN2SR_LIGHTWEIGHT_X2, SWIN2SR_NAME, swin2sr_model
from ..resolve import preset_model
from .core import count_parameters, gmacs, intra_op_threads, table_with_setting, time_pixel_model

DEFAULT_PRESETS = ("sr-light-x2",)
PEER_FAMILY = "transformers Swin2SR"


def run(
    sizes: Sequence[tuple[int, int]] = ((256, 256), (512, 512)),
    presets: Sequence[str] | None = None,
    budget_s: float = 20.0,
    peers: bool = True,
    max_runs: int = 20,
    tune: bool = True,
    threads: int | None = None,
    macs: bool = True,
) -> list[dict]:
    """Time the SR presets (default: `sr-light-x2`) and, with `peers`, lightweight Swin2SR at every input size.

    Returns one row per (model, size): `model`, `family`, `upscale`, `size` ("256x256->512x512"),
    `params_m`, `gmacs`, `median_ms`, `min_ms`, `runs`, and for our rows `vs_swin2sr` (Swin2SR latency / ours,
    same size and factor). The peer is built at the factor of the first preset. `threads` sets torch's
    intra-op threads for the run (restored afterwards); never time next to another torch job.
    """
    from ..models.efficientvit import SR_PRESETS

    presets = list(presets) if presets is not None else list(DEFAULT_PRESETS)
    unknown = [p for p in presets if p not in SR_PRESETS]
    if unknown:
        raise ValueError(f"Unknown super-resolution presets {unknown}; expected some of {sorted(SR_PRESETS)}.")
    sizes = [tuple(int(v) for v in s) for s in sizes]
    window = SWIN2SR_LIGHTWEIGHT_X2["window_size"]
    if any(min(s) < 1 for s in sizes) or (peers and any(v % window for s in sizes for v in s)):
        raise ValueError(
            f"Input sizes must be positive{f' multiples of {window} (the Swin2SR window)' if peers else ''}, "
            f"got {sizes}."
        )
    tuned = tune_cpu_allocator() if tune else False
    models = [(p, "EfficientViT-SR", lambda p=p: preset_model(p)) for p in presets]
    if peers:
        upscale = SR_PRESETS[presets[0]]["upscale"] if presets else 2
        name = SWIN2SR_NAME.replace("x2", f"x{upscale}")
        models.append((name, PEER_FAMILY, lambda u=upscale: swin2sr_model(u)))
    rows: list[dict] = []
    with intra_op_threads(threads), Progress("bench sr", len(models) * len(sizes), unit="row") as progress:
        for name, family, build in models:
            torch.manual_seed(0)
            model = build()
            scale = model.config.upscale
            params = count_parameters(model) / 1e6
            for size in sizes:
                timing = time_pixel_model(model, size, budget_s, max_runs)
                rows.append({
                    "model": name, "family": family, "upscale": scale,
                    "size": f"{size[0]}x{size[1]}->{size[0] * scale}x{size[1] * scale}",
                    "params_m": params, "gmacs": gmacs(model, (1, 3, *size)) if macs else None,
                    "threads": torch.get_num_threads(), "allocator_tuned": tuned, **timing,
                })
                progress.update()
            del model
    _add_ratios(rows)
    return rows


def _add_ratios(rows: list[dict]) -> None:
    peers = {(row["size"], row["upscale"]): row for row in rows if row["family"] == PEER_FAMILY}
    for row in rows:
        peer = peers.get((row["size"], row["upscale"]))
        if peer is not None and row["family"] != PEER_FAMILY:
            row["vs_swin2sr"] = peer["median_ms"] / row["median_ms"]


COLUMNS = [
    ("model", "model"), ("size", "input -> output"), ("params_m", "params M"), ("gmacs", "GMACs"),
    ("median_ms", "median ms"), ("min_ms", "min ms"), ("runs", "runs"), ("vs_swin2sr", "Swin2SR / ours"),
]


def format_table(rows: list[dict]) -> str:
    """The rows as a markdown table, followed by the setting they were measured in."""
    return table_with_setting(rows, COLUMNS, "Random weights, fp32, eval, torch.inference_mode, batch 1, whole "
                              "image in one pass. Swin2SR / ours > 1: EfficientViT-SR is faster. A row with 1 run "
                              "was too slow for the budget: one timed run after the warm-up is reported.")


__all__ = ["COLUMNS", "DEFAULT_PRESETS", "format_table", "run"]
