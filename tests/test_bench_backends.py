"""`evit-hf bench backends`: rows for every available back end with timings, ratios and output differences,
clear notes for back ends that cannot run here, the table, the JSON and the plot."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("onnxruntime")

from evit_hf.bench import backends  # noqa: E402
from evit_hf.cli import main  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def test_bench_case_times_each_backend_against_pytorch_eager():
    case = backends.Case("tiny", "b0", (64, 64))
    rows = backends.bench_case(case, ("pytorch", "pytorch-plain", "onnxruntime", "tflite", "tensorrt"),
                               threads=1, budget_s=0.5, peers=False)
    timed = {r["backend"]: r for r in rows if "median_ms" in r}
    assert set(timed) >= {"pytorch", "pytorch-plain", "onnxruntime"}
    assert timed["pytorch"]["ratio"] == 1.0 and timed["pytorch"]["max_abs_diff"] == 0.0
    for row in timed.values():
        assert row["iterations"] >= 4 and row["median_ms"] > 0 and row["p90_ms"] >= row["median_ms"]
        assert row["throughput"] == pytest.approx(1e3 / row["median_ms"])
        assert row["max_abs_diff"] < 1e-4 and row["resolution"] == "64x64" and row["threads"] == 1
    notes = {r["backend"]: r["note"] for r in rows if "median_ms" not in r}
    for backend in ("tflite", "tensorrt"):
        assert backend in timed or notes[backend]  # runs where installed, says why not elsewhere
    table = backends.format_table(rows)
    assert "| b0 | onnxruntime | fp32 |" in table


def test_unknown_case_or_backend_is_an_error():
    with pytest.raises(ValueError, match="Unknown case"):
        backends.run(cases=("nope",))
    with pytest.raises(ValueError, match="Unknown back end"):
        backends.run(cases=("cls",), backends=("openvino",))


def test_cli_recipe_writes_table_json_and_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"cases: [cls]\nbackends: [pytorch, onnxruntime]\nthreads: 1\nbudget: 0.5\npeers: false\n"
                      f"json: {tmp_path / 'rows.json'}\nplot: {tmp_path / 'plot.png'}\n")
    assert main(["bench", "backends", "--config", str(recipe)]) == 0
    out = capsys.readouterr().out
    assert "| b1 | pytorch | fp32 | 1 | 224x224 | 1 |" in out and "Measured by `evit-hf bench backends`" in out
    saved = json.loads((tmp_path / "rows.json").read_text())  # a results file (docs/results/*.json)
    assert {r["backend"] for r in saved["rows"]} == {"pytorch", "onnxruntime"}
    assert saved["command"] == f"evit-hf bench backends --config {recipe}" and "logical CPUs" in saved["machine"]
    assert saved["setting"].startswith("Measured by `evit-hf bench backends`")
    assert saved["setting"].endswith("Run with: cases cls; backends pytorch onnxruntime; batch 1; threads 1; "
                                     "budget_s 0.5; peers False.")
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
