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


def test_the_docs_show_what_the_demo_prints(tmp_path, monkeypatch, capsys):
    """`evit-hf demo` records its training figures and prints them; the docs render the same record into the same
    table. A short run (1 epoch, 6 steps: the record path, not the full 3-epoch demo of ~20 minutes here); the
    published record is itself a demo run's."""
    import json
    import shutil

    from evit_hf.release import render, results

    out = tmp_path / "demo"
    assert main(["demo", "--presets", "b0", "--budget", "0.05", "--train-epochs", "1", "--train-steps", "6",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    record = json.loads((out / "train-seg-synthetic.json").read_text())
    assert record["command"] == "evit-hf demo --train-epochs 1 --train-steps 6"
    (final,) = record["rows"]
    assert final["epoch"] == 0 and final["steps"] == 6 and set(final["per_class_iou"]) == {
        "background", "disk", "rectangle", "triangle", "ring"}
    assert f"Held-out mIoU {final['mean_iou']:.2f}% after {final['train_s']} s of training (6 steps)" in printed

    docs = tmp_path / "results"
    shutil.copytree(results.RESULTS_DIR, docs)
    shutil.copyfile(out / "train-seg-synthetic.json", docs / "train-seg-synthetic.json")
    results.load.cache_clear()
    try:  # the cache must not keep the short run's record beyond this block (later tests render the docs)
        with monkeypatch.context() as patched:
            patched.setattr(results, "RESULTS_DIR", docs)
            rendered = render.render_view("train-seg-synthetic", render.REPO_ROOT / "docs" / "training.md")
    finally:
        results.load.cache_clear()
    table = rendered.strip().split("\n\n")[0]
    assert table.startswith("| epoch | steps | training time | mIoU | pixel acc. | background |")
    assert f"| {final['mean_iou']:.2f} |" in table and table in printed
    assert "with `evit-hf demo --train-epochs 1 --train-steps 6`" in rendered

    published = results.load("train-seg-synthetic")
    assert published.command.startswith("evit-hf demo ") and published.rows[-1]["seed"] == final["seed"]
    # The demo's super-resolution figures are the docs' held-out row for the same photograph.
    chelsea = results.load("sr-heldout").one(photo="chelsea")
    assert (f"'chelsea' (PSNR-Y vs the original): bicubic {chelsea['bicubic_psnr_y']:.2f} dB, EfficientViT-SR "
            f"{chelsea['psnr_y']:.2f} dB ({chelsea['psnr_gain_db']:+.2f} dB)") in printed


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
