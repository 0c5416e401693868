"""The `evit-hf` command line: one subcommand per job (demo, convert, bench, segment, sam, make-dataset, ...).

`evit-hf --help` imports no torch or transformers: the package registers with transformers only once a command
runs (`evit_hf/__init__.py`), and only the command being run builds its options (some option lists come from
modules that need torch, e.g. `export --task`); the others are listed with their summaries.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Collection
from types import ModuleType

COMMANDS = ("demo", "models", "convert", "export", "bench", "segment", "sam", "upscale", "make-dataset", "release",
            "eval", "app")


def _command_module(name: str) -> ModuleType | None:
    """`evit_hf.commands.<name>`, or None where that module is absent."""
    module_name = f"evit_hf.commands.{name.replace('-', '_')}"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        return None


def build_parser(with_options: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand; those outside `with_options` (None: all) only with their summary."""
    parser = argparse.ArgumentParser(prog="evit-hf", description="EfficientViT as Hugging Face models.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        module = _command_module(name)
        if module is None:
            continue
        if with_options is None or name in with_options:
            module.register(subparsers)
        else:
            subparsers.add_parser(name, help=module.SUMMARY)
    return parser


def _requested_command(argv: list[str]) -> str | None:
    """The subcommand named in `argv` (its first word that is not an option), if any."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(with_options={_requested_command(argv)}).parse_args(argv)
    from .registration import register  # torch and transformers: only once a command runs

    register()
    try:
        return int(args.func(args) or 0)
    except ValueError as err:  # bad input: a clear message, not a stack trace
        print(f"evit-hf {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
