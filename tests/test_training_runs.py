"""Training runs as a user launches them: `python training/X.py`, `accelerate launch` on 2 CPU processes,
runs interrupted (Ctrl-C, SIGTERM, SIGKILL) and resumed with the command they print, fine-tuning with another
number of classes, and the demo."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO, script_env, train_script, training_log, two_process_launcher
from evit_hf.training.checkpoints import list_checkpoints
from evit_hf.training.interrupts import REPEAT_WINDOW_S
from interruptions import interrupt, logged_steps, resume_line, run_shell

SEG = ["--crop_size", "64", "--scale_range", "0.75", "1.25", "--progress", "false", "--id_column", "id"]


@pytest.fixture(scope="module")
def tiny_seg(tmp_path_factory) -> Path:
    from evit_hf.data.synthetic import write_synthetic_segmentation

    root = tmp_path_factory.mktemp("seg-data")
    # 21 samples in 4 shards (6, 5, 5, 5): two processes get whole shards, 11 and 10 samples.
    write_synthetic_segmentation(root, num_train=21, num_validation=6, image_size=64, num_shards=4, progress=False)
    return root


def test_seg_training_learns_and_saves_a_loadable_model(tiny_seg, tmp_path):
    out = tmp_path / "run"
    train_script("seg.py", "--dataset", str(tiny_seg), "--output_dir", str(out), "--num_epochs", "6",
                 "--batch_size", "4", "--learning_rate", "3e-3", "--logging_steps", "1", *SEG)
    losses = [record["loss"] for record in training_log(out) if "loss" in record]
    assert len(losses) == 36  # 6 epochs x ceil(21 / 4) steps
    assert np.mean(losses[-6:]) < 0.8 * np.mean(losses[:6]), losses
    results = json.loads((out / "eval_results.json").read_text())
    assert 0.0 < results["mean_iou"] <= 1.0 and set(results["per_class_iou"]) == {
        "background", "disk", "rectangle", "triangle", "ring"}
    assert results["global_step"] == 36
    from transformers import AutoModelForSemanticSegmentation, pipeline

    model = AutoModelForSemanticSegmentation.from_pretrained(out)
    assert model.config.num_labels == 5 and model.config.id2label[4] == "ring"
    from datasets import load_dataset

    sample = next(iter(load_dataset(str(tiny_seg), split="validation", streaming=True)))
    segments = pipeline("image-segmentation", model=str(out))(sample["image"])
    assert {s["label"] for s in segments} <= {"background", "disk", "rectangle", "triangle", "ring"}
    assert all(s["mask"].size == sample["image"].size for s in segments)


def test_two_processes_see_every_sample_exactly_once(tiny_seg, tmp_path):
    """A real 2-process gloo run on shares of 11 and 10 samples: nothing lost, nothing seen twice, no hang."""
    out = tmp_path / "ddp"
    launcher = two_process_launcher()
    result = train_script("seg.py", "--dataset", str(tiny_seg), "--output_dir", str(out), "--num_epochs", "2",
                    "--batch_size", "2", "--gradient_accumulation_steps", "2", "--log_sample_ids", *SEG,
                    launcher=launcher, env=script_env(ACCELERATE_USE_CPU="true"))
    assert "Training on 2 process(es) (MULTI_CPU" in result.stdout
    expected = sorted(f"train-{i:06d}" for i in range(21))
    for epoch in range(2):
        ranks = [(out / "samples" / f"epoch{epoch}-rank{r}.txt").read_text().split() for r in range(2)]
        assert sorted(len(ids) for ids in ranks) == [10, 11]
        assert sorted(ranks[0] + ranks[1]) == expected  # each sample exactly once per epoch
    results = json.loads((out / "eval_results.json").read_text())
    # ceil(11 / 2) = 6 micro-batches per epoch (the shorter share joins its last one with weight 0), 2 per step
    assert results["global_step"] == 6


# The interrupted runs: 7 steps per epoch on one process (4 on two), a checkpoint every 3 steps, loss logged every
# step (the sign that training is under way).
RUN = ["--dataset", "", "--num_epochs", "4", "--batch_size", "3", "--checkpointing_steps", "3", "--learning_rate",
       "3e-3", "--preprocessing_threads", "1", "--logging_steps", "1", *SEG]


def _run_args(data: Path) -> list[str]:
    return [str(data) if arg == "" else arg for arg in RUN]


def _two_process_env() -> dict[str, str]:
    return script_env(ACCELERATE_USE_CPU="true")


@pytest.fixture(scope="module")
def uninterrupted(tiny_seg, tmp_path_factory) -> Path:
    """The reference: the interrupted runs below must end exactly here."""
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    train_script("seg.py", "--output_dir", str(out), *_run_args(tiny_seg))
    return out


@pytest.fixture(scope="module")
def uninterrupted_two_processes(tiny_seg, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted-ddp") / "run"
    train_script("seg.py", "--output_dir", str(out), *_run_args(tiny_seg), launcher=two_process_launcher(),
                 env=_two_process_env())
    return out


def _assert_same_run(reference: Path, resumed: Path) -> None:
    """Same number of steps, same metrics, same weights (fp32 tolerance) as the uninterrupted run."""
    from safetensors.torch import load_file

    a = json.loads((reference / "eval_results.json").read_text())
    b = json.loads((resumed / "eval_results.json").read_text())
    assert b["global_step"] == a["global_step"]
    assert b["mean_iou"] == pytest.approx(a["mean_iou"], abs=1e-9)
    assert b["per_class_iou"] == pytest.approx(a["per_class_iou"], abs=1e-9, nan_ok=True)
    weights_a, weights_b = load_file(reference / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert max(float((weights_a[k].float() - weights_b[k].float()).abs().max()) for k in weights_a) < 1e-6
    assert (resumed / "training_args.yaml").read_text() == (reference / "training_args.yaml").read_text().replace(
        str(reference), str(resumed))  # the run's settings, written at its start, not rewritten by the resume


def test_ctrl_c_saves_and_the_printed_command_resumes_to_the_same_result(tiny_seg, uninterrupted, tmp_path):
    """SIGINT after the first logged step: the step finishes, a checkpoint is written, the resume command is
    printed, exit 130; that command alone (`--output_dir D --resume_from_checkpoint latest`) finishes the run
    exactly as the uninterrupted one."""
    out = tmp_path / "run"
    status, stderr = interrupt(
        [sys.executable, str(REPO / "training" / "seg.py"), "--output_dir", str(out), *_run_args(tiny_seg)],
        lambda: logged_steps(out) >= 1, [signal.SIGINT], script_env(), tmp_path / "stderr")
    assert status == 130
    stopped_at = json.loads((out / "log.jsonl").read_text().splitlines()[-1])["step"]
    checkpoint = out / "checkpoints" / f"checkpoint-{stopped_at}"
    assert f"Stopped by SIGINT after step {stopped_at}; checkpoint: {checkpoint}. Resume with:" in stderr
    assert (checkpoint / "trainer_state.json").is_file() and not (out / "eval_results.json").exists()
    line = resume_line(stderr)
    assert line.endswith(f"training/seg.py --output_dir {out} --resume_from_checkpoint latest")
    result = run_shell(line, script_env())
    assert f"Resumed from {checkpoint}: epoch " in result.stdout
    _assert_same_run(uninterrupted, out)


def test_two_processes_stop_at_the_same_step_and_resume_to_the_same_result(
        tiny_seg, uninterrupted_two_processes, tmp_path):
    """Ctrl-C to `accelerate launch` on 2 processes (gloo): the launcher forwards it, both processes stop after
    the same step and write one checkpoint; the printed command (launcher flags included) resumes it."""
    out = tmp_path / "run"
    env = _two_process_env()
    status, stderr = interrupt(
        [*two_process_launcher(), str(REPO / "training" / "seg.py"), "--output_dir", str(out), *_run_args(tiny_seg)],
        lambda: logged_steps(out) >= 1, [signal.SIGINT], env, tmp_path / "stderr")
    assert status == 130, stderr[-3000:]
    assert stderr.count("Stopped by SIGINT after step") == 1  # printed by the main process only
    line = resume_line(stderr)
    assert line.startswith("ACCELERATE_USE_CPU=true ") and "--num_processes 2" in line
    state = json.loads((list_checkpoints(out)[-1] / "trainer_state.json").read_text())
    assert len(state["consumed"]) == 2 and 0 < state["global_step"] < 16
    result = run_shell(line, script_env())  # the line sets ACCELERATE_USE_CPU itself
    assert "Training on 2 process(es) (MULTI_CPU" in result.stdout
    _assert_same_run(uninterrupted_two_processes, out)


def test_a_signal_to_one_process_stops_every_process_after_the_same_step(tiny_seg, tmp_path):
    """SIGTERM to the second worker only (as a scheduler may deliver it): the request is combined across the
    processes after every step, so both stop after the same step and write one checkpoint together; the main
    process, which got no signal, prints the resume command."""
    import psutil

    def second_worker(launcher: int) -> int:
        workers = psutil.Process(launcher).children(recursive=True)
        return next(w.pid for w in workers if w.environ().get("RANK") == "1")

    out = tmp_path / "run"
    status, stderr = interrupt(
        [*two_process_launcher(), str(REPO / "training" / "seg.py"), "--output_dir", str(out), *_run_args(tiny_seg)],
        lambda: logged_steps(out) >= 1, [signal.SIGTERM], _two_process_env(), tmp_path / "stderr",
        target=second_worker)
    assert status != 0 and stderr.count("Stopped by SIGTERM after step") == 1, stderr[-3000:]
    checkpoint = list_checkpoints(out)[-1]
    step = json.loads((checkpoint / "trainer_state.json").read_text())["global_step"]
    assert f"Stopped by SIGTERM after step {step}; checkpoint: {checkpoint}." in stderr
    assert {p.name for p in checkpoint.glob("random_states_*.pkl")} == {"random_states_0.pkl", "random_states_1.pkl"}
    assert not (out / "eval_results.json").exists()


def test_sigterm_then_a_kill_then_the_readme_resume_line(tiny_seg, uninterrupted, tmp_path):
    """A cluster's SIGTERM (exit 143, checkpoint, resume command), then SIGKILL during the resumed run (no
    chance to save), then the README's `--output_dir D --resume_from_checkpoint latest` finishes the run."""
    out = tmp_path / "run"
    script = [sys.executable, str(REPO / "training" / "seg.py")]
    status, stderr = interrupt([*script, "--output_dir", str(out), *_run_args(tiny_seg)],
                               lambda: logged_steps(out) >= 1, [signal.SIGTERM], script_env(), tmp_path / "term")
    assert status == 143 and "Stopped by SIGTERM after step" in stderr
    resume = ["--output_dir", str(out), "--resume_from_checkpoint", "latest"]
    assert resume_line(stderr).endswith(" ".join(resume))

    checkpoint = out / "checkpoints" / "checkpoint-9"  # mid-epoch 2 (7 steps per epoch)
    status, _ = interrupt([*script, *resume], checkpoint.exists, [signal.SIGKILL], script_env(), tmp_path / "kill")
    assert status == -signal.SIGKILL and checkpoint.exists() and not (out / "eval_results.json").exists()

    train_script("seg.py", *resume)
    _assert_same_run(uninterrupted, out)


def test_a_second_ctrl_c_exits_at_once(tiny_seg, tmp_path):
    """The first SIGINT arrives during a slow evaluation (21 images upscaled to 1024 pixels); the second, after
    the window in which a launcher's forwarded copy is ignored, ends the run at once: nothing saved, exit 130."""
    out = tmp_path / "run"
    command = [sys.executable, str(REPO / "training" / "seg.py"), "--output_dir", str(out), *_run_args(tiny_seg),
               "--eval_at_start", "--eval_split", "train", "--eval_short_side", "1024", "--eval_batch_size", "1"]
    log = tmp_path / "stderr"
    status, stderr = interrupt(command, lambda: "Training on 1 process" in log.with_suffix(".out").read_text(),
                               [signal.SIGINT, signal.SIGINT], script_env(PYTHONUNBUFFERED="1"), log,
                               pause=REPEAT_WINDOW_S + 0.5)
    assert status == 130
    assert "SIGINT: stopping after the current step" in stderr and "SIGINT again: exiting at once" in stderr
    assert not (out / "checkpoints").exists() and "Stopped by" not in stderr


def test_a_resume_that_changes_the_run_is_refused(uninterrupted, tmp_path):
    """Exit 2 before loading anything, naming the argument and both values; the saved settings unchanged. A new
    run in a folder holding checkpoints is refused too (its checkpoints would mix with the old run's)."""
    saved = (uninterrupted / "training_args.yaml").read_text()
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(REPO / "training" / "seg.py"), "--output_dir", str(uninterrupted),
                             "--resume_from_checkpoint", "latest", "--learning_rate", "0.002"],
                            capture_output=True, text=True, env=script_env(), cwd=REPO, timeout=120)
    assert result.returncode == 2 and time.monotonic() - started < 60
    assert result.stderr.strip() == (
        f"error: --learning_rate 0.002 differs from the run's 0.003 (saved in {uninterrupted}/training_args.yaml); "
        "resume with the saved value or start a new --output_dir.")
    assert (uninterrupted / "training_args.yaml").read_text() == saved

    result = subprocess.run([sys.executable, str(REPO / "training" / "seg.py"), "--output_dir", str(uninterrupted),
                             "--max_steps", "1"], capture_output=True, text=True, env=script_env(), cwd=REPO,
                            timeout=120)
    assert result.returncode == 2 and "already holds a run with checkpoints" in result.stderr
    assert (uninterrupted / "training_args.yaml").read_text() == saved


def test_finetune_from_a_checkpoint_with_other_classes(tiny_seg, tmp_path):
    from evit_hf.models.efficientvit import (
        EfficientViTConfig,
        EfficientViTForImageClassification,
        EfficientViTForSemanticSegmentation,
    )

    torch.manual_seed(0)
    cityscapes = tmp_path / "seg-b0-cityscapes"
    EfficientViTForSemanticSegmentation(EfficientViTConfig.from_preset("seg-b0-cityscapes")).save_pretrained(
        cityscapes)
    out = tmp_path / "finetuned"
    result = train_script("seg.py", "--dataset", str(tiny_seg), "--output_dir", str(out), "--model_name_or_path",
                    str(cityscapes), "--max_steps", "2", "--eval_split", "none", *SEG)
    assert "for 5 classes; newly initialised (to be trained): decode_head" in result.stdout
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"]["4"] == "ring"
    before = EfficientViTForSemanticSegmentation.from_pretrained(cityscapes).state_dict()
    after = EfficientViTForSemanticSegmentation.from_pretrained(out).state_dict()
    head = [k for k in after if k.startswith("decode_head") and after[k].ndim == 4][-1]
    assert after[head].shape[0] == 5 and before[head].shape[0] == 19
    # The backbone kept the checkpoint's weights (changed by two small steps only).
    key = next(k for k in before if k.startswith("efficientvit.encoder.stages.1") and k.endswith("weight"))
    assert torch.allclose(before[key], after[key], atol=0.05)

    # A classification checkpoint (e.g. converted ImageNet weights) as the backbone of a segmentation preset.
    classifier = tmp_path / "cls-b0"
    EfficientViTForImageClassification(EfficientViTConfig.from_preset("b0", num_labels=10)).save_pretrained(
        classifier)
    result = train_script("seg.py", "--dataset", str(tiny_seg), "--output_dir", str(tmp_path / "from-cls"),
                    "--model_name_or_path", str(classifier), "--preset", "seg-b0-cityscapes", "--max_steps", "1",
                    "--eval_split", "none", *SEG)
    assert "newly initialised (to be trained): decode_head" in result.stdout
    assert "efficientvit.encoder" not in result.stdout.split("newly initialised")[1].splitlines()[0]


def _image_folder(root: Path) -> None:
    """Two classes told apart by brightness, as an `imagefolder` dataset with train/validation splits."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 16), ("validation", 6)):
        for label, level in (("dark", 40), ("bright", 210)):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(count // 2):
                pixels = np.clip(rng.normal(level, 20, (48, 56, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")


def test_classification_training_on_an_image_folder(tmp_path):
    data = tmp_path / "images"
    _image_folder(data)
    out = tmp_path / "cls"
    train_script("cls.py", "--dataset", str(data), "--output_dir", str(out), "--num_epochs", "4", "--batch_size", "4",
           "--image_size", "64", "--learning_rate", "2e-3", "--logging_steps", "1", "--progress", "false",
           "--mixed_precision", "bf16")
    results = json.loads((out / "eval_results.json").read_text())
    assert results["samples"] == 6 and results["top1_accuracy"] >= 0.5
    config = json.loads((out / "config.json").read_text())
    assert sorted(config["id2label"].values()) == ["bright", "dark"]
    losses = [r["loss"] for r in training_log(out) if "loss" in r]
    assert len(losses) == 16 and np.mean(losses[-4:]) < np.mean(losses[:4])


def test_demo_trains_and_writes_an_overlay(tmp_path, monkeypatch, capsys):
    from evit_hf.cli import main
    from evit_hf.data.synthetic import write_synthetic_segmentation

    monkeypatch.setenv("EVIT_HF_HOME", str(tmp_path / "home"))
    write_synthetic_segmentation(tmp_path / "home" / "synthetic-seg", num_train=12, num_validation=4, image_size=64,
                                 num_shards=2, progress=False)
    assert main(["demo", "--presets", "b0", "--budget", "0.05", "--out", str(tmp_path / "demo"),
                 "--train-steps", "3"]) == 0
    output = capsys.readouterr().out
    assert "Held-out mIoU" in output and "(3 steps)" in output
    from evit_hf.sr_utils import has_embedded_sr_checkpoint

    if has_embedded_sr_checkpoint():  # the shipped SR checkpoint upscales a held-out photo next to bicubic
        assert "Super-resolution x2 of the held-out photograph 'chelsea'" in output
        assert Image.open(tmp_path / "demo" / "sr_side_by_side.png").width > 900
    overlay = Image.open(tmp_path / "demo" / "overlay.png")
    assert overlay.height == 256 and overlay.width > 256  # the image plus the legend


def test_push_to_hub_uploads_the_final_folder(tiny_seg, tmp_path, monkeypatch):
    """`--push_to_hub` creates the repo and uploads the saved model (Hub API mocked: no network)."""
    import huggingface_hub

    from evit_hf.training.segmentation import SegmentationArguments, train_segmentation

    calls = {}

    class FakeApi:
        def create_repo(self, repo_id, exist_ok=False):
            calls["create"] = (repo_id, exist_ok)
            return huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}")

        def upload_folder(self, repo_id, folder_path, ignore_patterns, commit_message):
            calls["upload"] = (repo_id, sorted(p.name for p in Path(folder_path).iterdir()), ignore_patterns)

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    out = tmp_path / "pushed"
    train_segmentation(SegmentationArguments(
        dataset=str(tiny_seg), output_dir=str(out), max_steps=1, eval_split=None, crop_size=[64],
        push_to_hub=True, hub_model_id="me/efficientvit-seg-synthetic", progress=False))
    assert calls["create"] == ("me/efficientvit-seg-synthetic", True)
    repo_id, files, ignored = calls["upload"]
    assert repo_id == "me/efficientvit-seg-synthetic" and "checkpoints/*" in ignored
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "modeling_efficientvit.py"} <= set(files)
