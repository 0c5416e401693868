"""The docs site and the measurements as data: every rendered table equals what docs/results/ renders, every
results file is shown somewhere, a changed measurement reaches every page and card, and `mkdocs build --strict`
passes (broken links, missing anchors and pages left out of the nav fail it)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from evit_hf.cli import main
from evit_hf.release import latency, render, results
from evit_hf.release.render import VIEWS, pages, regions, render_regions, render_view, stale_pages

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_rendered_regions_match_the_data():
    stale = [str(page.relative_to(REPO_ROOT)) for page in stale_pages()]
    assert not stale, f"regenerate with `make docs` (python -m evit_hf.release.render): {stale}"


def test_every_results_file_and_view_is_shown():
    shown = {name for page in pages() for name in regions(page.read_text())}
    assert shown <= set(VIEWS), shown - set(VIEWS)
    assert set(VIEWS) <= shown, f"views no page shows: {set(VIEWS) - shown}"
    used = {source.name for name in VIEWS for source in VIEWS[name]().sources}
    assert used == set(results.names()), f"results files no view renders: {set(results.names()) - used}"
    assert "headline" in regions((REPO_ROOT / "README.md").read_text())


def test_results_files_have_command_date_machine_setting_and_rows():
    for name in results.names():
        data = results.load(name)
        assert data.rows and data.title and data.machine and data.setting, name
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", data.date), (name, data.date)
        assert data.command.startswith(("evit-hf ", "python ", "accelerate launch ")), (name, data.command)
        raw = json.loads((results.RESULTS_DIR / f"{name}.json").read_text())
        assert list(raw)[:5] == ["title", "command", "date", "machine", "setting"], name


def test_write_results_round_trips(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    results.load.cache_clear()
    rows = [{"model": "seg-b1-cityscapes", "size": "512x1024", "median_ms": 180.2, "runs": 24},
            {"model": "b1", "size": "224x224", "median_ms": 37.9, "runs": 30}]
    try:
        path = results.write_results(tmp_path / "run.json", rows, title="t", command="evit-hf bench seg",
                                     date="2026-11-25", machine="m", setting="s", notes=["n"])
        lines = [line.strip().rstrip(",") for line in path.read_text().splitlines()]
        assert [json.loads(line) for line in lines if line.startswith('{"model"')] == rows  # one row per line
        data = results.load("run")
        assert data.rows == tuple(rows) and data.notes == ("n",)
        assert data.one(model="b1")["median_ms"] == 37.9
        with pytest.raises(ValueError, match="expected one row"):
            data.one(runs=7)
        (tmp_path / "bad.json").write_text(json.dumps({"title": "t", "rows": []}))
        with pytest.raises(ValueError, match="missing"):
            results.load("bad")
    finally:
        results.load.cache_clear()


def test_refresh_records_a_rerun(tmp_path, monkeypatch):
    """Rows measured elsewhere (bare rows, or another run's results file) go into a file with
    `python -m evit_hf.release.results`, which keeps the file's title, command, machine and setting."""
    (tmp_path / "bench-sr.json").write_text((results.RESULTS_DIR / "bench-sr.json").read_text())
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    results.load.cache_clear()
    try:
        old = results.load("bench-sr")
        rerun = [{**row, "median_ms": row["median_ms"] / 2} for row in old.rows]
        (tmp_path / "run.json").write_text(json.dumps(rerun))
        assert results.main(["bench-sr", "--rows", str(tmp_path / "run.json"), "--date", "2026-12-01"]) == 0
        new = results.load("bench-sr")
        assert new.rows == tuple(rerun) and new.date == "2026-12-01" and new.source == ""
        assert (new.title, new.command, new.machine, new.setting) == (old.title, old.command, old.machine, old.setting)
        (tmp_path / "bare.json").write_text(json.dumps(rerun))
        with pytest.raises(ValueError, match="bare rows"):
            results.load("bare")
    finally:
        results.load.cache_clear()


def test_a_new_measurement_reaches_the_tables_and_the_cards(tmp_path, monkeypatch):
    """Re-running a benchmark into its file is all it takes: the docs table and the model card follow."""
    from evit_hf.release import get_target
    from evit_hf.release.cards import render_card
    from evit_hf.release.stats import STATS_FILE, load_stats

    for path in results.RESULTS_DIR.glob("*.json"):
        (tmp_path / path.name).write_text(path.read_text())
    data = json.loads((tmp_path / "bench-seg.json").read_text())
    row = next(r for r in data["rows"] if r["model"] == "seg-b0-cityscapes" and r["size"] == "512x1024")
    row.update(median_ms=98.7, min_ms=91.2, runs=17)
    results.write_results(tmp_path / "bench-seg.json", data.pop("rows"), **data)
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    results.load.cache_clear()
    latency.table.cache_clear()
    try:
        benchmarks = REPO_ROOT / "docs" / "benchmarks.md"
        assert "| seg-b0-cityscapes | 512x1024 | 0.707 | 98.7 | 91.2 | 17 |" in render_view("bench-seg", benchmarks)
        target = get_target("seg-b0-cityscapes")
        card = render_card(target, load_stats(REPO_ROOT / "hub_cards" / STATS_FILE)[target.name])
        assert "| 512x1024 | 98.7 | 91.2 | 17 |" in card
        readme = REPO_ROOT / "README.md"
        assert render_regions(readme.read_text(), readme) == readme.read_text()  # the README shows no seg-b0 row
        assert "98.7" in render_regions(benchmarks.read_text(), benchmarks)
    finally:
        results.load.cache_clear()
        latency.table.cache_clear()


def test_regions_are_delimited_and_named():
    page = REPO_ROOT / "docs" / "page.md"
    text = "intro\n\n<!-- results:bench-sr -->\nold\n<!-- /results -->\n\nend\n"
    rendered = render_regions(text, page)
    assert rendered.startswith("intro\n\n<!-- results:bench-sr -->\n\n| model | input -> output |")
    assert "[bench-sr.json](results/bench-sr.json)" in rendered and rendered.endswith("<!-- /results -->\n\nend\n")
    assert render_regions(rendered, page) == rendered
    with pytest.raises(ValueError, match="needs its own"):
        render_regions("<!-- results:bench-sr -->\nno end\n", page)
    with pytest.raises(ValueError, match="Unknown results view 'nope'"):
        render_regions("<!-- results:nope -->\n<!-- /results -->\n", page)
    shown = "```markdown\n<!-- results:nope -->\n<!-- /results -->\n```\n"  # a marker shown in a code block
    assert render_regions(shown, page) == shown and regions(shown) == []


def test_check_command_reports_drift(tmp_path, monkeypatch, capsys):
    readme = tmp_path / "README.md"
    docs = tmp_path / "docs"
    docs.mkdir()
    current = (REPO_ROOT / "README.md").read_text()
    readme.write_text(current.replace("| 180.2 |", "| 999.9 |", 1))
    monkeypatch.setattr(render, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(render, "pages", lambda root=tmp_path: [readme])
    monkeypatch.setattr(render, "stale_cards", lambda: [])
    monkeypatch.setattr(render, "update_cards", lambda: None)
    assert main(["docs", "render", "--check"]) == 1  # `evit-hf docs render`: python -m evit_hf.release.render
    assert "README.md" in capsys.readouterr().err
    assert main(["docs", "render"]) == 0 and readme.read_text() == current


def test_bench_json_writes_a_results_file_that_renders(tmp_path, monkeypatch, capsys):
    """`evit-hf bench ... --json FILE` writes the whole results file (title, the command as typed, date, machine,
    setting, rows): written over a file of docs/results/, its table renders with the new run's numbers."""
    from datetime import date

    out = tmp_path / "zoo.json"
    argv = ["bench", "cls", "--presets", "b0", "--budget", "0.05", "--json", str(out)]
    assert main(argv) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    results.load.cache_clear()
    try:
        data = results.load("zoo")
        assert data.command == "evit-hf " + " ".join(argv) and data.date == date.today().isoformat()
        assert "logical CPUs" in data.machine and "torch " in data.machine and "random weights" in data.setting
        (row,) = data.rows
        assert row["preset"] == "b0" and row["median_ms"] > 0
        rendered = render_view("zoo", REPO_ROOT / "docs" / "page.md")
        assert f"| b0 | classifier | 3.41 | 0.1 | 224 | {render.number(row['median_ms'])} |" in rendered
    finally:
        results.load.cache_clear()


def test_readme_is_an_entry_point():
    readme = (REPO_ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    for heading in ("## Set-up: two commands", "## Use", "## Speed", "## Documentation"):
        assert heading in readme
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert len(links) >= 10
    missing = [link for link in links if not (REPO_ROOT / link).is_file()]
    assert not missing, missing


def test_mkdocs_build_strict(tmp_path):
    import importlib.util

    assert importlib.util.find_spec("mkdocs"), "install the docs extra: pip install -e '.[docs]' (make test does)"
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-4000:]
    site = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")}
    for page in ("index.html", "benchmarks/index.html", "models/sam/index.html", "api/models/index.html",
                 "results/bench-seg.json"):
        assert page in site, page
    api = (tmp_path / "api" / "models" / "index.html").read_text()
    assert "from_preset" in api and "multi-scale ReLU linear attention" in api  # generated from the docstrings
    quickstart = (tmp_path / "quickstart" / "index.html").read_text()
    assert "efficientvit-sam-l0" in quickstart  # the README's tested snippets, included
