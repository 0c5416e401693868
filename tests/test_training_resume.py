"""Resuming restores the run's own arguments, for every training script (seg, cls, SR, SAM both stages): only
`--output_dir` and `--resume_from_checkpoint` are needed, arguments given again must agree with the saved
ones unless they may change on resume, and a disagreement is refused naming both values. Also: checkpoints
on disk (atomic writes, `latest`), the resume command and the stop-signal handler. Real interrupted and
resumed training runs are in test_training_runs.py."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest
import yaml

from evit_hf.training.arguments import RESUMABLE_FIELDS, arguments_dict, parse_arguments
from evit_hf.training.checkpoints import find_checkpoint, list_checkpoints, publish, staging_path
from evit_hf.training.classification import ClassificationArguments
from evit_hf.training.interrupts import REPEAT_WINDOW_S, StopSignals, resume_command
from evit_hf.training.sam import SamArguments
from evit_hf.training.segmentation import SegmentationArguments
from evit_hf.training.super_resolution import SuperResolutionArguments


def _saved_run(folder: Path, args, steps=(3,)) -> Path:
    """A run folder as the trainer leaves it: training_args.yaml and complete checkpoints at `steps`."""
    folder.mkdir(parents=True)
    (folder / "training_args.yaml").write_text(yaml.safe_dump(arguments_dict(args), sort_keys=False))
    for step in steps:
        checkpoint = folder / "checkpoints" / f"checkpoint-{step}"
        checkpoint.mkdir(parents=True)
        (checkpoint / "training_args.yaml").write_text((folder / "training_args.yaml").read_text())
        (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return folder


# (arguments class, the run's non-default arguments, a task-specific argument that may not change, a new value)
RUNS = {
    "seg": (SegmentationArguments, {"crop_size": [64, 96], "num_epochs": 2, "learning_rate": 0.001},
            "crop_size", ["64"]),
    "cls": (ClassificationArguments, {"image_size": 64, "label_smoothing": 0.0, "num_labels": 3},
            "label_smoothing", ["0.1"]),
    "sr": (SuperResolutionArguments, {"patch_size": 48, "repeats": 4, "max_steps": 30}, "patch_size", ["32"]),
    "sam-distill": (SamArguments, {"stage": "distill", "teacher_model": "teacher/sam", "image_size": 64},
                    "teacher_model", ["other/sam"]),
    "sam-finetune": (SamArguments, {"lora_rank": 4, "masks_per_image": 4, "box_jitter": 0.1}, "stage", ["distill",
                                                                                                      "--teacher_model",
                                                                                                      "teacher/sam"]),
}


@pytest.mark.parametrize("script", list(RUNS))
def test_resume_restores_the_saved_arguments_of_every_script(script, tmp_path):
    arguments_class, settings, fixed, new_value = RUNS[script]
    run = arguments_class(output_dir=str(tmp_path / "run"), dataset="my/data", batch_size=5, **settings)
    _saved_run(tmp_path / "run", run)
    resumed = parse_arguments(arguments_class, ["--output_dir", str(tmp_path / "run"), "--resume_from_checkpoint",
                                                "latest"])
    assert arguments_dict(resumed) == {**arguments_dict(run), "resume_from_checkpoint": "latest"}

    # given again with the same value (spelled differently): accepted; may change on resume: applied
    resumed = parse_arguments(arguments_class, [
        "--output_dir", str(tmp_path / "run"), "--resume_from_checkpoint", "latest", "--batch_size", "5",
        "--learning_rate", repr(float(run.learning_rate)), "--logging_steps", "3", "--report_to", "tensorboard",
        "--eval_batch_size", "2", "--preprocessing_threads", "7"])
    assert (resumed.logging_steps, resumed.report_to, resumed.eval_batch_size, resumed.preprocessing_threads) == (
        3, ["tensorboard"], 2, 7)
    assert resumed.batch_size == 5 and resumed.dataset == "my/data"

    # a task-specific argument of the model / data / augmentation: refused with both values
    with pytest.raises(ValueError) as refused:
        parse_arguments(arguments_class, ["--output_dir", str(tmp_path / "run"), "--resume_from_checkpoint",
                                          "latest", f"--{fixed}", *new_value])
    message = str(refused.value)
    assert f"--{fixed} " in message and "differs from the run's" in message and "\n" not in message
    assert str(tmp_path / "run" / "training_args.yaml") in message


def test_refusal_names_each_argument_and_both_values(tmp_path):
    run = SegmentationArguments(output_dir=str(tmp_path / "D"), learning_rate=0.001, batch_size=3)
    _saved_run(tmp_path / "D", run)
    with pytest.raises(ValueError) as refused:
        parse_arguments(SegmentationArguments, ["--output_dir", str(tmp_path / "D"), "--resume_from_checkpoint",
                                                "latest", "--learning_rate", "0.002", "--num_epochs", "5"])
    assert str(refused.value) == (
        f"--learning_rate 0.002 differs from the run's 0.001; --num_epochs 5 differs from the run's 3 (saved in "
        f"{tmp_path / 'D' / 'training_args.yaml'}); resume with the saved values or start a new --output_dir.")
    # a recipe given again counts as given: its values are checked too
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("learning_rate: 0.001\nbatch_size: 4\n")
    with pytest.raises(ValueError, match="--batch_size 4 differs from the run's 3"):
        parse_arguments(SegmentationArguments, ["--config", str(recipe), "--output_dir", str(tmp_path / "D"),
                                                "--resume_from_checkpoint", "latest"])


def test_resume_from_a_checkpoint_folder_and_its_errors(tmp_path):
    run = SegmentationArguments(output_dir="relative/when/saved", num_epochs=7)
    _saved_run(tmp_path / "D", run, steps=(3, 12))
    checkpoint = tmp_path / "D" / "checkpoints" / "checkpoint-3"
    resumed = parse_arguments(SegmentationArguments, ["--resume_from_checkpoint", str(checkpoint)])
    assert resumed.output_dir == str(tmp_path / "D") and resumed.num_epochs == 7  # the checkpoint's run folder
    # a checkpoint copied elsewhere carries its arguments; the run continues in the given output_dir
    copied = tmp_path / "elsewhere" / "checkpoint-12"
    copied.parent.mkdir()
    (tmp_path / "D" / "checkpoints" / "checkpoint-12").rename(copied)
    resumed = parse_arguments(SegmentationArguments, ["--resume_from_checkpoint", str(copied), "--output_dir",
                                                      str(tmp_path / "E")])
    assert resumed.output_dir == str(tmp_path / "E") and resumed.num_epochs == 7

    with pytest.raises(ValueError, match="holds no training run"):
        parse_arguments(SegmentationArguments, ["--output_dir", str(tmp_path / "none"), "--resume_from_checkpoint",
                                                "latest"])
    with pytest.raises(ValueError, match="not a complete checkpoint folder"):
        parse_arguments(SegmentationArguments, ["--resume_from_checkpoint", str(tmp_path / "D")])
    (tmp_path / "started").mkdir()
    (tmp_path / "started" / "training_args.yaml").write_text(yaml.safe_dump(arguments_dict(run)))
    with pytest.raises(ValueError, match="stopped before saving one; start it again without"):
        parse_arguments(SegmentationArguments, ["--output_dir", str(tmp_path / "started"),
                                                "--resume_from_checkpoint", "latest"])
    with pytest.raises(ValueError, match=r"fields this script does not know \(crop_size"):  # a seg run in cls.py
        parse_arguments(ClassificationArguments, ["--output_dir", str(tmp_path / "D"), "--resume_from_checkpoint",
                                                  "latest"])


def test_resumable_fields_exist_and_are_marked_in_help():
    from evit_hf.training.arguments import build_parser

    names = {name for cls in (SegmentationArguments, SamArguments) for name in cls.__dataclass_fields__}
    assert RESUMABLE_FIELDS <= names
    text = " ".join(build_parser(SegmentationArguments).format_help().split())
    assert text.count("(may change on resume)") == len(RESUMABLE_FIELDS) - 1


def test_latest_ignores_checkpoints_being_written(tmp_path):
    _saved_run(tmp_path / "D", SegmentationArguments(), steps=(4, 10))
    folder = tmp_path / "D" / "checkpoints"
    # a save killed after writing its state file but before the rename, and one killed earlier
    (folder / "checkpoint-20.partial").mkdir()
    (folder / "checkpoint-20.partial" / "trainer_state.json").write_text("{}")
    (folder / "checkpoint-30").mkdir()  # no state file: never complete
    assert [p.name for p in list_checkpoints(tmp_path / "D")] == ["checkpoint-4", "checkpoint-10"]
    assert find_checkpoint("latest", tmp_path / "D").name == "checkpoint-10"

    final = folder / "checkpoint-10"
    staging = staging_path(final)
    staging.mkdir()
    (staging / "trainer_state.json").write_text('{"new": true}')
    publish(staging, final)  # replaces the older copy of step 10, removes the stale staging folder of step 20
    assert json.loads((final / "trainer_state.json").read_text()) == {"new": True}
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint-10", "checkpoint-30", "checkpoint-4"]


def test_resume_command_repeats_the_launch(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["training/seg.py", "--lr", "1"])
    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)
    command = resume_command("out dir", 1)  # pytest's parent is no launcher: the interpreter runs the script
    assert command.endswith("training/seg.py --output_dir 'out dir' --resume_from_checkpoint latest")
    assert command.split()[0] in ("python", sys.executable, Path(sys.executable).name)
    monkeypatch.setenv("ACCELERATE_USE_CPU", "true")
    assert resume_command("o", 2).startswith("ACCELERATE_USE_CPU=true accelerate launch --multi_gpu "
                                             "--num_processes 2 training/seg.py --output_dir o")


def test_first_signal_is_a_request_and_a_repeat_within_the_window_is_ignored(capfd):
    previous = signal.getsignal(signal.SIGTERM)
    with StopSignals("stopping after the current step") as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)  # a launcher forwarding the same interruption
        assert stop.requested == signal.SIGTERM  # the process is still alive: no exit within the window
    assert signal.getsignal(signal.SIGTERM) is previous
    assert "SIGTERM: stopping after the current step" in capfd.readouterr().err
    assert REPEAT_WINDOW_S <= 2  # a real second Ctrl-C is not held back long (tested in test_training_runs.py)
