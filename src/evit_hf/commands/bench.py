"""`evit-hf bench TASK`: latency tables against peers measured in the same run."""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="Benchmark EfficientViT against peers in the same run.")
    parser.add_argument("task", choices=["cls", "seg", "sam", "sr"], help="which benchmark")
    parser.add_argument("--presets", nargs="*", help="restrict to these presets")
    parser.add_argument("--budget", type=float, default=5.0, help="seconds of timing per row")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..bench.core import environment

    print("setting: " + ", ".join(f"{k}={v}" for k, v in environment().items()))
    if args.task == "cls":
        from ..bench.zoo import format_zoo, zoo_rows

        rows = zoo_rows(args.presets, budget_s=args.budget)
        table = format_zoo(rows)
    else:
        modules = {"seg": "segmentation", "sam": "sam", "sr": "super_resolution"}
        module = importlib.import_module(f"..bench.{modules[args.task]}", __package__)
        kwargs = {"budget_s": args.budget}
        if args.presets:
            kwargs["presets"] = args.presets
        rows = module.run(**kwargs)
        table = module.format_table(rows)
    print(table)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0
