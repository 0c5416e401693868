"""Helpers of the interrupted-training tests: interrupt a run as a user or a cluster does, then resume it with
the command it printed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from conftest import REPO


def logged_steps(out: Path) -> int:
    """Training-loss records in a run's log so far (0 before the first)."""
    log = out / "log.jsonl"
    return sum('"loss"' in line for line in log.read_text().splitlines()) if log.is_file() else 0


def interrupt(command: list[str], ready, signals: list[signal.Signals], env: dict, log: Path,
              pause: float = 0.0, target=None) -> tuple[int, str]:
    """Start `command` as a user's shell would (a process group of its own, like a terminal's foreground job),
    wait until `ready()`, send `signals` to the group (`pause` seconds apart), or to the one process
    `target(pid of command)` names; returns (exit status, stderr)."""
    with (log.with_suffix(".out")).open("w") as stdout, log.open("w") as stderr:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=stdout, stderr=stderr, start_new_session=True)
        try:
            deadline = time.monotonic() + 240
            while not ready() and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            assert process.poll() is None, "the run ended before it was interrupted: " + log.read_text()[-3000:]
            for i, signum in enumerate(signals):
                time.sleep(pause if i else 0.0)
                if target is None:
                    os.killpg(process.pid, signum)
                else:
                    os.kill(target(process.pid), signum)
            returncode = process.wait(timeout=240)
        finally:
            if process.poll() is None:  # a failed test leaves no training running
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    return returncode, log.read_text()


def resume_line(stderr: str) -> str:
    """The command the stopped run printed (the line after "Resume with:")."""
    assert "Resume with:\n" in stderr, stderr[-3000:]
    return stderr.split("Resume with:\n")[1].splitlines()[0]


def run_shell(line: str, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run(line, shell=True, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result
