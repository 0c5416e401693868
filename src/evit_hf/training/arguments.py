"""Training arguments: one dataclass per task, filled from a YAML recipe and then from command-line overrides.

`parse_arguments(SegmentationArguments, argv)` reads `--config recipe.yaml` first (keys are the field names
below), then applies every other `--field value` on top, so a recipe is a named set of defaults and any
field can be changed on the command line. `--help` lists every field with its documentation.

A resume (`--resume_from_checkpoint latest|PATH`) restores the run's own arguments, saved in
`output_dir/training_args.yaml` when it started: the schedule, data and model cannot differ from the run
being continued. Arguments given again must agree with the saved ones, except those in `RESUMABLE_FIELDS`
(how the run is observed, evaluated, checkpointed and fed), which apply to this invocation only.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .checkpoints import ARGUMENTS_FILE, find_checkpoint
from .interrupts import TrainingInterrupted

T = TypeVar("T", bound="TrainingArguments")

#: Fields a resumed run may give with another value than the run's: they change where the run is read from,
#: how it is logged, evaluated and checkpointed, or how fast its data are prepared (the sample order stays
#: the same), never the model, the data or the schedule, so the resumed run trains exactly as the original.
RESUMABLE_FIELDS = frozenset({
    "output_dir", "resume_from_checkpoint",
    "eval_batch_size", "eval_every_epochs", "eval_at_start",
    "checkpointing_steps", "checkpoint_every_epoch", "checkpoints_total_limit",
    "logging_steps", "report_to", "project_name", "progress", "log_sample_ids", "id_column",
    "preprocessing_threads", "push_to_hub", "hub_model_id",
})


def _arg(default: Any, help: str, **kwargs: Any) -> Any:
    return field(default=default, metadata={"help": help, **kwargs})


@dataclass
class TrainingArguments:
    """Fields shared by every task: data source, optimisation, checkpoints, logging."""

    output_dir: str = _arg("outputs/run", "where checkpoints, logs and the final model are written")
    seed: int = _arg(0, "seed of the model initialisation, the data order and the augmentation")

    # model
    model_name_or_path: str | None = _arg(
        None, "start from this saved folder or Hub id (e.g. a converted original checkpoint); the head is "
        "re-initialised when the number of labels differs")
    preset: str | None = _arg(None, "build this architecture preset with fresh weights (when no model is given)")

    # data
    dataset: str = _arg("synthetic", "a Hub dataset id, a local folder (image folder or parquet shards), a parquet "
                        "glob, or `synthetic` (the built-in dataset, generated on first use)")
    dataset_config: str | None = _arg(None, "the dataset's configuration name, if it has several")
    train_split: str = _arg("train", "split to train on")
    eval_split: str | None = _arg("validation", "split to evaluate on (empty or `none` to skip evaluation)")
    image_column: str = _arg("image", "column holding the images")
    label_column: str = _arg("label", "column holding the labels (class ids, or segmentation maps)")
    id_column: str | None = _arg(None, "column holding a sample id (only used with `log_sample_ids`)")
    streaming: bool = _arg(True, "stream the dataset instead of downloading and caching it whole")
    shuffle_buffer: int = _arg(1000, "size of the streaming shuffle buffer (0: keep the stream order)")
    max_train_samples: int | None = _arg(None, "train on the first N samples of the split only")
    max_eval_samples: int | None = _arg(None, "evaluate on the first N samples of the split only")
    num_train_samples: int | None = _arg(
        None, "length of the training split, for the schedule; counted in one pass over the stream when unknown")
    preprocessing_threads: int = _arg(2, "threads decoding and augmenting samples (order stays deterministic)")

    # optimisation
    num_epochs: int = _arg(10, "passes over the training split")
    max_steps: int | None = _arg(None, "stop after this many optimizer steps (overrides num_epochs for the schedule)")
    batch_size: int = _arg(8, "samples per process per micro-batch")
    eval_batch_size: int | None = _arg(None, "samples per process per evaluation batch (default: batch_size)")
    gradient_accumulation_steps: int = _arg(1, "micro-batches per optimizer step")
    learning_rate: float = _arg(1e-3, "peak learning rate (AdamW)")
    weight_decay: float = _arg(0.05, "AdamW weight decay; never applied to norms and biases")
    adam_beta1: float = _arg(0.9, "AdamW beta1")
    adam_beta2: float = _arg(0.999, "AdamW beta2")
    warmup_steps: int | None = _arg(None, "linear warm-up steps (default: warmup_ratio of all steps)")
    warmup_ratio: float = _arg(0.05, "linear warm-up as a fraction of all optimizer steps")
    min_lr_ratio: float = _arg(0.0, "the cosine schedule ends at learning_rate * min_lr_ratio")
    max_grad_norm: float | None = _arg(1.0, "clip the gradient norm to this (empty: no clipping)")
    mixed_precision: str | None = _arg(
        None, "`no`, `bf16` or `fp16` (default: what `accelerate config` / `accelerate launch` says)",
        choices=[None, "no", "bf16", "fp16"])

    # evaluation, checkpoints, logging
    eval_every_epochs: int = _arg(1, "evaluate after every N epochs (and always at the end)")
    eval_at_start: bool = _arg(False, "also evaluate before training (the starting point, logged at step 0)")
    checkpointing_steps: int | None = _arg(None, "save a resumable checkpoint every N optimizer steps")
    checkpoint_every_epoch: bool = _arg(True, "save a resumable checkpoint at the end of every epoch")
    checkpoints_total_limit: int | None = _arg(2, "keep only the newest N checkpoints")
    resume_from_checkpoint: str | None = _arg(
        None, "continue a run: `latest` (the newest checkpoint in output_dir) or a checkpoint folder; the run's "
        "saved arguments (output_dir/training_args.yaml) are restored, and arguments given again must agree with "
        "them unless marked 'may change on resume'")
    logging_steps: int = _arg(10, "log the training loss every N optimizer steps")
    report_to: list[str] = field(default_factory=list, metadata={
        "help": "Accelerate trackers (`tensorboard`, `wandb`, `all`, ...); training metrics are always written to "
        "output_dir/log.jsonl too", "nargs": "*"})
    project_name: str = _arg("evit-hf", "tracker project name")
    push_to_hub: bool = _arg(False, "push the final model to the Hub")
    hub_model_id: str | None = _arg(None, "Hub repo id for push_to_hub (default: the output_dir name)")
    log_sample_ids: bool = _arg(False, "write the id of every training sample each process sees (for checks)")
    progress: bool = _arg(True, "show progress bars (main process only)")

    def __post_init__(self) -> None:
        if self.eval_split is not None and self.eval_split.lower() in ("", "none"):
            self.eval_split = None
        if self.mixed_precision == "":
            self.mixed_precision = None
        for name in ("batch_size", "gradient_accumulation_steps", "num_epochs", "logging_steps", "eval_every_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be at least 1, got {getattr(self, name)}.")
        for name in ("max_steps", "checkpointing_steps", "max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"`{name}` must be at least 1 when set, got {value}.")
        if self.learning_rate <= 0:
            raise ValueError(f"`learning_rate` must be positive, got {self.learning_rate}.")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"`warmup_ratio` must be in [0, 1), got {self.warmup_ratio}.")



def _parse_bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "y", "on"):
        return True
    if lowered in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {value!r}")


def _optional(kind: type) -> Any:
    def convert(value: str) -> Any:
        return None if value.lower() in ("none", "null", "") else kind(value)

    convert.__name__ = kind.__name__
    return convert


def build_parser(arguments_class: type[TrainingArguments], description: str | None = None) -> argparse.ArgumentParser:
    """An argparse parser with one `--field` per dataclass field plus `--config`."""
    parser = argparse.ArgumentParser(description=description or arguments_class.__doc__)
    parser.add_argument("--config", help="YAML recipe whose keys are the fields below (command line wins)")
    hints = {f.name: f.type for f in dataclasses.fields(arguments_class)}
    for f in dataclasses.fields(arguments_class):
        hint = str(hints[f.name])
        meta = dict(f.metadata)
        # SUPPRESS: flags not given stay out of the namespace, so the recipe value (or the field default) wins.
        text = meta.pop("help", None)
        if f.name in RESUMABLE_FIELDS - {"resume_from_checkpoint"}:
            text = f"{text} (may change on resume)"
        kwargs: dict[str, Any] = {"help": text, "dest": f.name, "default": argparse.SUPPRESS}
        if "nargs" in meta:
            kwargs["nargs"] = meta.pop("nargs")
        if "choices" in meta:
            kwargs["choices"] = meta.pop("choices")
        if hint.startswith("bool"):
            kwargs.update(type=_parse_bool, nargs="?", const=True)
        elif hint.startswith("int"):
            kwargs["type"] = _optional(int) if "None" in hint else int
        elif hint.startswith("float"):
            kwargs["type"] = _optional(float) if "None" in hint else float
        elif hint.startswith("list[float]"):
            kwargs["type"] = float
        elif hint.startswith("list[int]"):
            kwargs["type"] = int
        elif "None" in hint:
            kwargs["type"] = _optional(str)
        parser.add_argument(f"--{f.name}", **kwargs)
    return parser


def load_recipe(path: str | Path) -> dict[str, Any]:
    """The key/value pairs of a YAML recipe (a flat mapping of field names)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Recipe {str(path)!r} does not exist.")
    recipe = yaml.safe_load(path.read_text()) or {}
    if not isinstance(recipe, dict):
        raise ValueError(f"Recipe {str(path)!r} must be a mapping of field names to values.")
    return recipe


def parse_arguments(arguments_class: type[T], argv: list[str] | None = None) -> T:
    """Recipe (`--config`) values, overridden by explicit command-line values, as `arguments_class`; for a
    resume, the run's saved arguments with the given ones checked against them (`resumed_arguments`)."""
    parser = build_parser(arguments_class)
    namespace = parser.parse_args(argv)
    values: dict[str, Any] = load_recipe(namespace.config) if namespace.config else {}
    known = {f.name for f in dataclasses.fields(arguments_class)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"Unknown recipe keys in {namespace.config!r}: {unknown}. Run with --help for the fields.")
    values.update({k: v for k, v in vars(namespace).items() if k in known})
    if values.get("resume_from_checkpoint"):
        return resumed_arguments(arguments_class, values)
    return arguments_class(**values)


def saved_arguments_file(spec: str, output_dir: str | None, default_output_dir: str) -> tuple[Path, Path]:
    """(the saved arguments of the run `spec` continues, its run folder) for `--resume_from_checkpoint spec`."""
    if spec == "latest":
        run_dir = Path(output_dir or default_output_dir)
        saved = run_dir / ARGUMENTS_FILE
        if not saved.is_file():
            raise ValueError(f"Cannot resume: {run_dir} holds no training run (no {ARGUMENTS_FILE}); pass the "
                             f"--output_dir of the run to resume.")
        find_checkpoint(spec, run_dir)  # fails now, not after loading the data, when there is none
        return saved, run_dir
    checkpoint = find_checkpoint(spec, output_dir or default_output_dir)
    run_dir = Path(output_dir) if output_dir else checkpoint.parent.parent
    for saved in (checkpoint.parent.parent / ARGUMENTS_FILE, checkpoint / ARGUMENTS_FILE):
        if saved.is_file():
            return saved, run_dir
    raise ValueError(f"Cannot resume from {checkpoint}: neither it nor its run folder holds {ARGUMENTS_FILE}.")


def resumed_arguments(arguments_class: type[T], given: dict[str, Any]) -> T:
    """The arguments of the run `given["resume_from_checkpoint"]` continues: its saved ones, with the `given`
    values of `RESUMABLE_FIELDS`. Any other given value must equal the saved one: a resume that would train
    another schedule, model or data set is refused, naming each argument and both values."""
    default_output_dir = next(f.default for f in dataclasses.fields(arguments_class) if f.name == "output_dir")
    path, run_dir = saved_arguments_file(given["resume_from_checkpoint"], given.get("output_dir"),
                                         default_output_dir)
    saved = yaml.safe_load(path.read_text()) or {}
    known = {f.name for f in dataclasses.fields(arguments_class)}
    unknown = sorted(set(saved) - known)
    if unknown:
        raise ValueError(f"{path} has fields this script does not know ({', '.join(unknown)}): it was written by "
                         "another training script or version; resume it with that one.")
    run = arguments_class(**saved)
    resumed = arguments_class(**{**saved, **given, "output_dir": str(run_dir)})
    differing = [name for name in given
                 if name not in RESUMABLE_FIELDS and getattr(resumed, name) != getattr(run, name)]
    if differing:
        clauses = [f"--{name} {_shown(getattr(resumed, name))} differs from the run's {_shown(getattr(run, name))}"
                   for name in differing]
        raise ValueError(f"{'; '.join(clauses)} (saved in {path}); resume with the saved "
                         f"value{'s' if len(differing) > 1 else ''} or start a new --output_dir.")
    return resumed


def _shown(value: Any) -> str:
    """A value as it is written on the command line."""
    if isinstance(value, list | tuple):
        return " ".join(_shown(v) for v in value) or "(empty)"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def run_training(train: Callable[[T], Any], arguments_class: type[T], argv: list[str] | None = None) -> int:
    """A training script's `main`: parse the arguments and train. Bad input (a `ValueError`) ends the run with a
    one-line error and exit status 2 instead of a stack trace; a run stopped by SIGINT / SIGTERM (after saving
    a checkpoint and printing how to resume) exits with 128 + the signal number (130, 143).

    A worker of a multi-process run (a torch.distributed group is up) ends its process here, with that status,
    once its output is written and flushed, without the interpreter's teardown (`end_worker`)."""
    try:
        try:
            train(parse_arguments(arguments_class, argv))
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            status = 2
        except TrainingInterrupted as stop:
            status = stop.exit_code
        else:
            status = 0
    except Exception:
        if not _in_process_group():
            raise
        traceback.print_exc()
        status = 1
    if _in_process_group():
        end_worker(status)
    return status


def _in_process_group() -> bool:
    torch = sys.modules.get("torch")  # not imported: no group (and `--help` stays torch-free)
    return torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized()


def end_worker(status: int) -> None:
    """End a multi-process run's worker with `status`, skipping the interpreter's teardown.

    The teardown would free the gloo process group from Python, which can deadlock: its destructor joins gloo's
    worker threads while holding the GIL, and a worker still freeing the last collective's tensors waits for
    the GIL (torch 2.13: the run's files all written, the process never exits; 1 in 4 two-process runs on the
    loaded 2-core machine, and a CI hang). Everything the run writes is closed by then (checkpoints, the model,
    logs, trackers finished by the trainer); the standard streams and logging are flushed here. The other
    processes and the launcher see a normal exit."""
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


def arguments_dict(arguments: TrainingArguments) -> dict[str, Any]:
    """Plain JSON/YAML-friendly values (for trackers and the saved recipe)."""
    return dataclasses.asdict(arguments)


__all__ = ["RESUMABLE_FIELDS", "TrainingArguments", "arguments_dict", "build_parser", "end_worker", "load_recipe",
           "parse_arguments", "resumed_arguments", "run_training", "saved_arguments_file"]
