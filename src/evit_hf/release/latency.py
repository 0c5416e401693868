"""CPU latency measured by this repository's benchmarks, as published in README.md (data, never re-run here).

Each table keeps the setting it was measured under, word for word where README.md states it, so a card can
quote the number with its setting. Sources: the "Model zoo on this machine" table (`evit-hf demo`, the same
rows as `evit-hf bench cls`) and the "Speed" tables (`evit-hf bench seg`, `evit-hf bench sam`,
`evit-hf bench sr`). Random weights everywhere: latency does not depend on the weights.
"""

from __future__ import annotations

from dataclasses import dataclass

_MACHINE = "this repository's 2-core AVX-512 VM"


@dataclass(frozen=True)
class Timing:
    """One benchmark row: a model on one input size."""

    model: str         # the benchmark's row name (preset)
    input: str         # e.g. "224x224", "512x1024", "256x256 -> 512x512"
    median_ms: float
    min_ms: float
    runs: int
    comparison: str = ""  # a peer measured in the same run, e.g. "6.75x faster than SegFormer-B0"


@dataclass(frozen=True)
class BenchTable:
    """Rows measured in one run, with the command and the setting README.md gives for it."""

    command: str
    source: str  # which table of README.md
    setting: str
    note: str
    rows: tuple[Timing, ...]

    def for_model(self, model: str) -> tuple[Timing, ...]:
        return tuple(row for row in self.rows if row.model == model)


CLS = BenchTable(
    command="evit-hf bench cls",
    source="the model zoo table, made by evit-hf demo with the same code",
    setting=f"random weights, batch 1, fp32, eval, torch.inference_mode, 2 threads, {_MACHINE} "
            "(GOMP_SPINCOUNT=10000000), input 224x224",
    note="Measured at 224x224 only.",
    rows=tuple(Timing(m, "224x224", med, mn, runs) for m, med, mn, runs in (
        ("b0", 22.7, 16.5, 20), ("b1", 38.2, 32.5, 20), ("b2", 81.6, 75.6, 19), ("b3", 153.1, 140.7, 10),
        ("l1", 188.4, 178.4, 8), ("l2", 255.6, 247.6, 6), ("l3", 604.3, 573.0, 3),
    )),
)

_SEG_ROWS = (
    # preset, (median, min, runs, SegFormer-B0 / ours) at 512x1024, then at 1024x2048
    ("seg-b0-cityscapes", (115.7, 100.7, 20, 6.75), (423.3, 391.7, 10, 14.9)),
    ("seg-b1-cityscapes", (257.7, 233.2, 15, 3.03), (1373.4, 1278.8, 3, 4.59)),
    ("seg-b2-cityscapes", (563.7, 545.6, 8, 1.39), (2225.7, 2225.7, 1, 2.83)),
    ("seg-b3-cityscapes", (1280.0, 1236.9, 4, 0.61), (4850.1, 4850.1, 1, 1.3)),
    ("seg-l1-cityscapes", (1490.0, 1490.0, 1, 0.524), (6626.0, 6626.0, 1, 0.951)),
    ("seg-l2-cityscapes", (2292.7, 2292.7, 1, 0.341), (9419.5, 9419.5, 1, 0.669)),
    ("seg-b1-ade20k", (309.5, 288.5, 13, 2.52), (1182.0, 1128.7, 4, 5.33)),
    ("seg-b2-ade20k", (705.1, 681.2, 6, 1.11), (2520.2, 2520.2, 1, 2.5)),
    ("seg-b3-ade20k", (1305.6, 1293.4, 4, 0.598), (4974.4, 4974.4, 1, 1.27)),
    ("seg-l1-ade20k", (1811.1, 1811.1, 1, 0.431), (7512.8, 7512.8, 1, 0.839)),
    ("seg-l2-ade20k", (2141.1, 2141.1, 1, 0.365), (7963.2, 7963.2, 1, 0.792)),
)


def _vs(ratio: float, peer: str) -> str:
    return f"SegFormer-B0 / ours = {ratio:g} (same run)" if peer == "segformer" else f"{peer} / ours = {ratio:g}"


SEG = BenchTable(
    command="evit-hf bench seg",
    source="section Speed, semantic segmentation vs SegFormer",
    setting=f"random weights, batch 1, fp32, eval, torch.inference_mode, 2 threads, {_MACHINE}, "
            "GOMP_SPINCOUNT=10000000 set before Python starts, glibc mallopt tuning applied by the benchmark",
    note="Absolute numbers in this run were about 2x slower than the same machine type measured in the "
         "project's baseline, for every model, peers included: compare ratios, not milliseconds across runs.",
    rows=tuple(
        Timing(preset, size, med, mn, runs, _vs(ratio, "segformer"))
        for preset, *measured in _SEG_ROWS
        for size, (med, mn, runs, ratio) in zip(("512x1024", "1024x2048"), measured, strict=True)
    ),
)

SAM = BenchTable(
    command="evit-hf bench sam",
    source="section Speed, EfficientViT-SAM vs SAM ViT-B",
    setting=f"random weights, batch 1, fp32, eval, torch.inference_mode, 2 threads, {_MACHINE}, "
            "GOMP_SPINCOUNT=10000000 set before Python starts; image encoder (get_image_embeddings) at the "
            "variant's own input resolution",
    note="Prompt to masks from precomputed embeddings (the shared SAM mask decoder, the same for every variant): "
         "1 point (multimask) 105.7 ms median, 1 box 95.0 ms median, in the same run.",
    rows=(
        Timing("sam-l0", "512x512", 973.0, 953.7, 3, "SAM ViT-B (transformers) / ours = 26.2 (same run)"),
        Timing("sam-l1", "512x512", 1639.6, 1568.5, 2, "SAM ViT-B (transformers) / ours = 15.5 (same run)"),
        Timing("sam-l2", "512x512", 1550.1, 1503.1, 2, "SAM ViT-B (transformers) / ours = 16.4 (same run)"),
        Timing("sam-xl0", "1024x1024", 4410.5, 4410.5, 1, "SAM ViT-B (transformers) / ours = 5.78 (same run)"),
        Timing("sam-xl1", "1024x1024", 6218.2, 6218.2, 1, "SAM ViT-B (transformers) / ours = 4.1 (same run)"),
    ),
)

SR = BenchTable(
    command="evit-hf bench sr",
    source="section Speed, super-resolution vs Swin2SR",
    setting=f"random weights, batch 1, fp32, eval, torch.inference_mode, 2 threads, {_MACHINE}, "
            "GOMP_SPINCOUNT=10000000 set before Python starts; whole image in one pass (no tiles)",
    note="Measured for the preset as it is now (exact GELU).",
    rows=(
        Timing("sr-light-x2", "256x256 -> 512x512", 1698.6, 1546.9, 12,
               "Swin2SR lightweight x2 / ours = 3.85 (same run)"),
        Timing("sr-light-x2", "512x512 -> 1024x1024", 10127.1, 10127.1, 1,
               "Swin2SR lightweight x2 / ours = 3.17 (same run)"),
    ),
)

TABLES: dict[str, BenchTable] = {"cls": CLS, "seg": SEG, "sam": SAM, "sr": SR}


def timings(family: str, model: str) -> tuple[BenchTable, tuple[Timing, ...]]:
    """The benchmark table of `family` and its rows for `model` (`b1`, `seg-b1-cityscapes`, `sam-l0`, ...)."""
    table = TABLES[family]
    return table, table.for_model(model)
