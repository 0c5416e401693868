"""Super-resolution latency: EfficientViT-SR against transformers' Swin2SR, measured in the same run.

This module owns `evit-hf bench sr`: `run()` returns rows and `format_table()` renders them. Every model
runs in the same process and setting (random weights, fp32, eval, `torch.inference_mode()`, batch 1) at
each input size (default 256x256 -> 512x512 and 512x512 -> 1024x1024 for x2). The peer is
`Swin2SRForImageSuperResolution` in the lightweight x2 configuration of the released
`caidas/swin2SR-lightweight-x2-64` checkpoint (embed_dim 60, depths [6, 6, 6, 6], 6 heads, window 8, MLP ratio
2, "pixelshuffledirect" upsampler). Rows report parameters, GMACs (convs, matmuls and linears, counted on
the meta device), median / min latency and `vs_swin2sr` (Swin2SR ms / ours at the same size; > 1 means
EfficientViT-SR is faster). Latency of a whole image in one pass (no tiling).

Setting: as the segmentation benchmark, glibc's allocator is tuned (`tune_allocator`), and
`GOMP_SPINCOUNT=10000000` must be set in the environment before Python starts (documented, not set here).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .core import count_macs, count_parameters, markdown_table, measured_setting, time_pixel_model
from .segmentation import tune_allocator

SWIN2SR_LIGHTWEIGHT_X2: dict = {
    "embed_dim": 60,
    "depths": [6, 6, 6, 6],
    "num_heads": [6, 6, 6, 6],
    "window_size": 8,
    "mlp_ratio": 2.0,
    "image_size": 64,
    "upsampler": "pixelshuffledirect",
    "upscale": 2,
    "img_range": 1.0,
    "resi_connection": "1conv",
}
SWIN2SR_NAME = "swin2sr-lightweight-x2"
DEFAULT_PRESETS = ("sr-light-x2",)


def swin2sr_model(upscale: int = 2) -> torch.nn.Module:
    """A random-weight transformers `Swin2SRForImageSuperResolution`, lightweight configuration."""
    from transformers import Swin2SRConfig, Swin2SRForImageSuperResolution

    return Swin2SRForImageSuperResolution(Swin2SRConfig(**{**SWIN2SR_LIGHTWEIGHT_X2, "upscale": upscale})).eval()


def efficientvit_sr_model(preset: str) -> torch.nn.Module:
    from ..models.efficientvit.configuration_efficientvit_sr import EfficientViTSRConfig
    from ..models.efficientvit.modeling_efficientvit_sr import EfficientViTForImageSuperResolution

    return EfficientViTForImageSuperResolution(EfficientViTSRConfig.from_preset(preset)).eval()


def _gmacs(model: torch.nn.Module, size: tuple[int, int]) -> float | None:
    try:
        return count_macs(model, (1, 3, *size)) / 1e9
    except Exception:  # noqa: BLE001  (an op without a meta kernel: leave the column empty)
        return None


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
    from ..models.efficientvit.configuration_efficientvit_sr import SR_PRESETS

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
    tuned = tune_allocator() if tune else False
    models = [(p, "EfficientViT-SR", lambda p=p: efficientvit_sr_model(p)) for p in presets]
    if peers:
        upscale = SR_PRESETS[presets[0]]["upscale"] if presets else 2
        name = SWIN2SR_NAME.replace("x2", f"x{upscale}")
        models.append((name, "transformers Swin2SR", lambda u=upscale: swin2sr_model(u)))

    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    rows: list[dict] = []
    try:
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
                    "params_m": params, "gmacs": _gmacs(model, size) if macs else None,
                    "threads": torch.get_num_threads(), "allocator_tuned": tuned, **timing,
                })
            del model
    finally:
        torch.set_num_threads(previous_threads)
    _add_ratios(rows)
    return rows


def _add_ratios(rows: list[dict]) -> None:
    peers = {(row["size"], row["upscale"]): row for row in rows if row["family"] == "transformers Swin2SR"}
    for row in rows:
        peer = peers.get((row["size"], row["upscale"]))
        if peer is not None and row["family"] != "transformers Swin2SR":
            row["vs_swin2sr"] = peer["median_ms"] / row["median_ms"]


COLUMNS = [
    ("model", "model"), ("size", "input -> output"), ("params_m", "params M"), ("gmacs", "GMACs"),
    ("median_ms", "median ms"), ("min_ms", "min ms"), ("runs", "runs"), ("vs_swin2sr", "Swin2SR / ours"),
]


def format_table(rows: list[dict]) -> str:
    """The rows as a markdown table, followed by the setting they were measured in."""
    note = ("Random weights, fp32, eval, torch.inference_mode, batch 1, whole image in one pass. Swin2SR / ours > 1: "
            "EfficientViT-SR is faster. A row with 1 run was too slow for the budget: one timed run after the "
            "warm-up is reported.")
    return markdown_table(rows, COLUMNS) + f"\n\n{note}\nsetting: {measured_setting(rows)}"


def main() -> None:  # python -m evit_hf.bench.super_resolution
    print(format_table(run()))


if __name__ == "__main__":
    main()


__all__ = ["run", "format_table", "swin2sr_model", "efficientvit_sr_model", "SWIN2SR_LIGHTWEIGHT_X2"]
