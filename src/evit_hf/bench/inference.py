"""CPU inference speed against the original implementation on identical weights (`evit-hf bench cpu`).

This module owns the speed benchmark of the inference-optimised graph: for each case (a released variant at
an input size) it builds the original mit-han-lab model with deterministic random weights, converts its
state dict with our converter, and times, in the same process and interleaved round by round (so that a
change in machine load hits every row alike):

- `original`: the original implementation's forward (skipped, with the reason, where it is not importable:
  see `reference.original`);
- `evit-hf plain`: our model with `set_inference_optimizations(False)` (the op-by-op graph of the original);
- `evit-hf`: our default eval-mode graph (BatchNorm folded, channels-last, oneDNN-fused conv + activation);
- `evit-hf compiled` (with `compile=True`): `torch.compile` with Inductor freezing; its warm-up is reported.

Every row carries its max abs difference from the reference output, its GMACs (counted on the meta device),
the achieved GMAC/s and the share of the machine's fp32 GEMM peak, measured at the start of the run with a
2048^3 matmul. The setting (threads, OpenMP spin / wait policy, allocator tuning) is printed with the table.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..optimization import tune_cpu_allocator
from ..progress import track
from ..reference import randomize_
from ..reference.mask_generation import SamEncoder
from ..reference.original import OriginalUnavailable, build_original
from .core import count_macs, intra_op_threads, markdown_table, measured_setting, p90, time_callable, time_round_robin

# (variant, (height, width)): what issue 11 asks for, at the resolutions the models are used at.
DEFAULT_CASES: tuple[tuple[str, tuple[int, int]], ...] = (
    ("seg-b0-cityscapes", (512, 1024)),
    ("seg-b0-cityscapes", (1024, 2048)),
    ("seg-b1-cityscapes", (512, 1024)),
    ("seg-b1-cityscapes", (1024, 2048)),
    ("seg-b2-cityscapes", (512, 1024)),
    ("seg-b2-cityscapes", (1024, 2048)),
    ("sam-l0", (512, 512)),
    ("sam-xl1", (1024, 1024)),
    ("cls-b1", (224, 224)),
)
GEMM_SIZE = 2048


def parse_case(text: str) -> tuple[str, tuple[int, int]]:
    """`"seg-b1-cityscapes@1024x2048"` -> ("seg-b1-cityscapes", (1024, 2048)); a bare variant takes its
    default size from `DEFAULT_CASES` (the largest one listed)."""
    variant, _, size = text.partition("@")
    if not size:
        sizes = [s for v, s in DEFAULT_CASES if v == variant]
        if not sizes:
            raise ValueError(f"No default size for {variant!r}: write it as {variant}@HEIGHTxWIDTH.")
        return variant, sizes[-1]
    try:
        height, width = (int(v) for v in size.lower().split("x"))
    except ValueError as err:
        raise ValueError(
            f"Bad case {text!r}: expected VARIANT@HEIGHTxWIDTH, e.g. seg-b1-cityscapes@1024x2048."
        ) from err
    return variant, (height, width)


def gemm_peak_gmacs(size: int = GEMM_SIZE, budget_s: float = 2.0) -> float:
    """The machine's fp32 matmul rate in GMAC/s (a `size`^3 GEMM, median of repeated runs)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    with torch.inference_mode():
        timing = time_callable(lambda: a @ b, warmup=2, budget_s=budget_s, min_runs=3)
    return size**3 / (timing["median_ms"] / 1e3) / 1e9


def original_pair(variant: str, seed: int = 0) -> tuple[nn.Module, nn.Module, str]:
    """(original model, evit-hf model with the same weights, source of the original), both in eval mode:
    the original with `randomize_` weights, ours converted from its state dict with our converter.

    `sam-*` variants give the image encoders (`model.image_encoder` / `model.get_image_embeddings`).
    """
    from ..convert import from_original

    original, source = build_original(variant)
    randomize_(original, seed)
    ours = from_original(original.state_dict(), variant)
    if variant.startswith("sam-"):
        return original.image_encoder.eval(), SamEncoder(ours).eval(), source
    return original, ours.eval(), source


def _output(result) -> torch.Tensor:
    return getattr(result, "logits", result)


def bench_case(
    variant: str,
    size: tuple[int, int],
    budget_s: float = 20.0,
    max_rounds: int = 20,
    compile: bool = False,
    peak_gmacs: float | None = None,
) -> list[dict]:
    """Rows (one per implementation) for one variant at one input size; see the module docstring."""
    try:
        original, ours, source = original_pair(variant)
        note = ""
    except OriginalUnavailable as err:
        original, source, note = None, "", str(err)
        ours = _ours_without_original(variant)
    is_sam = variant.startswith("sam-")
    target = ours.sam if is_sam else ours
    plain = copy.deepcopy(ours)
    (plain.sam if is_sam else plain).set_inference_optimizations(False)
    target.set_inference_optimizations(True)
    pixels = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0))

    def call(model) -> Callable[[], object]:
        return (lambda: model(pixels)) if is_sam else (lambda: model(pixel_values=pixels))

    functions: dict[str, Callable[[], object]] = {}
    if original is not None:
        functions["original"] = lambda: original(pixels)
    functions["evit-hf plain"] = call(plain)
    functions["evit-hf"] = call(ours)
    warmup_s: dict[str, float] = {}
    if compile:
        from ..optimization import compile_for_inference

        functions["evit-hf compiled"] = call(compile_for_inference(ours))
    macs = count_macs(plain, (1, 3, *size)) / 1e9
    with torch.inference_mode():
        outputs = {}
        for name, fn in functions.items():  # warm-up (first allocations, kernel selection, compilation)
            t0 = time.perf_counter()
            outputs[name] = _output(fn())
            warmup_s[name] = time.perf_counter() - t0
            fn()
        times = time_round_robin(functions, budget_s, max_rounds)
    reference_name = "original" if original is not None else "evit-hf plain"
    reference = outputs[reference_name]
    reference_ms = statistics.median(times[reference_name])
    rows = []
    for name, values in times.items():
        median = statistics.median(values)
        rows.append({
            "model": variant, "input": f"{size[0]}x{size[1]}", "impl": name, "median_ms": median,
            "p90_ms": p90(values), "min_ms": min(values), "runs": len(values), "gmacs": macs,
            "gmac_per_s": macs / (median / 1e3), "peak_share": (macs / (median / 1e3)) / peak_gmacs
            if peak_gmacs else None, "speedup": reference_ms / median, "reference": reference_name,
            "max_abs_diff": float((outputs[name] - reference).abs().max()),
            "warmup_s": warmup_s[name] if name == "evit-hf compiled" else None,
            "original_source": source, "threads": torch.get_num_threads(), "note": note,
        })
    return rows


def _ours_without_original(variant: str) -> torch.nn.Module:
    """Our model of `variant` with deterministic random weights (when the original cannot be imported)."""
    from ..convert import get_variant

    model = randomize_(get_variant(variant).build_model(), seed=0).eval()
    return SamEncoder(model).eval() if variant.startswith("sam-") else model


def run(
    cases: Sequence[tuple[str, tuple[int, int]]] = DEFAULT_CASES,
    budget_s: float = 20.0,
    max_rounds: int = 20,
    compile: bool = False,
    threads: int | None = None,
    tune: bool = True,
) -> list[dict]:
    """Every case's rows, after measuring the GEMM peak, with `threads` intra-op threads (restored after)."""
    tuned = tune_cpu_allocator() if tune else False
    with intra_op_threads(threads):
        peak = gemm_peak_gmacs()
        rows = []
        for variant, size in track(cases, "bench cpu", unit="case"):
            for row in bench_case(variant, size, budget_s, max_rounds, compile, peak):
                rows.append({**row, "gemm_peak_gmacs": peak, "allocator_tuned": tuned})
    return rows


COLUMNS = [
    ("model", "model"), ("input", "input"), ("impl", "implementation"), ("median_ms", "median ms"),
    ("p90_ms", "p90 ms"), ("runs", "runs"), ("speedup", "speed-up vs reference"), ("gmacs", "GMACs"),
    ("gmac_per_s", "GMAC/s"), ("peak_share", "share of GEMM peak"), ("max_abs_diff", "max abs diff"),
    ("warmup_s", "compile warm-up s"),
]


def format_table(rows: list[dict]) -> str:
    """The rows as a markdown table, followed by how they were measured."""
    table = markdown_table(rows, COLUMNS)
    notes = sorted({row["note"] for row in rows if row.get("note")})
    peak = rows[0]["gemm_peak_gmacs"] if rows else 0.0
    sources = sorted({row["original_source"] for row in rows if row.get("original_source")})
    text = (
        f"{table}\n\nBatch 1, fp32, eval, torch.inference_mode, deterministic random weights shared by every row "
        f"of a model (our converter maps the original state dict); rows of one model are timed round-robin in "
        f"the same process. Reference: the original implementation ({', '.join(sources) or 'not importable'}), "
        f"else evit-hf plain. GEMM peak: {peak:.1f} GMAC/s ({GEMM_SIZE}^3 fp32 matmul, same run).\n"
        f"setting: {measured_setting(rows)}"
    )
    if notes:
        text += "\n" + "\n".join(f"note: {n}" for n in notes)
    return text


__all__ = ["DEFAULT_CASES", "SamEncoder", "bench_case", "format_table", "gemm_peak_gmacs", "original_pair",
           "parse_case", "run"]
