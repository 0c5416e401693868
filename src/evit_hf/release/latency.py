"""CPU latency for the model cards, read from the measurement files (`docs/results/*.json`, never typed in).

Each family's card quotes one results file with the setting it was measured in: classifiers the model zoo run
(`evit-hf demo`, the same rows as `evit-hf bench cls`), segmenters `evit-hf bench seg` (against SegFormer), SAM
`evit-hf bench sam` (against SAM ViT-B) and super-resolution `evit-hf bench sr` (against Swin2SR). The README and
the docs pages render the same files (`evit_hf.release.render`), so a card and the docs cannot disagree.
Random weights everywhere: latency does not depend on the weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from .results import Results, load


@dataclass(frozen=True)
class Timing:
    """One benchmark row: a model on one input size."""

    model: str         # the preset (`b1`, `seg-b1-cityscapes`, `sam-l0`, `sr-light-x2`)
    input: str         # e.g. "224x224", "512x1024", "256x256 -> 512x512"
    median_ms: float
    min_ms: float
    runs: int
    comparison: str = ""  # a peer measured in the same run, e.g. "SegFormer-B0 / ours = 6.75 (same run)"


@dataclass(frozen=True)
class BenchTable:
    """One family's rows from one results file, with what a card says about how they were measured."""

    results: Results
    rows: tuple[Timing, ...]
    note: str  # the run's caveats (and, for SAM, the prompt-to-mask latency of the same run)

    @property
    def command(self) -> str:
        """The command without its output options (`evit-hf bench seg`)."""
        return self.results.command.split(" --json", 1)[0].split(" (", 1)[0]

    @property
    def setting(self) -> str:
        return f"{self.results.machine}; {self.results.setting}"

    def for_model(self, model: str) -> tuple[Timing, ...]:
        return tuple(row for row in self.rows if row.model == model)


def _ratio(peer: str, value: float | None) -> str:
    return f"{peer} / ours = {value:g} (same run)" if value is not None else ""


def _cls() -> BenchTable:
    data = load("zoo")
    rows = tuple(Timing(r["preset"], f"{r['resolution']}x{r['resolution']}", r["median_ms"], r["min_ms"], r["runs"])
                 for r in data.select(model="classifier"))
    return BenchTable(data, rows, " ".join(data.notes))


def _seg() -> BenchTable:
    data = load("bench-seg")
    rows = tuple(Timing(r["model"], r["size"], r["median_ms"], r["min_ms"], r["runs"],
                        _ratio("SegFormer-B0", r.get("vs_segformer-b0")))
                 for r in data.select(family="EfficientViT-Seg"))
    return BenchTable(data, rows, " ".join(data.notes))


def _sam() -> BenchTable:
    data = load("bench-sam")
    reference = data.select(kind="encoder")[0]["model"]  # the peer: the first encoder row, as `bench sam` writes
    rows = tuple(Timing("sam-" + r["model"].removeprefix("EfficientViT-SAM-").lower(),
                        f"{r['resolution']}x{r['resolution']}", r["median_ms"], r["min_ms"], r["runs"],
                        _ratio(reference, r.get("speedup_vs_vitb")))
                 for r in data.select(kind="encoder") if r["model"] != reference)
    prompts = [r for r in data.select(kind="prompt") if r["model"] != reference]
    timed = ", ".join(f"{r['prompt']} {r['median_ms']:.1f} ms median" for r in prompts)
    note = (f"Prompt to masks from precomputed embeddings, in the same run ({prompts[0]['model']}): {timed}. "
            if prompts else "")
    return BenchTable(data, rows, note + " ".join(data.notes))


def _sr() -> BenchTable:
    data = load("bench-sr")
    rows = tuple(Timing(r["model"], r["size"].replace("->", " -> "), r["median_ms"], r["min_ms"], r["runs"],
                        _ratio("Swin2SR lightweight x2", r.get("vs_swin2sr")))
                 for r in data.select(family="EfficientViT-SR"))
    return BenchTable(data, rows, " ".join(data.notes))


_FAMILIES: dict[str, Callable[[], BenchTable]] = {"cls": _cls, "seg": _seg, "sam": _sam, "sr": _sr}


@cache
def table(family: str) -> BenchTable:
    """The benchmark table the cards of `family` (`cls`, `seg`, `sam`, `sr`) quote."""
    return _FAMILIES[family]()


def tables() -> dict[str, BenchTable]:
    return {family: table(family) for family in _FAMILIES}


def timings(family: str, model: str) -> tuple[BenchTable, tuple[Timing, ...]]:
    """The benchmark table of `family` and its rows for `model` (`b1`, `seg-b1-cityscapes`, `sam-l0`, ...)."""
    found = table(family)
    return found, found.for_model(model)
