"""The `evit-hf` command line: one subcommand per job (demo, convert, bench, segment, sam, make-dataset, ...)."""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("demo", "models", "convert", "export", "bench", "segment", "sam", "upscale", "make-dataset", "release",
            "eval", "app")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evit-hf", description="EfficientViT as Hugging Face models.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        module_name = f"evit_hf.commands.{name.replace('-', '_')}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name != module_name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as err:  # bad input: a clear message, not a stack trace
        print(f"evit-hf {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
