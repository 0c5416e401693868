"""`evit-hf bench TASK`: latency tables against peers (or the original implementation) measured in the same run."""

from __future__ import annotations

import argparse
import importlib
import json
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
    parser.add_argument("--no-peers", action="store_true", help="backends: skip the peer models")
    parser.add_argument("--presets", nargs="*", help="restrict to these presets (cls, seg, sam, sr)")
    parser.add_argument(
        "--cases",
        nargs="*",
        help="backends: seg, seg-1024x2048, seg-b0, sam, sam-xl1, sr, cls (default seg sam sr cls); "
        "cpu: VARIANT@HEIGHTxWIDTH cases (default: seg B0/B1/B2 at 512x1024 and 1024x2048, SAM-L0/XL1 "
        "encoders, cls B1 at 224); pipeline: cls seg-cityscapes seg-ade20k sam-point sam-box sr (default all)",
    )
    parser.add_argument("--compile", action="store_true", help="cpu: also time torch.compile (Inductor freezing)")
    parser.add_argument("--threads", type=int, help="cpu: torch intra-op threads (default: torch's)")
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
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")


def run(args: argparse.Namespace) -> int:
    from ..bench.core import environment

    if (args.task is None) == (args.study is None):
        raise ValueError("give either a benchmark (cls, seg, sam, sr, cpu) or --study mixers")
    print("setting: " + ", ".join(f"{k}={v}" for k, v in environment().items()))
    if args.study == "mixers":
        return _mixer_study(args)
    if args.task == "backends":
        return _backends(args)
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
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


def _pipeline(args: argparse.Namespace) -> int:
    """`evit-hf bench pipeline`: `--cases` picks tasks (cls, seg-cityscapes, seg-ade20k, sam-point, sam-box, sr)."""
    from ..bench import pipeline

    rows = pipeline.run(args.cases, args.environments, budget_s=args.budget if args.budget is not None else 10.0)
    print(pipeline.format_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
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
        args.json.write_text(json.dumps(rows, indent=2))
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
    json_path = args.json or (Path(recipe["json"]) if recipe.get("json") else None)
    if json_path:
        json_path.write_text(json.dumps({"method": backends.method(), "options": options, "rows": rows}, indent=2))
    return 0
