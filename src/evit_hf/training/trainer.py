"""The shared trainer core: one loop for every task, on one CPU, several processes or many GPUs (Accelerate).

A task (`TrainingTask`) says how to build the model, turn examples into tensors, compute the loss and the
metrics. The trainer owns everything else: the AdamW/cosine recipe, gradient accumulation and clipping, mixed
precision, evaluation, logging, resumable checkpoints and the final `save_pretrained`.

Distributed data without loss or duplicates: each process iterates its own disjoint share of the stream
(`ProcessStream`). Shares can differ in length by a batch or more, and DDP needs every process in every step,
so the processes agree on each step's sample counts (`lockstep_batches`); a process whose share has run out
takes part with its previous batch and a loss weight of zero. Losses are weighted by each process's share of
the step's samples, so DDP's gradient average equals the average over the real samples.

Checkpoints (`output_dir/checkpoints/checkpoint-<step>`, written atomically: see `checkpoints`) hold the
model, optimizer and RNG states (saved by Accelerate, reloaded with `weights_only=True`) and
`trainer_state.json` with the epoch, the step, the scheduler and how many samples each process has consumed
in the current epoch. Resuming skips exactly those samples; per-sample augmentation is seeded by (seed,
epoch, rank, position), so a resumed run sees the same batches as an uninterrupted one. The arguments of a
resumed run are the run's own (`arguments.resumed_arguments`).

SIGINT / SIGTERM during training (`interrupts`): the step in progress is finished, every process stops after
the same step, a checkpoint is written and the command that resumes the run is printed; the script exits
with 128 + the signal number.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import shutil
import signal
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from transformers import PreTrainedModel

from .arguments import TrainingArguments, arguments_dict
from .checkpoints import (
    ARGUMENTS_FILE,
    STATE_FILE,
    checkpoint_dir,
    find_checkpoint,
    list_checkpoints,
    publish,
    staging_path,
)
from .data import ProcessStream, batched, ordered_map
from .interrupts import StopSignals, TrainingInterrupted, agreed_signal, resume_command
from .optim import parameter_groups, warmup_cosine_schedule

Batch = dict[str, torch.Tensor]


class TrainingTask(ABC):
    """What a task plugs into `Trainer`: data preparation, model, loss and metrics."""

    #: key of the headline metric in `Metrics.compute()` (printed, logged, stored in the results)
    metric_name: str = ""
    #: DDP must tolerate parameters without a gradient in some steps (e.g. prompt embeddings of an unused type)
    find_unused_parameters: bool = False

    def __init__(self, args: TrainingArguments) -> None:
        self.args = args

    @abstractmethod
    def load_datasets(self) -> tuple[Any, Any | None]:
        """(train, eval or None) streamed splits with the columns the task expects."""

    @abstractmethod
    def build_model(self, train_dataset) -> PreTrainedModel:
        """The model to train (fresh from a preset, or from `model_name_or_path` with a new head if needed)."""

    @abstractmethod
    def train_sample(self, example: dict[str, Any], rng: np.random.Generator) -> dict[str, np.ndarray]:
        """One augmented training sample as arrays."""

    @abstractmethod
    def eval_sample(self, example: dict[str, Any]) -> dict[str, np.ndarray]:
        """One evaluation sample as arrays."""

    @abstractmethod
    def collate(self, samples: list[dict[str, np.ndarray]]) -> Batch:
        """A batch of tensors from samples."""

    def loss(self, model: torch.nn.Module, batch: Batch) -> torch.Tensor:
        return model(**batch).loss

    def training_module(self, model: PreTrainedModel) -> torch.nn.Module:
        """The module the optimizer and DDP see (default: the model; a task may wrap it to compute its loss)."""
        return model

    def pretrained_model(self, module: torch.nn.Module) -> PreTrainedModel:
        """The model inside `training_module(model)` (evaluated and saved)."""
        return module

    def final_model(self, module: torch.nn.Module, output_dir: Path) -> PreTrainedModel:
        """The model saved at the end (a task may first write extras to `output_dir`, e.g. merge adapters)."""
        return self.pretrained_model(module)

    @abstractmethod
    def new_metrics(self, model: PreTrainedModel):
        """An empty metrics accumulator (`update`, `counts`, `load_counts`, `compute`, `table`)."""

    @abstractmethod
    def update_metrics(self, model: PreTrainedModel, batch: Batch, metrics) -> None:
        """Run `model` on an evaluation batch and add it to `metrics`."""

    def format_metric(self, value: float) -> str:
        """The headline metric as printed (a fraction shown as a percentage by default)."""
        return f"{100 * value:.2f}%"

    def image_processor(self, model: PreTrainedModel):
        """The image processor saved with the final model (None if unavailable)."""
        return None


@dataclass
class TrainerState:
    """Where training is: saved in every checkpoint as JSON."""

    epoch: int = 0
    global_step: int = 0
    consumed: list[int] = field(default_factory=list)  # samples each process trained on in this epoch
    scheduler: dict[str, Any] = field(default_factory=dict)
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    mixed_precision: str | None = None  # Accelerate's setting the run trained with (None: not recorded)
    train_seconds: float = 0.0  # training time up to this state, over all resumed parts

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> TrainerState:
        return cls(**json.loads(path.read_text()))


def lockstep_batches(batches: Iterator[Any], accelerator) -> Iterator[tuple[Any | None, int, int, bool]]:
    """(batch or None, local samples, global samples, is the last step) for every step of an epoch.

    All processes iterate together until every share is exhausted; a process with nothing left gets None.
    One look-ahead batch tells whether this is the epoch's last step (to flush gradient accumulation).
    """
    world = accelerator.num_processes
    current = next(batches, None)
    while True:
        upcoming = next(batches, None) if current is not None else None
        local = 0 if current is None else len(current[1])
        if world == 1:
            total, more = local, upcoming is not None
        else:
            stats = torch.tensor([[local, int(upcoming is not None)]], device=accelerator.device)
            gathered = accelerator.gather(stats).view(world, 2)
            total, more = int(gathered[:, 0].sum()), bool(gathered[:, 1].any())
        if total == 0:
            return
        yield current, local, total, not more
        current = upcoming


class Trainer:
    """Trains `task` as `args` says; `train()` returns the final evaluation results."""

    def __init__(self, task: TrainingTask, args: TrainingArguments) -> None:
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        self.task = task
        self.args = args
        self.output_dir = Path(args.output_dir)
        existing = list_checkpoints(self.output_dir)
        if existing and not args.resume_from_checkpoint:
            # A new run here would mix its checkpoints with the old run's (`latest`, pruning by step).
            raise ValueError(f"{self.output_dir} already holds a run with checkpoints (newest: {existing[-1].name}): "
                             "resume it with --resume_from_checkpoint latest, or start this run in a new "
                             "--output_dir.")
        from accelerate.utils import DistributedDataParallelKwargs

        self.accelerator = Accelerator(
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=task.find_unused_parameters)],
            mixed_precision=args.mixed_precision,
            log_with=args.report_to or None,
            project_dir=str(self.output_dir),
        )
        set_seed(args.seed)
        acc = self.accelerator
        with acc.main_process_first():  # the main process generates built-in data once; the others reuse it
            train_dataset, eval_dataset = task.load_datasets()
        self.train_stream = ProcessStream(
            train_dataset, rank=acc.process_index, world_size=acc.num_processes, seed=args.seed,
            shuffle_buffer=args.shuffle_buffer, max_samples=args.max_train_samples,
        )
        self.eval_stream = None
        if eval_dataset is not None:
            self.eval_stream = ProcessStream(
                eval_dataset, rank=acc.process_index, world_size=acc.num_processes,
                max_samples=args.max_eval_samples,
            )
        model = task.training_module(task.build_model(train_dataset))
        optimizer = torch.optim.AdamW(
            parameter_groups(model, args.weight_decay), lr=args.learning_rate,
            betas=(args.adam_beta1, args.adam_beta2),
        )
        self.steps_per_epoch = self._steps_per_epoch()
        total_steps = args.max_steps or self.steps_per_epoch * args.num_epochs
        warmup = args.warmup_steps if args.warmup_steps is not None else round(args.warmup_ratio * total_steps)
        self.total_steps = total_steps
        # The scheduler is not prepared: Accelerate would step it once per process.
        self.scheduler = warmup_cosine_schedule(optimizer, warmup, total_steps, args.min_lr_ratio)
        self.model, self.optimizer = acc.prepare(model, optimizer)
        self.state = TrainerState(consumed=[0] * acc.num_processes, mixed_precision=acc.mixed_precision)
        self._filler: Any = None
        announcement = ("stopping after the current step to save a checkpoint (send it again to exit at once "
                        "without saving)." if self._saves_checkpoints else
                        "stopping after the current step (send it again to exit at once).")
        self._signals = StopSignals(announcement if acc.is_main_process else None)
        self._stop = 0  # the signal every process agreed to stop at (0: none)
        self._saved_step = -1  # the step of the newest checkpoint on disk
        self._started = time.perf_counter()  # minus the time of the run's earlier parts, once resumed

    # ----------------------------------------------------------------------------------------------- setup
    def _steps_per_epoch(self) -> int:
        args, world = self.args, self.accelerator.num_processes
        samples = args.num_train_samples
        if samples is None:
            samples = self.train_stream.count()
            self.accelerator.print(f"Training split: {samples} samples (counted; set num_train_samples to skip this).")
        elif args.max_train_samples:
            samples = min(samples, args.max_train_samples)
        if samples < world:
            raise ValueError(f"The training split has {samples} samples, fewer than the {world} processes.")
        micro_batches = math.ceil(math.ceil(samples / world) / args.batch_size)
        return max(1, math.ceil(micro_batches / args.gradient_accumulation_steps))

    # -------------------------------------------------------------------------------------------- training
    def _batches(self, epoch: int, skip: int) -> Iterator[tuple[Batch, list[str]]]:
        args, rank = self.args, self.accelerator.process_index
        id_column = args.id_column

        def prepare(item: tuple[int, dict[str, Any]]) -> tuple[dict[str, np.ndarray], str]:
            position, example = item
            example = self.train_stream.decode(example)
            rng = np.random.default_rng([args.seed, epoch, rank, position])
            sample_id = str(example.get(id_column, position)) if id_column else str(position)
            return self.task.train_sample(example, rng), sample_id

        examples = self.train_stream.epoch(epoch, skip=skip)
        samples = ordered_map(prepare, examples, args.preprocessing_threads)
        try:
            for chunk in batched(samples, args.batch_size):
                yield self.task.collate([sample for sample, _ in chunk]), [sample_id for _, sample_id in chunk]
        finally:
            samples.close()
            examples.close()

    def train(self) -> dict[str, Any]:
        """Run (or resume) training, evaluate, save the final model; returns the final evaluation.

        Raises `TrainingInterrupted` (after saving a checkpoint) when SIGINT or SIGTERM arrives during training.
        """
        args, acc = self.args, self.accelerator
        if args.resume_from_checkpoint:
            self.load_checkpoint(find_checkpoint(args.resume_from_checkpoint, self.output_dir))
        self._write_arguments()
        acc.init_trackers(args.project_name, config=_tracker_config(args))
        acc.print(
            f"Training on {acc.num_processes} process(es) ({acc.distributed_type.value}, {acc.device}, mixed "
            f"precision {acc.mixed_precision}): {self.steps_per_epoch} steps/epoch, {self.total_steps} steps in all."
        )
        self._started = time.perf_counter() - self.state.train_seconds
        results: dict[str, Any] = {}
        evaluated_at = -1
        with self._signals:
            if args.eval_at_start and self.eval_stream is not None and self.state.global_step == 0:
                results = self.evaluate()  # the "before" numbers, logged at step 0
            while self.state.epoch < args.num_epochs and not self._done():
                completed = self._train_epoch(self.state.epoch)
                if self._stop:
                    self._interrupt()
                if not completed:
                    break  # max_steps reached inside the epoch
                self.state.epoch += 1
                self.state.consumed = [0] * acc.num_processes
                if self.eval_stream is not None and self.state.epoch % args.eval_every_epochs == 0:
                    results = self.evaluate()
                    evaluated_at = self.state.global_step
                if args.checkpoint_every_epoch:
                    self.save_checkpoint()
                self._check_signals()
            if self.eval_stream is not None and evaluated_at != self.state.global_step:
                results = self.evaluate()
            self._check_signals()
            results = {**results, "train_seconds": self._train_seconds(), "global_step": self.state.global_step}
            self.save_final(results)
        self._finish_trackers()
        return results

    def _write_arguments(self) -> None:
        """Save the run's arguments when it starts. A resume never rewrites them (its changes of
        `RESUMABLE_FIELDS` apply to it only); it copies them from its checkpoint into a new output_dir."""
        path, resume = self.output_dir / ARGUMENTS_FILE, self.args.resume_from_checkpoint
        if not self.accelerator.is_main_process or (resume and path.is_file()):
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        saved = find_checkpoint(resume, self.output_dir) / ARGUMENTS_FILE if resume else None
        if saved is not None and saved.is_file():
            shutil.copyfile(saved, path)
        else:
            path.write_text(yaml.safe_dump(arguments_dict(self.args), sort_keys=False))

    def _train_seconds(self) -> float:
        return time.perf_counter() - self._started

    def _check_signals(self) -> None:
        """Stop (checkpoint, resume command, `TrainingInterrupted`) if any process received SIGINT / SIGTERM.
        Every process calls this at the same points: after every optimizer step and every epoch."""
        self._stop = agreed_signal(self._signals.requested, self.accelerator)
        if self._stop:
            self._interrupt()

    @property
    def _saves_checkpoints(self) -> bool:
        """A run that asked for no checkpoints gets none when it is stopped either (e.g. `evit-hf demo`)."""
        return bool(self.args.checkpoint_every_epoch or self.args.checkpointing_steps)

    def _interrupt(self) -> None:
        args, acc = self.args, self.accelerator
        checkpoint = None
        if self._saves_checkpoints:
            checkpoint = self._checkpoint_path()
            if self._saved_step != self.state.global_step:
                self.save_checkpoint()
        command = resume_command(args.output_dir, acc.num_processes) if checkpoint else None
        name = signal.Signals(self._stop).name
        if acc.is_main_process:
            if checkpoint is None:
                print(f"Stopped by {name} after step {self.state.global_step}; this run saves no checkpoints "
                      "(checkpoint_every_epoch false, no checkpointing_steps): nothing to resume.", file=sys.stderr,
                      flush=True)
            else:
                print(f"Stopped by {name} after step {self.state.global_step}; checkpoint: {checkpoint}. "
                      f"Resume with:\n{command}", file=sys.stderr, flush=True)
        self._finish_trackers()
        raise TrainingInterrupted(self._stop, checkpoint, command)

    def _finish_trackers(self) -> None:
        """`Accelerator.end_training` without its `destroy_process_group`: a multi-process run's group ends with
        its process (`arguments.run_training`). Destroyed from Python, the last reference to a gloo group (the
        DDP model's, once the world's is gone) joins gloo's worker threads while holding the GIL, and a worker
        that is still freeing the last collective's tensors needs the GIL: the process hangs after its work is
        done (torch 2.13; seen in 1 of 4 two-process runs on the loaded 2-core machine)."""
        for tracker in self.accelerator.trackers:
            tracker.finish()

    def _done(self) -> bool:
        return self.args.max_steps is not None and self.state.global_step >= self.args.max_steps

    def _train_epoch(self, epoch: int) -> bool:
        """One pass over this process's share (from the resume position); False if max_steps cut it short."""
        from tqdm.auto import tqdm

        args, acc, model = self.args, self.accelerator, self.model
        rank, world = acc.process_index, acc.num_processes
        skip = self.state.consumed[rank]
        accumulation = args.gradient_accumulation_steps
        micro, loss_sum, loss_count, completed = 0, 0.0, 0, False
        ids_file = None
        if args.log_sample_ids:
            ids_path = self.output_dir / "samples" / f"epoch{epoch}-rank{rank}.txt"
            ids_path.parent.mkdir(parents=True, exist_ok=True)
            ids_file = ids_path.open("a")
        bar = tqdm(
            total=self.steps_per_epoch, desc=f"epoch {epoch + 1}/{args.num_epochs}",
            initial=min(self.steps_per_epoch, math.ceil(skip / args.batch_size / accumulation)),
            disable=not (args.progress and acc.is_local_main_process), dynamic_ncols=True,
        )
        model.train()
        steps = lockstep_batches(self._batches(epoch, skip), acc)
        for batch, local, total, last in steps:
            if batch is None:  # this share ran out: join the step with a zero-weight batch
                if self._filler is None:  # resumed after this share ran out: any batch of the share will do
                    self._filler = next(self._batches(epoch, 0))[0]
                inputs = self._filler
            else:
                inputs = self._filler = {k: v.to(acc.device) for k, v in batch[0].items()}
            micro += 1
            sync = micro % accumulation == 0 or last
            weight = local * world / total / accumulation
            with contextlib.nullcontext() if sync or world == 1 else acc.no_sync(model):
                loss = self.task.loss(model, inputs)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"Non-finite loss {float(loss)} at step {self.state.global_step}.")
                acc.backward(loss * weight)
            if batch is not None:
                self.state.consumed[rank] += local
                loss_sum += float(loss.detach()) * local
                loss_count += local
                if ids_file is not None:
                    ids_file.write("\n".join(batch[1]) + "\n")
            if not sync:
                continue
            if args.max_grad_norm:
                acc.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.state.global_step += 1
            bar.update(1)
            step = self.state.global_step
            if step % args.logging_steps == 0 or last:
                loss_sum, loss_count = self._log_train_loss(loss_sum, loss_count, epoch, bar)
            if args.checkpointing_steps and step % args.checkpointing_steps == 0 and not last:
                self.save_checkpoint()
            self._stop = agreed_signal(self._signals.requested, acc)
            if self._stop:  # the caller saves and stops; the loss since the last record is logged first
                loss_sum, loss_count = self._log_train_loss(loss_sum, loss_count, epoch, bar)
                break
            if self._done():
                break
        else:
            completed = True
        steps.close()  # stops the reader threads now rather than at interpreter exit
        bar.close()
        if ids_file is not None:
            ids_file.close()
        return completed

    def _log_train_loss(self, loss_sum: float, loss_count: int, epoch: int, bar) -> tuple[float, int]:
        acc = self.accelerator
        totals = acc.reduce(torch.tensor([loss_sum, float(loss_count)], device=acc.device), reduction="sum")
        if totals[1] > 0:
            loss = float(totals[0] / totals[1])
            lr = self.scheduler.get_last_lr()[0]
            record = {"step": self.state.global_step, "epoch": epoch, "loss": loss, "learning_rate": lr}
            bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}")
            self._log(record)
        return 0.0, 0

    def _log(self, record: dict[str, Any]) -> None:
        acc = self.accelerator
        scalars = {k: v for k, v in record.items() if isinstance(v, int | float) and k != "step"}
        acc.log(scalars, step=self.state.global_step)
        if acc.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            with (self.output_dir / "log.jsonl").open("a") as log:
                log.write(json.dumps(record) + "\n")

    # ------------------------------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self) -> dict[str, Any]:
        """Metrics on the evaluation split, each process on its share, counts summed across processes."""
        from accelerate.utils import DistributedType
        from tqdm.auto import tqdm

        acc, args = self.accelerator, self.args
        unwrapped = self.task.pretrained_model(acc.unwrap_model(self.model))
        # DDP: the plain module (DDP's forward may broadcast buffers, a collective uneven shares would hang).
        # FSDP: the sharded model, whose forward gathers parameters, so every process joins every step.
        sharded = acc.distributed_type == DistributedType.FSDP
        model = self.model if sharded else unwrapped
        model.eval()
        metrics, scratch = self.task.new_metrics(unwrapped), self.task.new_metrics(unwrapped)
        examples = (example for _, example in self.eval_stream.epoch(0))
        samples = ordered_map(lambda ex: self.task.eval_sample(self.eval_stream.decode(ex)), examples,
                              args.preprocessing_threads)
        chunks = ((self.task.collate(chunk), [""] * len(chunk))
                  for chunk in batched(samples, args.eval_batch_size or args.batch_size))
        bar = tqdm(desc="evaluating", disable=not (args.progress and acc.is_local_main_process), dynamic_ncols=True)
        filler = None
        for batch, local, _, _ in lockstep_batches(chunks, acc):
            if batch is None:  # this share is done; only a sharded model needs it to keep stepping
                if not sharded or filler is None:
                    continue
                inputs, target = filler, scratch
            else:
                inputs = filler = {k: v.to(acc.device) for k, v in batch[0].items()}
                target = metrics
            with acc.autocast():
                self.task.update_metrics(model, inputs, target)
            bar.update(local)
        bar.close()
        metrics.load_counts(acc.reduce(metrics.counts().to(acc.device), reduction="sum"))
        self.model.train()
        results = metrics.compute()
        record = {"step": self.state.global_step, "epoch": self.state.epoch, **_flatten("eval", results)}
        self.state.evaluations.append(record)
        self._log(record)
        if acc.is_main_process:
            headline = results.get(self.task.metric_name, math.nan)
            print(f"\nstep {self.state.global_step} (epoch {self.state.epoch}): eval {self.task.metric_name} "
                  f"= {self.task.format_metric(headline)}\n{metrics.table()}", flush=True)
        return results

    # ----------------------------------------------------------------------------------------- checkpoints
    def save_checkpoint(self) -> Path:
        """A resumable checkpoint of the current step (written under a temporary name, then renamed)."""
        acc = self.accelerator
        consumed = torch.tensor(self.state.consumed[acc.process_index], device=acc.device).view(1)
        self.state.consumed = [int(v) for v in acc.gather(consumed).view(-1)]
        self.state.scheduler = self.scheduler.state_dict()
        self.state.train_seconds = self._train_seconds()
        final = self._checkpoint_path()
        staging = staging_path(final)
        if acc.is_main_process:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
        acc.wait_for_everyone()
        acc.save_state(str(staging), safe_serialization=True)
        acc.wait_for_everyone()
        if acc.is_main_process:
            shutil.copyfile(self.output_dir / ARGUMENTS_FILE, staging / ARGUMENTS_FILE)
            self.state.save(staging / STATE_FILE)  # last: it marks the checkpoint complete
            publish(staging, final)
            limit = self.args.checkpoints_total_limit
            for old in list_checkpoints(self.output_dir)[:-limit] if limit else ():
                shutil.rmtree(old, ignore_errors=True)
        acc.wait_for_everyone()
        self._saved_step = self.state.global_step
        return final

    def _checkpoint_path(self) -> Path:
        return checkpoint_dir(self.output_dir) / f"checkpoint-{self.state.global_step}"

    def load_checkpoint(self, path: Path) -> None:
        acc = self.accelerator
        state = TrainerState.load(path / STATE_FILE)
        if len(state.consumed) != acc.num_processes:
            raise ValueError(
                f"Checkpoint {path} was written by {len(state.consumed)} processes; resume it with the same number "
                f"(this run has {acc.num_processes})."
            )
        if state.mixed_precision is not None and state.mixed_precision != acc.mixed_precision:
            raise ValueError(f"Checkpoint {path} was trained with mixed precision {state.mixed_precision}; this run "
                             f"has {acc.mixed_precision}: launch it as the run was launched (accelerate launch "
                             f"--mixed_precision {state.mixed_precision}).")
        acc.load_state(str(path))
        self.scheduler.load_state_dict(state.scheduler)
        self.state = state
        self._saved_step = state.global_step
        acc.print(f"Resumed from {path}: epoch {state.epoch}, step {state.global_step}, "
                  f"{sum(state.consumed)} samples into the epoch; the run's arguments from {ARGUMENTS_FILE}.")

    # ------------------------------------------------------------------------------------------ final save
    def save_final(self, results: dict[str, Any]) -> None:
        from ..hub_utils import save_pretrained_with_code

        acc, args = self.accelerator, self.args
        acc.wait_for_everyone()
        if not acc.is_main_process:
            return
        model = self.task.final_model(acc.unwrap_model(self.model), self.output_dir)
        processor = self.task.image_processor(model)
        save_pretrained_with_code(model, self.output_dir, processor)
        (self.output_dir / "eval_results.json").write_text(json.dumps(results, indent=2) + "\n")
        print(f"Saved the model to {self.output_dir} (load it with from_pretrained).", flush=True)
        if args.push_to_hub:
            from huggingface_hub import HfApi

            repo_id = args.hub_model_id or self.output_dir.name
            api = HfApi()
            repo = api.create_repo(repo_id, exist_ok=True)
            api.upload_folder(
                repo_id=repo.repo_id, folder_path=str(self.output_dir), ignore_patterns=["checkpoints/*", "samples/*"],
                commit_message=f"evit-hf training: step {self.state.global_step}",
            )
            print(f"Pushed to https://huggingface.co/{repo.repo_id}", flush=True)


def _flatten(prefix: str, results: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in results.items():
        if isinstance(value, dict):
            flat.update(_flatten(f"{prefix}/{key}", value))
        else:
            flat[f"{prefix}/{key}"] = value
    return flat


def _tracker_config(args: TrainingArguments) -> dict[str, Any]:
    """Tracker hyper-parameters: scalars and strings only (TensorBoard rejects lists and None)."""
    return {k: (v if isinstance(v, int | float | str | bool) else str(v)) for k, v in arguments_dict(args).items()}


__all__ = ["Trainer", "TrainerState", "TrainingTask", "lockstep_batches"]
