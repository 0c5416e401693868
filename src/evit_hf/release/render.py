"""Measurements rendered into text: the tables of README.md and the docs pages, and the model cards.

A page shows a measured table as a region between two markers; what lies between them is generated:

    <!-- results:bench-seg -->
    (the table, then where and how it was measured, with a link to the data)
    <!-- /results -->

The name after `results:` is a view in `VIEWS`: a table drawn from one or more results files
(`evit_hf.release.results`, `docs/results/*.json`). `python -m evit_hf.release.render` regenerates every region
of README.md and docs/**/*.md and the model cards in hub_cards/ (whose latency lines read the same files through
`evit_hf.release.latency`); `--check` writes nothing and exits 1 naming what differs (`make test` runs it, as do
tests/test_docs.py and tests/test_hub_cards.py). After a re-run of a benchmark into its results file, that one
command updates every place that shows the numbers.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .results import REPO_ROOT, Results, load

REGION = re.compile(r"<!-- results:(?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /results -->", re.S)
OPENING = re.compile(r"<!-- results:(?P<name>[^ ]*) -->")
CLOSING = re.compile(r"<!-- /results -->")
FENCE = re.compile(r"^(`{3,}|~{3,})[^\n]*\n.*?^\1[ \t]*$", re.M | re.S)


# ------------------------------------------------------------------------------------------------ tables
@dataclass(frozen=True)
class Column:
    """A table column: its header, the row's value (a field name or a function of the row), and its format."""

    header: str
    value: str | Callable[[dict], object]
    fmt: str | Callable[[object], str] | None = None  # None: the benchmarks' rule (see `number`)

    def cell(self, row: dict) -> str:
        value = self.value(row) if callable(self.value) else row.get(self.value)
        if value is None:
            return ""
        if callable(self.fmt):
            return self.fmt(value)
        if self.fmt is not None:
            return format(value, self.fmt)
        return number(value) if isinstance(value, float) else str(value)


def number(value: float) -> str:
    """The benchmarks' rule: 3 significant digits below 10, one decimal above (`evit-hf bench` prints so)."""
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def markdown_table(rows: Sequence[dict], columns: Sequence[Column]) -> str:
    lines = ["| " + " | ".join(column.header for column in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(column.cell(row) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def _sig3(value: float) -> str:
    """Milliseconds as the mixer study prints them: 3 significant digits (trailing zeros kept), whole above 100."""
    return f"{value:#.3g}" if abs(value) < 100 else f"{value:.0f}"


def _pair(first: str, second: str, fmt: str) -> Callable[[dict], str]:
    return lambda row: f"{format(row[first], fmt)} / {format(row[second], fmt)}"


# ------------------------------------------------------------------------------------------------ views
@dataclass(frozen=True)
class Table:
    """What a region shows: markdown, and the results files it was drawn from (for the caption)."""

    markdown: str
    sources: tuple[Results, ...]
    caption: str = "full"  # "full": command, date, machine, setting, notes; "link": the data link only


def _columns(*spec: tuple) -> list[Column]:
    return [Column(*item) for item in spec]


def _zoo() -> Table:
    data = load("zoo")
    return Table(markdown_table(data.rows, _columns(
        ("preset", "preset"), ("model", "model"), ("params (M)", "params_m"), ("GMACs", "gmacs"),
        ("input", "resolution"), ("median ms", "median_ms"), ("min ms", "min_ms"), ("runs", "runs"))), (data,))


def _bench_seg() -> Table:
    data = load("bench-seg")
    return Table(markdown_table(data.rows, _columns(
        ("model", "model"), ("input", "size"), ("params M", "params_m"), ("median ms", "median_ms"),
        ("min ms", "min_ms"), ("runs", "runs"), ("SegFormer-B0 / ours", "vs_segformer-b0"),
        ("SegFormer-B1 / ours", "vs_segformer-b1"), ("SegFormer-B2 / ours", "vs_segformer-b2"),
        ("growth (largest/smallest size)", "growth"))), (data,))


def _bench_sam(kind: str) -> Callable[[], Table]:
    columns = {
        "encoder": (("image encoder", "model"), ("input", "resolution"), ("params (M)", "params_m"),
                    ("GMACs", "gmacs"), ("median ms", "median_ms"), ("min ms", "min_ms"), ("runs", "runs"),
                    ("speed-up vs ViT-B", "speedup_vs_vitb")),
        "prompt": (("prompt -> masks (precomputed embeddings)", "model"), ("prompt", "prompt"),
                   ("median ms", "median_ms"), ("min ms", "min_ms"), ("runs", "runs")),
    }[kind]

    def view() -> Table:
        data = load("bench-sam")
        return Table(markdown_table(data.select(kind=kind), _columns(*columns)), (data,),
                     "full" if kind == "encoder" else "link")

    return view


def _bench_sam_everything() -> Table:
    """Segment everything: the implementations' times and split, then the decoder floor and the machine load."""
    data = load("bench-sam-everything")
    seconds = lambda key: lambda row: None if row.get(key) is None else f"{row[key] / 1e3:.2f}"  # noqa: E731
    times = markdown_table(data.select(kind="everything"), _columns(
        ("segment everything", "implementation"), ("model", "model"), ("grid", "grid"), ("masks", "masks"),
        ("total s", seconds("total_ms")), ("embedding s", seconds("embedding_ms")),
        ("decoder s", seconds("decoder_ms")), ("post-processing s", seconds("postprocess_ms")),
        ("speed-up vs transformers", "speedup_vs_pipeline", ".2f"), ("total / decoder floor", "vs_floor", ".2f"),
        ("CPU s", "cpu_s", ".1f"), ("speed-up in CPU s", "cpu_speedup_vs_pipeline", ".2f"),
        ("CPU s / floor", "cpu_vs_floor", ".2f")))
    floor = markdown_table(data.select(kind="floor"), _columns(
        ("prompts", "prompts"), ("stock decoder GMACs / prompt", "stock_gmacs_per_prompt", ".2f"),
        ("evit-hf GMACs / prompt", "ours_tokens_gmacs_per_prompt", ".2f"),
        ("+ per prompt with a kept mask", "ours_masks_gmacs_per_kept_prompt", ".2f"),
        ("fp32 GEMM GMAC/s (start, end)", lambda row: f"{row['gemm_gmacs_start']:.1f}, {row['gemm_gmacs_end']:.1f}"),
        ("decoder floor s", seconds("floor_ms")), ("floor CPU s", "floor_cpu_s", ".1f"), ("threads", "threads"),
        ("load average (before, after)", lambda row: f"{row['loadavg_before']:.2f}, {row['loadavg_after']:.2f}"),
        ("other processes (cores)", "other_processes_cores", ".2f")))
    return Table(times + "\n\n" + floor, (data,))


def _bench_sr() -> Table:
    data = load("bench-sr")
    return Table(markdown_table(data.rows, _columns(
        ("model", "model"), ("input -> output", "size"), ("params M", "params_m"), ("GMACs", "gmacs"),
        ("median ms", "median_ms"), ("min ms", "min_ms"), ("runs", "runs"), ("Swin2SR / ours", "vs_swin2sr"))),
        (data,))


def _bench_backends() -> Table:
    data = load("bench-backends")
    return Table(markdown_table(data.rows, _columns(
        ("model", "model"), ("backend", "backend"), ("precision", "precision"), ("batch", "batch"),
        ("resolution", "resolution"), ("threads", "threads"), ("warm-up", "warmup"), ("iterations", "iterations"),
        ("median ms", "median_ms"), ("p90 ms", "p90_ms"), ("img/s", "throughput"), ("peak MB", "peak_mb"),
        ("ratio to PyTorch eager", "ratio"), ("max abs diff", "max_abs_diff"))), (data,))


CPU_COLUMNS = _columns(
    ("model", "model"), ("input", "input"), ("implementation", "impl"), ("median ms", "median_ms"),
    ("p90 ms", "p90_ms"), ("runs", "runs"), ("speed-up vs reference", "speedup"), ("GMACs", "gmacs"),
    ("GMAC/s", "gmac_per_s"), ("share of GEMM peak", "peak_share"), ("max abs diff", "max_abs_diff"),
    ("compile warm-up s", "warmup_s"))


def _bench_cpu(name: str) -> Callable[[], Table]:
    def view() -> Table:
        data = load(name)
        return Table(markdown_table(data.rows, CPU_COLUMNS), (data,))

    return view


def _bench_cpu_repeats() -> Table:
    data = load("bench-cpu-repeats")
    models = list(dict.fromkeys(row["model"] for row in data.rows))
    header = {"sam-l0": "SAM-L0 encoder", "seg-b1-cityscapes": "seg-B1 1024x2048"}
    runs = list(dict.fromkeys(row["run"] for row in data.rows))
    lines = ["| run | " + " | ".join(header.get(m, m) for m in models) + " |", "|" + "---|" * (len(models) + 1)]
    for run in runs:
        cells = []
        for model in models:
            row = data.one(run=run, model=model)
            cells.append(f"{row['speedup']:.2f}x ({row['reference_ms']:.1f} -> {row['median_ms']:.1f} ms)")
        label = data.select(run=run)[0].get("label")
        lines.append(f"| {run}{f' ({label})' if label else ''} | " + " | ".join(cells) + " |")
    medians = [statistics.median(row["speedup"] for row in data.select(model=m)) for m in models]
    lines.append("| median | " + " | ".join(f"{m:g}x" for m in medians) + " |")
    return Table("\n".join(lines), (data,))


def _bench_settings() -> Table:
    data = load("bench-settings")
    return Table(markdown_table(data.rows, _columns(
        ("setting", "setting"), ("threads", "threads"), ("model", "model"), ("input", "input"),
        ("median ms", "median_ms"), ("min ms", "min_ms"), ("runs", "runs"), ("time / fastest", "vs_fastest"))),
        (data,))


def _bench_pipeline() -> Table:
    data = load("bench-pipeline")
    return Table(markdown_table(data.rows, _columns(
        ("task", "case"), ("model", "model"), ("image", "input"), ("process", "environment"),
        ("pipeline ms", "end_to_end_ms"), ("forward ms", "forward_ms"), ("pre ms", "pre_ms"), ("post ms", "post_ms"),
        ("pipeline / forward", "end_to_end_per_forward", ".2f"), ("pipeline / tuned", "vs_tuned", ".2f"),
        ("rounds", "rounds"), ("load (before / after)", "load_1min"))), (data,))


def _mixers(target: str) -> Callable[[], Table]:
    def view() -> Table:
        data = load("mixers-scaling")
        rows = data.select(target=target)
        sizes = list(dict.fromkeys(row["size"] for row in rows))
        mixers = list(dict.fromkeys(row["mixer"] for row in rows))
        largest, second = sizes[-1], sizes[-2]
        side = {size: size.split("x")[0] for size in sizes}
        summary = []
        for mixer in mixers:
            by_size = {row["size"]: row for row in rows if row["mixer"] == mixer}
            last = by_size[largest]
            summary.append({
                "mixer": mixer, **{f"ms@{size}": by_size[size]["median_ms"] for size in sizes},
                "exponents": f"{last['exponent']:.2f} / {last['exponent_last']:.2f}",
                "vs_lite_mla": last["vs_lite_mla"],
                "peak": f"{by_size[second]['peak_mb']:.0f} / {last['peak_mb']:.0f}",
                "gmacs": f"{last['gmacs']:.1f}" + (" + FFTs" if mixer == "hyena" else ""),
            })
        columns = [Column("mixer", "mixer")]
        columns += [Column(f"{side[size]}² ms", f"ms@{size}", _sig3) for size in sizes]
        columns += [Column("exponent (all / two largest)", "exponents"),
                    Column(f"ms / lite_mla ms at {side[largest]}²", "vs_lite_mla", "#.3g"),
                    Column(f"peak MB at {side[second]}² / {side[largest]}²", "peak"),
                    Column(f"GMACs at {side[largest]}²", "gmacs")]
        return Table(markdown_table(summary, columns), (data,), "full" if target == "stage" else "link")

    return view


def _per_class(rows: Sequence[dict]) -> list[Column]:
    classes = list(dict.fromkeys(name for row in rows for name in row.get("per_class_iou", {})))
    return [Column(name, lambda row, name=name: row["per_class_iou"].get(name), ".1f") for name in classes]


def _mixers_training(kind: str) -> Callable[[], Table]:
    def view() -> Table:
        data = load("mixers-training")
        runs = data.select(kind="run")
        if kind == "mean":
            seeds = sorted({row["seed"] for row in runs})

            def seed_ious(row: dict) -> str:
                return " / ".join(f"{data.one(kind='run', mixer=row['mixer'], seed=s)['mean_iou']:.1f}" for s in seeds)

            table = markdown_table(data.select(kind="mean"), _columns(
                ("mixer", "mixer"), ("params M", "params_m"), ("steps", "steps"), ("seeds", "runs"),
                ("mean training time s", "train_s", ".0f"),
                (f"mIoU % per seed ({' / '.join(map(str, seeds))})", seed_ious), ("mean mIoU %", "mean_iou", ".1f")))
            return Table(table, (data,))
        columns = _columns(("mixer", "mixer"), ("seed", "seed"), ("training time s", "train_s", ".0f"),
                           ("mIoU %", "mean_iou", ".1f"), ("pixel acc. %", "pixel_accuracy", ".1f"))
        return Table(markdown_table(runs, columns + _per_class(runs)), (data,), "link")

    return view


def _sr_heldout() -> Table:
    data = load("sr-heldout")

    def name(row: dict) -> str:
        return "mean" if row["kind"] == "mean" else f"{row['photo']} ({row['size']})"

    def gain(row: dict) -> str:
        text = f"{row['psnr_gain_db']:+.2f} dB"
        return f"**{text}**" if row["kind"] == "mean" else text

    return Table(markdown_table(data.rows, _columns(
        ("held-out photograph", name),
        ("bicubic", lambda row: f"{row['bicubic_psnr_y']:.2f} dB / {row['bicubic_ssim_y']:.4f}"),
        ("EfficientViT-SR x2", lambda row: f"{row['psnr_y']:.2f} dB / {row['ssim_y']:.4f}"),
        ("gain", gain))), (data,))


def train_seg_table(data: Results) -> str:
    """The table of a segmentation training record (what `evit-hf demo` writes: one row per held-out evaluation,
    the last with the training time): the demo prints it, and the docs render it from docs/results/."""
    return markdown_table(data.rows, _columns(
        ("epoch", "epoch"), ("steps", "steps"), ("training time", "train_s", lambda seconds: f"{seconds} s"),
        ("mIoU", "mean_iou", ".2f"), ("pixel acc.", "pixel_accuracy", ".2f"))
        + [Column(column.header, column.value, ".2f") for column in _per_class(data.rows)])


def _train_seg() -> Table:
    data = load("train-seg-synthetic")
    return Table(train_seg_table(data), (data,))


def _train_sam(name: str) -> Callable[[], Table]:
    metrics = {"train-sam-finetune": (("held-out mask mIoU, GT box prompt (%)", "box_miou", ".1f"),
                                      ("held-out mask mIoU, one click (%)", "click_miou", ".1f")),
               "train-sam-distill": (("held-out embedding MSE", "embedding_mse", ".3f"),
                                     ("held-out mean cosine to the teacher", "cosine", ".3f"))}[name]

    def view() -> Table:
        data = load(name)
        run = data.one(kind="run")
        evals = data.select(kind="eval")
        arguments = data.command.split("training/sam.py", 1)[1].strip()
        title = (f"stage {1 if run['stage'] == 'distill' else 2}: `{arguments}` ({run['epochs']} epochs, "
                 f"{run['steps']} steps, {run['train_s']} s)")
        header = [title] + ["start" if row["epoch"] == 0 else f"epoch {row['epoch']}" for row in evals]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join([label] + [format(row[key], fmt) for row in evals]) + " |"
                  for label, key, fmt in metrics]
        for student in data.select(kind="student"):
            lines += ["", f"With only its encoder distilled (the teacher's prompt encoder and mask decoder copied in), "
                      f"the student reaches {student['box_miou']:.1f}% box / {student['click_miou']:.1f}% click mIoU "
                      f"on the held-out masks, against the teacher's {student['teacher_box_miou']:.1f}% / "
                      f"{student['teacher_click_miou']:.1f}%."]
        return Table("\n".join(lines), (data,))

    return view


# The peers and references the headline table names, as readers know them.
_PEER_NAMES = {"segformer-b1": "SegFormer-B1", "sam-vit-b": "SAM ViT-B", "swin2sr-lightweight-x2":
               "Swin2SR lightweight x2", "original": "the original implementation, same weights"}
_TASKS = {"seg": "semantic segmentation", "sam": "SAM image encoder", "sr": "super-resolution x2"}
# The `bench cpu` cases the headline shows: where the optimised graph matters (cls at 224 is per-op overhead).
_HEADLINE_CPU_CASES = (("seg-b1-cityscapes", "1024x2048"), ("sam-l0", "512x512"), ("sam-xl1", "1024x1024"))


def _headline() -> Table:
    """EfficientViT against each task's peer (one run of `bench backends`) and against the original code on the
    same weights (one run of `bench cpu`)."""
    backends, cpu = load("bench-backends"), load("bench-cpu")
    rows = []
    for case, task in _TASKS.items():
        ours, peer = backends.select(case=case, backend="pytorch")
        rows.append({"task": task, "model": ours["model"], "input": ours["resolution"], "ms": ours["median_ms"],
                     "peer": _PEER_NAMES[peer["model"]], "peer_input": peer["resolution"],
                     "peer_ms": peer["median_ms"]})
    for model, size in _HEADLINE_CPU_CASES:
        ours = cpu.one(model=model, input=size, impl="evit-hf")
        reference = cpu.one(model=model, input=size, impl=ours["reference"])
        rows.append({"task": _TASKS[model.split("-")[0]], "model": model, "input": size, "ms": ours["median_ms"],
                     "peer": _PEER_NAMES[ours["reference"]], "peer_input": size, "peer_ms": reference["median_ms"]})
    table = markdown_table(rows, _columns(
        ("task", "task"), ("EfficientViT", "model"), ("input", "input"), ("median ms", "ms", ".1f"),
        ("compared with (PyTorch)", "peer"), ("its input", "peer_input"), ("its median ms", "peer_ms", ".1f"),
        ("EfficientViT is faster by", lambda row: f"{row['peer_ms'] / row['ms']:#.3g}x")))
    return Table(table, (backends, cpu), "short")


VIEWS: dict[str, Callable[[], Table]] = {
    "headline": _headline,
    "zoo": _zoo,
    "bench-seg": _bench_seg,
    "bench-sam-encoder": _bench_sam("encoder"),
    "bench-sam-prompt": _bench_sam("prompt"),
    "bench-sam-everything": _bench_sam_everything,
    "bench-sr": _bench_sr,
    "bench-backends": _bench_backends,
    "bench-cpu": _bench_cpu("bench-cpu"),
    "bench-cpu-repeats": _bench_cpu_repeats,
    "bench-cpu-compile-1": _bench_cpu("bench-cpu-compile-1"),
    "bench-cpu-compile-2": _bench_cpu("bench-cpu-compile-2"),
    "bench-settings": _bench_settings,
    "bench-pipeline": _bench_pipeline,
    "mixers-stage": _mixers("stage"),
    "mixers-model": _mixers("model"),
    "mixers-training-mean": _mixers_training("mean"),
    "mixers-training-runs": _mixers_training("run"),
    "sr-heldout": _sr_heldout,
    "train-seg-synthetic": _train_seg,
    "train-sam-finetune": _train_sam("train-sam-finetune"),
    "train-sam-distill": _train_sam("train-sam-distill"),
}


# ------------------------------------------------------------------------------------------------ regions
def _link(results: Results, page: Path) -> str:
    target = REPO_ROOT / "docs" / "results" / f"{results.name}.json"
    return Path(os.path.relpath(target, page.resolve().parent)).as_posix()


def caption(table: Table, page: Path) -> str:
    """Where and how the rows were measured, with links to the data, as text under the table on `page`."""
    links = ", ".join(f"[{r.name}.json]({_link(r, page)})" for r in table.sources)
    if table.caption == "link":
        return f"Data: {links}."
    if table.caption == "short":
        runs = "; ".join(f"`{r.command.split(' --', 1)[0]}` on {r.date}" for r in table.sources)
        machines = "; ".join(dict.fromkeys(r.machine for r in table.sources))
        return f"Measured with {runs}, on {machines}. Data: {links}."
    parts = []
    for r in table.sources:
        parts.append(f"Measured on {r.date} with `{r.command}`, on {r.machine}: {r.setting}.")
        if r.notes:
            parts.append("\n".join(f"- {note}" for note in r.notes))
    return "\n\n".join(parts) + f"\n\nData: {links}."


def render_view(name: str, page: Path) -> str:
    """The generated body of region `name` on `page` (links to the data are relative to the page)."""
    if name not in VIEWS:
        raise ValueError(f"Unknown results view {name!r} in {page}; known: {', '.join(VIEWS)}.")
    table = VIEWS[name]()
    return f"\n{table.markdown}\n\n{caption(table, page)}\n\n"


def _fences(text: str) -> list[tuple[int, int]]:
    """The spans of fenced code blocks: markers shown inside them (as on the docs page about rendering) are text."""
    return [m.span() for m in FENCE.finditer(text)]


def _live(text: str, pattern: re.Pattern) -> list[re.Match]:
    fences = _fences(text)
    return [m for m in pattern.finditer(text) if not any(start <= m.start() < end for start, end in fences)]


def regions(text: str) -> list[str]:
    """The names of the results regions in `text`, in order (markers inside code blocks are not regions)."""
    return [m["name"] for m in _live(text, REGION)]


def render_regions(text: str, page: Path) -> str:
    """`text` (the contents of `page`) with every results region regenerated."""
    opened = [m["name"] for m in _live(text, OPENING)]
    closed = regions(text)
    if opened != closed or len(_live(text, CLOSING)) != len(opened):
        raise ValueError(f"{page}: every `<!-- results:NAME -->` needs its own `<!-- /results -->` after it "
                         f"(opened {opened}, closed {closed}).")
    parts, last = [], 0
    for match in _live(text, REGION):
        parts += [text[last:match.start()],
                  f"<!-- results:{match['name']} -->\n{render_view(match['name'], page)}<!-- /results -->"]
        last = match.end()
    return "".join(parts) + text[last:]


def pages(root: Path = REPO_ROOT) -> list[Path]:
    """The markdown files whose regions are rendered: README.md and every page under docs/."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def stale_pages(root: Path = REPO_ROOT) -> list[Path]:
    """Pages whose regions differ from what the data renders."""
    return [page for page in pages(root) if render_regions(page.read_text(), page) != page.read_text()]


def _write_cards(out: Path) -> list[Path]:
    from .cards import write_cards
    from .catalog import DEFAULT_ORG

    return write_cards(out, org=DEFAULT_ORG)


def stale_cards(cards_dir: Path = REPO_ROOT / "hub_cards") -> list[str]:
    """Model cards in `cards_dir` that differ from the cards the templates and the data give."""
    from .stats import STATS_FILE

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(cards_dir / STATS_FILE, Path(tmp) / STATS_FILE)  # counting every model again takes ~20 s
        written = [path.relative_to(tmp) for path in _write_cards(Path(tmp))]
        return [str(path) for path in written
                if not (cards_dir / path).is_file() or (Path(tmp) / path).read_text() != (cards_dir / path).read_text()]


def update_cards(cards_dir: Path = REPO_ROOT / "hub_cards") -> None:
    """Regenerate the committed model cards (what `evit-hf release --cards-only --out hub_cards` does)."""
    _write_cards(cards_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m evit_hf.release.render [--check]`: regenerate (or check) every rendered region and card."""
    parser = argparse.ArgumentParser(prog="python -m evit_hf.release.render", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if anything is out of date")
    args = parser.parse_args(argv)
    if args.check:
        stale = [page.relative_to(REPO_ROOT).as_posix() for page in stale_pages()]
        stale += [f"hub_cards/{card}" for card in stale_cards()]
        if stale:
            print("out of date (run `make docs` or `python -m evit_hf.release.render`):\n  " + "\n  ".join(stale),
                  file=sys.stderr)
            return 1
        print("every rendered region and model card matches docs/results/")
        return 0
    for page in pages():
        text = page.read_text()
        rendered = render_regions(text, page)
        if rendered != text:
            page.write_text(rendered)
            print(f"rendered {page.relative_to(REPO_ROOT).as_posix()}")
    update_cards()
    print("rendered hub_cards/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
