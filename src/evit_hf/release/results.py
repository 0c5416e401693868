"""Measurements as data: the files in `docs/results/`, one per measured run or table.

Every number the README, the docs pages and the model cards show about speed or training comes from one of
these files (`evit_hf.release.render` turns them into text). A file is a JSON object:

- `title`: what was measured, in a few words
- `command`: the command that produced the rows (re-run it to refresh them)
- `date`: the day of the run (`YYYY-MM-DD`)
- `machine`: the hardware and software it ran on
- `setting`: how it measured (weights, batch, precision, threads, environment)
- `notes`: caveats about this run (a list of sentences, possibly empty)
- `source`: where the rows came from, when not written by the command itself (a transcription, a merge)
- `rows`: the rows, with the field names the producing benchmark writes (`median_ms`, `min_ms`, `runs`, ...)

`write_results` writes that shape with one row per line, so a re-run shows up in a diff row by row.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
RESULTS_DIR = REPO_ROOT / "docs" / "results"
_REQUIRED = ("title", "command", "date", "machine", "setting", "rows")


@dataclass(frozen=True)
class Results:
    """One results file: a measured run (or table) with its command, date, machine and setting."""

    name: str  # the file name without `.json`
    title: str
    command: str
    date: str
    machine: str
    setting: str
    notes: tuple[str, ...]
    source: str
    rows: tuple[dict, ...]

    def select(self, **fields) -> list[dict]:
        """The rows whose fields equal `fields` (`select(model="sam-l0", kind="encoder")`), in file order."""
        return [row for row in self.rows if all(row.get(key) == value for key, value in fields.items())]

    def one(self, **fields) -> dict:
        """The single row matching `fields`; a clear error when there is none or several."""
        rows = self.select(**fields)
        if len(rows) != 1:
            raise ValueError(f"{self.name}.json: expected one row with {fields}, found {len(rows)}.")
        return rows[0]


def results_dir() -> Path:
    """`docs/results/` of the evit-hf source checkout this package runs from."""
    if not RESULTS_DIR.is_dir():
        raise FileNotFoundError(
            f"The measurement files are not at {RESULTS_DIR}: they live in docs/results/ of an evit-hf source "
            f"checkout; install evit-hf from one (`pip install -e .`) to render docs or model cards."
        )
    return RESULTS_DIR


def names() -> list[str]:
    """Every results file, by name."""
    return sorted(path.stem for path in results_dir().glob("*.json"))


@cache
def load(name: str) -> Results:
    """The results file `docs/results/<name>.json`, checked for the fields every file has."""
    path = results_dir() / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"No results file {path}; known: {', '.join(names())}.")
    return read_results(path)


def read_results(path: str | os.PathLike) -> Results:
    """The results file at `path` (anywhere: e.g. the one `evit-hf demo` writes in its output folder), checked
    for the fields every file has; its name is the file name without `.json`."""
    path = Path(path)
    name = path.stem
    data = json.loads(path.read_text())
    if isinstance(data, list):
        raise ValueError(f"{path} holds bare rows (what `python -m evit_hf.bench.mixers --json` writes): record "
                         f"them with `python -m evit_hf.release.results {name} --rows FILE --date YYYY-MM-DD`.")
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise ValueError(f"{path}: missing {missing}; every results file has {', '.join(_REQUIRED)}.")
    if not isinstance(data["rows"], list) or not all(isinstance(row, dict) for row in data["rows"]):
        raise ValueError(f"{path}: `rows` must be a list of objects (the rows a benchmark's --json writes).")
    return Results(name=name, title=data["title"], command=data["command"], date=data["date"],
                   machine=data["machine"], setting=data["setting"], notes=tuple(data.get("notes", ())),
                   source=data.get("source", ""), rows=tuple(data["rows"]))


def write_results(
    path: str | os.PathLike,
    rows: Iterable[dict],
    *,
    title: str,
    command: str,
    date: str,
    machine: str,
    setting: str,
    notes: Iterable[str] = (),
    source: str = "",
) -> Path:
    """Write a results file (the shape `load` reads), one row per line."""
    header = {"title": title, "command": command, "date": date, "machine": machine, "setting": setting,
              "notes": list(notes)}
    if source:
        header["source"] = source
    fields = {**header, "rows": list(rows)}
    path = Path(path)
    lines = [f"  {json.dumps(key)}: {_dumps(value)}" for key, value in fields.items()]
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    load.cache_clear()
    return path


def _dumps(value) -> str:
    """JSON with each list item on its own line (rows, notes) and everything else on one line."""
    if isinstance(value, list) and value:
        return "[\n" + ",\n".join(f"    {json.dumps(item, ensure_ascii=False)}" for item in value) + "\n  ]"
    return json.dumps(value, ensure_ascii=False)


def refresh(name: str, rows_file: str | os.PathLike, date: str, **fields: str) -> Path:
    """Replace the rows of `docs/results/<name>.json` with those of a new run (a benchmark's `--json` output:
    a list of rows, or an object with `rows`), dated `date`; `fields` (`command`, `machine`, `setting`, `title`,
    `notes`) replace the file's own where given. The file's `source` is dropped: the command wrote these rows."""
    previous = load(name)
    new = json.loads(Path(rows_file).read_text())
    rows = new["rows"] if isinstance(new, dict) else new
    if not rows or not all(isinstance(row, dict) for row in rows):
        raise ValueError(f"{rows_file}: no rows (expected a list of objects, or an object with `rows`).")
    kept = {key: getattr(previous, key) for key in ("title", "command", "machine", "setting", "notes")}
    return write_results(results_dir() / f"{name}.json", rows, **{**kept, **fields, "date": date})


def main(argv: list[str] | None = None) -> int:
    """`python -m evit_hf.release.results NAME --rows FILE --date YYYY-MM-DD`: record a re-run, then `make docs`."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m evit_hf.release.results", description=main.__doc__)
    parser.add_argument("name", choices=names(), help="the results file to refresh (docs/results/NAME.json)")
    parser.add_argument("--rows", required=True, help="the new run's rows (a benchmark's --json output)")
    parser.add_argument("--date", required=True, help="the day of the run, YYYY-MM-DD")
    for field in ("command", "machine", "setting"):
        parser.add_argument(f"--{field}", help=f"the run's {field} (default: the file's)")
    args = parser.parse_args(argv)
    fields = {k: v for k, v in vars(args).items() if k in ("command", "machine", "setting") and v is not None}
    path = refresh(args.name, args.rows, args.date, **fields)
    print(f"wrote {path}; now run `make docs` (python -m evit_hf.release.render) to update every page and card",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
