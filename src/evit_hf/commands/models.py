"""`evit-hf models [--task cls|seg|sam|sr] [--json FILE]`: every released model, and whether it is here.

This module owns the `models` subcommand: the table of `evit_hf.hub.listing` (name, task, source file on the Hub,
size of the converted weights, the authors' reported accuracy, and `converted` / `downloaded` / `shipped` when it
is ready here), found without the network. Each name loads everywhere a model is taken (`--model`,
`evit_hf.pretrained`, `from_pretrained`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..release.catalog import FAMILIES
from . import add_command

SUMMARY = "List the released models (the authors' checkpoints) and which are cached here."
DESCRIPTION = (
    "Every released EfficientViT model: its name (what --model, evit_hf.pretrained and from_pretrained take), task, "
    "the Hub file its weights are converted from, size, the original authors' reported accuracy, and whether it "
    "is converted (ready), downloaded (converted on first use) or shipped in evit-hf."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "models", run, SUMMARY, DESCRIPTION)
    parser.add_argument("--task", choices=FAMILIES, help="only this family")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")


def run(args: argparse.Namespace) -> int:
    from ..hub.catalog import TASKS as FAMILY_TASKS  # torch: only once the command runs
    from ..hub.listing import format_rows, released_rows

    rows = released_rows(FAMILY_TASKS.get(args.task))
    print(format_rows(rows))
    ready = sum(row.state in ("converted", "shipped") for row in rows)
    print(f"\n{len(rows)} released models, {ready} ready here. Load one by name: "
          f"--model efficientvit-sam-l0, evit_hf.pretrained(\"efficientvit-b1-r224\").")
    if args.json:
        args.json.write_text(json.dumps([row.to_json() for row in rows], indent=2) + "\n")
    return 0
