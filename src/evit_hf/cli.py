"""The `evit-hf` command line: one subcommand per job (demo, convert, bench, segment, sam, make-dataset, ...).

`evit-hf --help` imports no torch or transformers: the package registers with transformers only once a command
runs (`evit_hf/__init__.py`), and only the command being run builds its options (some option lists come from
modules that need torch, e.g. `export --task`); the others are listed with their summaries.

Every command takes `--quiet` (no progress bars, no time estimates: `evit_hf.progress`), reports bad input
(`ValueError`) as one line with exit status 2, and stops on Ctrl-C with one line and exit status 130 (128 +
SIGINT), not a traceback; a training run stopped by a signal has already said where it stopped and how to
resume (`evit_hf.training.interrupts.TrainingInterrupted`) and exits with its own status.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Collection
from types import ModuleType

COMMANDS = ("demo", "models", "convert", "export", "bench", "segment", "sam", "upscale", "make-dataset", "release",
            "eval", "docs", "app")


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
            _add_quiet(subparsers.choices[name])
        else:
            subparsers.add_parser(name, help=module.SUMMARY)
    return parser


def _add_quiet(parser: argparse.ArgumentParser) -> None:
    """`-q/--quiet` on a subcommand (unless it defines its own)."""
    for flags in (("-q", "--quiet"), ("--quiet",)):
        try:
            parser.add_argument(*flags, action="store_true", help="no progress bars or time estimates")
            return
        except argparse.ArgumentError:  # the command has its own -q (or --quiet)
            continue


def _requested_command(argv: list[str]) -> str | None:
    """The subcommand named in `argv` (its first word that is not an option), if any."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = _requested_command(argv)
    try:
        args = build_parser(with_options={command}).parse_args(argv)
        from .progress import set_quiet
        from .registration import register  # torch and transformers: only once a command runs

        set_quiet(bool(getattr(args, "quiet", False)))
        args.command_line = ["evit-hf", *argv]  # as typed: what a results file records (`bench --json`)
        register()
        try:
            return int(args.func(args) or 0)
        except ValueError as err:  # bad input: a clear message, not a stack trace
            print(f"evit-hf {args.command}: error: {err}", file=sys.stderr)
            return 2
    except KeyboardInterrupt as err:
        return _interrupted(f"evit-hf {command}" if command else "evit-hf", err)


def _interrupted(program: str, err: KeyboardInterrupt) -> int:
    """One line for a Ctrl-C (the exit status 130), or the status of a training run that stopped itself at a
    signal and printed what to do (its module is loaded if and only if such a run was started)."""
    interrupts = sys.modules.get("evit_hf.training.interrupts")
    if interrupts is not None and isinstance(err, interrupts.TrainingInterrupted):
        return err.exit_code
    # "\r": over the terminal's "^C" echo (a progress bar that was open has already ended its line)
    start = "\r" if sys.stderr.isatty() else ""
    print(f"{start}{program}: interrupted (Ctrl-C); stopped.", file=sys.stderr, flush=True)
    return 128 + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main())
