"""`evit-hf bench TASK`: latency tables against peers (or the original implementation) measured in the same run.

`--json FILE` writes the run as a results file (`evit_hf.release.results`: title, command, date, machine,
setting, notes, rows), the shape of docs/results/*.json: a re-run written over one of those files (the command
each file names) is rendered into every page and card by `evit-hf docs render`.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
from pathlib import Path

from . import add_command

SUMMARY = "Benchmark EfficientViT against peers in the same run."
DESCRIPTION = (
    "cls / seg / sam / sr: latency against peer models; cpu: the inference-optimised graph against the "
    "original implementation on identical weights (GMAC/s, share of the GEMM peak); backends: one model on "
    "every available back end (PyTorch eager, torch.compile, ONNX Runtime fp32/INT8, TFLite, TensorRT) beside "
    "its peer, with --plot and --config (the recipes in configs/bench/); pipeline: each task's pipeline end to "
    "end next to its forward pass, pre- and post-processing, in fresh processes with evit-hf's defaults, tuned by "
    "hand and untuned."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "bench", run, SUMMARY, DESCRIPTION)
    parser.add_argument("task", nargs="?", choices=["cls", "seg", "sam", "sr", "cpu", "backends", "pipeline"],
                        help="which benchmark")
    parser.add_argument(
        "--study",
        choices=["mixers"],
        help="mixers: latency, peak memory and scaling exponent of every token mixer (one stage and a whole seg "
        "model, --sizes), with --plot",
    )
    parser.add_argument(
        "--sizes", nargs="*", type=int, help="--study mixers: square input sizes (default 256 512 1024 2048)"
    )
    parser.add_argument("--plot", type=Path, help="--study mixers / backends: write the plot (PNG)")
    parser.add_argument("--config", type=Path, help="backends: a recipe (YAML) with cases, backends, threads, ...")
    parser.add_argument("--backends", nargs="*", help="backends: which back ends (default: all available)")
    parser.add_argument("--batch", type=int, help="backends: batch size (default 1)")
    parser.add_argument("--no-peers", action="store_true",
                        help="backends: skip the peer models; sam --everything: evit-hf only")
    parser.add_argument("--presets", nargs="*", help="restrict to these presets (cls, seg, sam, sr)")
    parser.add_argument(
        "--cases",
        nargs="*",
        help="backends: seg, seg-1024x2048, seg-b0, sam, sam-xl1, sr, cls (default seg sam sr cls); "
        "cpu: VARIANT@HEIGHTxWIDTH cases (default: seg B0/B1/B2 at 512x1024 and 1024x2048, SAM-L0/XL1 "
        "encoders, cls B1 at 224); pipeline: cls seg-cityscapes seg-ade20k sam-point sam-box sr (default all)",
    )
    parser.add_argument("--compile", action="store_true", help="cpu: also time torch.compile (Inductor freezing)")
    parser.add_argument("--threads", type=int,
                        help="cpu: torch intra-op threads (default: torch's); sam --everything: default 2")
    parser.add_argument(
        "--settings",
        action="store_true",
        help="cpu: compare thread / OpenMP / allocator settings instead (one process per setting; first case)",
    )
    parser.add_argument(
        "--budget", type=float, help="seconds of timing per row (default 5); cpu: per case (default 20)"
    )
    parser.add_argument(
        "--environments", nargs="*", help="pipeline: which process environments (default: all three)"
    )
    parser.add_argument("--everything", action="store_true",
                        help="sam: segment everything (automatic masks) on one image, evit-hf against "
                        "transformers' pipeline and the original's generator, with the time split and the "
                        "decoder's compute floor (--presets: the first; --threads default 2; --no-peers: ours only)")
    parser.add_argument("--points-per-side", type=int, default=32, help="sam --everything: the grid (default 32)")
    parser.add_argument("--json", type=Path, help="also write the run as a results file (docs/results/*.json: "
                        "title, command, date, machine, setting, rows), e.g. over the docs' own to update them")


def run(args: argparse.Namespace) -> int:
    from ..bench.core import environment

    if (args.task is None) == (args.study is None):
        raise ValueError("give either a benchmark (cls, seg, sam, sr, cpu) or --study mixers")
    print("setting: " + ", ".join(f"{k}={v}" for k, v in environment().items()))
    if args.study == "mixers":
        return _mixer_study(args)
    if args.task == "backends":
        return _backends(args)
    if args.everything:
        return _sam_everything(args)
    if args.task == "pipeline":
        return _pipeline(args)
    default_budget = 20.0 if args.task == "cpu" else 5.0
    kwargs = {"budget_s": args.budget if args.budget is not None else default_budget}
    if args.task == "cls":
        from ..bench.zoo import format_zoo, zoo_rows

        rows = zoo_rows(args.presets, **kwargs)
        table = format_zoo(rows)
    elif args.task == "cpu":
        from ..bench import inference

        cases = [inference.parse_case(case) for case in args.cases] if args.cases else None
        if args.settings:
            from ..bench import settings

            variant, size = cases[0] if cases else ("seg-b1-cityscapes", (1024, 2048))
            rows = settings.run(variant, size, **kwargs)
            table = settings.format_table(rows)
        else:
            rows = inference.run(cases or inference.DEFAULT_CASES, compile=args.compile, threads=args.threads,
                                 **kwargs)
            table = inference.format_table(rows)
    else:
        modules = {"seg": "segmentation", "sam": "sam", "sr": "super_resolution"}
        module = importlib.import_module(f"..bench.{modules[args.task]}", __package__)
        if args.presets:
            kwargs["presets"] = args.presets
        rows = module.run(**kwargs)
        table = module.format_table(rows)
    print(table)
    if args.json:
        _record(args, rows, *_title_and_setting(args, rows))
    return 0


# What the rows of each benchmark were measured with, before the measured environment (`measured_setting`).
_RANDOM_MODELS = "random weights, batch 1, fp32, eval, torch.inference_mode"
_TITLES = {
    "cls": "Model zoo latency (every backbone preset at 224x224)",
    "seg": "Semantic segmentation: EfficientViT-Seg against SegFormer B0/B1/B2 (19 labels)",
    "sam": "EfficientViT-SAM against SAM ViT-B (transformers SamModel)",
    "sr": "Super-resolution: EfficientViT-SR against Swin2SR lightweight",
}


def _title_and_setting(args: argparse.Namespace, rows: list[dict]) -> tuple[str, str, list[str]]:
    """The results file's title, setting and notes for `evit-hf bench cls|seg|sam|sr|cpu [--settings]`."""
    from ..bench.core import environment, measured_setting

    if args.task != "cpu":
        return _TITLES[args.task], f"{_RANDOM_MODELS}; {measured_setting(rows)}", []
    if args.settings:
        env = ", ".join(f"{k}={v}" for k, v in environment().items() if k not in ("threads", "OMP_NUM_THREADS"))
        return (f"Thread, OpenMP and allocator settings ({rows[0]['model']} at {rows[0]['input']})",
                "each row a fresh process (OpenMP reads its environment when torch loads) with the row's threads and "
                f"environment, the default eval graph, {_RANDOM_MODELS}; otherwise {env}", [])
    title = "The default inference graph against the original implementation" + (
        ", and torch.compile" if args.compile else "")
    setting = (f"deterministic random weights shared by every row of a model (the converter maps the original state "
               f"dict), batch 1, fp32, eval, torch.inference_mode, rows of one model timed round-robin in one "
               f"process; GEMM peak {rows[0]['gemm_peak_gmacs']:.1f} GMAC/s (same run); {measured_setting(rows)}")
    return title, setting, sorted({row["note"] for row in rows if row.get("note")})


def _record(args: argparse.Namespace, rows: list[dict], title: str, setting: str, notes: list[str]) -> None:
    """Write `rows` as the results file `args.json` (`evit_hf.release.results.write_results`), dated today, with
    this machine and the command line that ran."""
    from datetime import date

    from ..bench.core import machine
    from ..release.results import write_results

    command = shlex.join(getattr(args, "command_line", None) or ["evit-hf", *sys.argv[1:]])
    path = write_results(args.json, rows, title=title, command=command, date=date.today().isoformat(),
                         machine=machine(), setting=setting, notes=notes)
    print(f"wrote {path} (a results file: `evit-hf docs render` shows it where docs/results/ has it)")


def _sam_everything(args: argparse.Namespace) -> int:
    from ..bench import sam

    if args.task != "sam":
        raise ValueError("--everything is an option of `evit-hf bench sam`.")
    rows = sam.run_everything(
        preset=(args.presets or ["sam-l0"])[0], points_per_side=args.points_per_side,
        threads=args.threads if args.threads is not None else 2, pipeline=not args.no_peers,
        original=not args.no_peers, progress=sys.stdout.isatty(),
    )
    print(sam.format_everything(rows))
    if args.json:
        _record(args, rows, sam.EVERYTHING_TITLE, sam.everything_setting(rows), [])
    return 0


def _pipeline(args: argparse.Namespace) -> int:
    """`evit-hf bench pipeline`: `--cases` picks tasks (cls, seg-cityscapes, seg-ade20k, sam-point, sam-box, sr)."""
    from ..bench import pipeline

    rows = pipeline.run(args.cases, args.environments, budget_s=args.budget if args.budget is not None else 10.0)
    print(pipeline.format_table(rows))
    if args.json:
        _record(args, rows, pipeline.TITLE, pipeline.SETTING, pipeline.NOTES)
    return 0


def _mixer_study(args: argparse.Namespace) -> int:
    from ..bench import mixers

    kwargs = {"progress": True}
    if args.sizes:
        kwargs["sizes"] = tuple(args.sizes)
    if args.budget is not None:
        kwargs["budget_s"] = args.budget
    if args.threads is not None:
        kwargs["threads"] = args.threads
    rows = mixers.run(**kwargs)
    print(mixers.format_table(rows))
    if args.plot:
        mixers.plot(rows, args.plot)
        print(f"plot: {args.plot}")
    if args.json:
        from ..bench.core import measured_setting

        sizes = [row["size"] for row in rows]
        setting = (f"random weights, fp32, eval, torch.inference_mode, batch 1, each measurement in a fresh process; "
                   f"{measured_setting(rows)}")
        _record(args, rows, f"Token mixers: latency and peak memory from {sizes[0]} to {sizes[-1]}", setting, [])
    return 0


def _backends(args: argparse.Namespace) -> int:
    """`evit-hf bench backends`: command-line options override the recipe's (`--config`)."""
    from ..bench import backends

    recipe: dict = {}
    if args.config:
        import yaml

        recipe = yaml.safe_load(args.config.read_text()) or {}
        unknown = set(recipe) - {"cases", "backends", "batch", "threads", "budget", "peers", "plot", "json"}
        if unknown:
            raise ValueError(f"{args.config}: unknown keys {sorted(unknown)}")
    options = {
        "cases": tuple(args.cases or recipe.get("cases", backends.DEFAULT_CASES)),
        "backends": tuple(args.backends or recipe.get("backends", backends.DEFAULT_BACKENDS)),
        "batch": args.batch or recipe.get("batch", 1),
        "threads": args.threads or recipe.get("threads", 2),
        "budget_s": args.budget if args.budget is not None else recipe.get("budget", 20.0),
        "peers": not args.no_peers and recipe.get("peers", True),
    }
    rows = backends.run(**options)
    print(backends.format_table(rows))
    print("\n" + backends.method())
    plot_path = args.plot or (Path(recipe["plot"]) if recipe.get("plot") else None)
    if plot_path:
        backends.plot(rows, plot_path)
        print(f"plot: {plot_path}")
    args.json = args.json or (Path(recipe["json"]) if recipe.get("json") else None)
    if args.json:
        timed = [row for row in rows if "median_ms" in row]
        skipped = [f"{row['model']} / {row['backend']}: not run ({row['note']})" for row in rows
                   if "median_ms" not in row]
        chosen = "; ".join(f"{key} {' '.join(map(str, value)) if isinstance(value, tuple) else value}"
                           for key, value in options.items())  # the recipe's, which the command line only names
        _record(args, timed, "One model on every back end, beside its peer", f"{backends.method()} Run with: {chosen}.",
                skipped)
    return 0
