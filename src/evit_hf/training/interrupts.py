"""Stopping a training run cleanly on SIGINT (Ctrl-C) or SIGTERM (a cluster's preemption signal).

While training runs, `StopSignals` turns the first signal into a request: the trainer finishes the optimizer
step it is in, writes a checkpoint and raises `TrainingInterrupted`, which carries the exit status (128 +
the signal: 130 for SIGINT, 143 for SIGTERM) and the one-line command that resumes the run
(`resume_command`). On several processes the request is combined across them after every step
(`agreed_signal`), so a signal that reached any process stops all of them after the same step.

A second signal exits at once, without saving. Signals within `REPEAT_WINDOW_S` of the first count as the
same interruption: Accelerate's one-process launcher answers a Ctrl-C (which the terminal also sends to its
child) by sending the child SIGTERM milliseconds later. torchrun-based launches (`accelerate launch
--multi_gpu`, `torchrun`) start their workers in a session of their own and forward the signal once.
Launchers kill their workers some time after forwarding (Accelerate's one-process launcher after 5 s,
torchrun after 30 s): the current step and the checkpoint must be written within that time.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)
REPEAT_WINDOW_S = 1.0
_LAUNCHERS = ("accelerate", "torchrun", "torch.distributed.run", "torch.distributed.launch")


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped at a signal: `checkpoint` (None when the run saves no checkpoints), the shell `command`
    that resumes it, and the process `exit_code`."""

    def __init__(self, signum: int, checkpoint: Path | None, command: str | None) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum
        self.checkpoint = checkpoint
        self.command = command

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopSignals:
    """A context manager: inside it, SIGINT and SIGTERM set `requested` (the signal number) instead of stopping
    the process, and print `announcement` (None: nothing, e.g. on all processes but the main one); the previous
    handlers are restored on exit. Handlers can only be installed from the main thread; elsewhere (e.g.
    training started from a worker thread) signals keep their usual effect."""

    def __init__(self, announcement: str | None = None) -> None:
        self.announcement = announcement
        self.requested = 0
        self._first_at = 0.0
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._handle) for signum in SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        now = time.monotonic()
        if not self.requested:
            self.requested, self._first_at = signum, now
            if self.announcement:
                _say(f"\n{name}: {self.announcement}\n")
            return
        if now - self._first_at < REPEAT_WINDOW_S:
            return
        _say(f"\n{name} again: exiting at once without saving.\n")
        os._exit(128 + signum)


def _say(text: str) -> None:
    """Write to stderr from a signal handler: os.write, not print (the handler may run while the main thread is
    inside a print), and never an error (stderr may be a pipe its reader closed)."""
    with contextlib.suppress(OSError):
        os.write(2, text.encode())


def agreed_signal(local: int, accelerator) -> int:
    """The stop request of the whole run: the largest signal number any process received (0: none). Every
    process must call this at the same points (after every optimizer step)."""
    if accelerator.num_processes == 1:
        return local
    import torch

    requests = accelerator.gather(torch.tensor([local], device=accelerator.device))
    return int(requests.max())


def _program(path: str) -> str:
    """`path` as a user would type it: its bare name when that name on PATH is this very file."""
    name = Path(path).name
    found = shutil.which(name)
    # abspath, not samefile: a venv's python is a symlink to the base interpreter, which would not use the venv
    return name if found and os.path.abspath(found) == os.path.abspath(path) else path


def _launcher_line(script: str) -> list[str] | None:
    """The launcher command in front of `script` (`accelerate launch ...`, `torchrun ...`) when this process is
    a launcher's worker: read from the parent's command line (Linux), None otherwise."""
    try:
        raw = Path(f"/proc/{os.getppid()}/cmdline").read_bytes()
    except OSError:
        return None
    parent = [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    if script not in parent[1:]:
        return None
    prefix = parent[: parent.index(script, 1)]
    if not any(marker in part for part in prefix for marker in _LAUNCHERS):
        return None  # e.g. `timeout 3600 python script`: not a launcher; the worker's own line is given
    if len(prefix) > 1 and Path(prefix[1]).name in ("accelerate", "torchrun"):
        prefix = prefix[1:]  # a console script run by its interpreter: `accelerate launch ...`
    return [_program(prefix[0]), *prefix[1:]]


def resume_command(output_dir: str, num_processes: int) -> str:
    """The shell command that resumes this run: the way this process was launched (the launcher's flags
    included), the script, `--output_dir` and `--resume_from_checkpoint latest`."""
    script = sys.argv[0]
    launcher = _launcher_line(script)
    if launcher is None:
        launcher = [_program(sys.executable)] if num_processes == 1 else [
            "accelerate", "launch", "--multi_gpu", "--num_processes", str(num_processes)]
    env = []
    if os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes") and "--cpu" not in launcher:
        env = ["ACCELERATE_USE_CPU=true"]  # set by the user, not the launcher: part of how the run was started
    return shlex.join([*env, *launcher, script, "--output_dir", output_dir, "--resume_from_checkpoint", "latest"])


__all__ = ["REPEAT_WINDOW_S", "StopSignals", "TrainingInterrupted", "agreed_signal", "resume_command"]
