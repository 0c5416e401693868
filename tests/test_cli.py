"""The `evit-hf` command line as a user runs it: demo, convert, and clear errors."""

from __future__ import annotations

import torch

from evit_hf.cli import main


def test_demo_prints_the_zoo_table(capsys):
    assert main(["demo", "--presets", "b0", "l0", "--budget", "0.1", "--train-epochs", "0"]) == 0
    out = capsys.readouterr().out
    assert "| preset |" in out and "| b0 | classifier |" in out and "| l0 | backbone |" in out
    row = next(line for line in out.splitlines() if line.startswith("| b0 |"))
    params, gmacs = (float(v) for v in row.split("|")[3:5])
    assert abs(params - 3.41) < 0.01  # the original B0 classifier: 3.41M parameters
    assert 0.05 < gmacs < 0.2


def test_convert_writes_a_loadable_folder(tmp_path, original_fixture, capsys):
    from transformers import AutoModelForImageClassification

    fixture = original_fixture("cls-b0")
    checkpoint = tmp_path / "efficientvit_b0_r224.pt"
    torch.save(fixture.state_dict, checkpoint)
    out_dir = tmp_path / "efficientvit-b0-r224"
    assert main(["convert", "--variant", "cls-b0", "--checkpoint", str(checkpoint), "--out", str(out_dir)]) == 0
    model = AutoModelForImageClassification.from_pretrained(out_dir).eval()
    with torch.inference_mode():
        assert (model(fixture.image).logits - fixture.outputs["logits"]).abs().max() < 1e-4
    assert (out_dir / "preprocessor_config.json").exists()


def test_convert_errors_are_messages_not_tracebacks(tmp_path, capsys):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"\x80garbage")
    assert main(["convert", "--variant", "cls-b1", "--checkpoint", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "Could not read checkpoint" in capsys.readouterr().err
    assert main(["convert", "--variant", "cls-x9", "--checkpoint", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "Unknown variant 'cls-x9'" in capsys.readouterr().err
