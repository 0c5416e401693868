"""`evit-hf docs render [--check]`: the measured tables of README.md, docs/ and hub_cards/ from docs/results/.

Every measured number the documentation shows lives in `docs/results/*.json` (written by `evit-hf bench ...
--json FILE` and `evit-hf demo`); `render` regenerates each region between `<!-- results:NAME -->` markers and
the model cards (`evit_hf.release.render`); `--check` writes nothing and exits 1 naming what is out of date.
It works in a source checkout (`pip install -e .`), where docs/ is.
"""

from __future__ import annotations

import argparse

from . import add_command

SUMMARY = "Re-render the measured tables of README.md, docs/ and the model cards from docs/results/*.json."


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "docs", run, SUMMARY)
    parser.add_argument("action", choices=["render"], help="render: regenerate every results region and card")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if anything is out of date")


def run(args: argparse.Namespace) -> int:
    from ..release import render
    from ..release.results import results_dir

    try:
        results_dir()
    except FileNotFoundError as err:
        raise ValueError(str(err)) from err
    return render.main(["--check"] if args.check else [])
