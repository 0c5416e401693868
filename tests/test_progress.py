"""Long work as a user sees it: a progress bar with an ETA on a terminal (none in a pipe or with --quiet), a
warning with the estimated time before work that takes minutes, and Ctrl-C that ends every command with one
line and exit status 130, leaving no output file behind.

The terminal tests run the `evit-hf` command on a pseudo-terminal (`pty.fork`: the child's controlling
terminal, so that writing Ctrl-C to it sends SIGINT to the command, as a shell's terminal does), with small
images, small tiles and random-weight models.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import signal
import struct
import sys
import termios
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO_ROOT, read_terminal
from evit_hf import progress
from evit_hf.cli import main
from evit_hf.progress import Progress, track

# tqdm's bar with its ETA: "  7%|▋         | 18/256 [00:01<00:14, 16.9tile/s]"
BAR_WITH_ETA = re.compile(r"\d+%\|.*\| *\d+/(\d+) \[\d\d:\d\d<\d\d:\d\d")
CTRL_C = b"\x03"


pytestmark = pytest.mark.usefixtures("one_thread")


def noise_image(path: Path, width: int, height: int) -> Path:
    pixels = (np.random.default_rng(0).random((height, width, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------------------------------- the reporter
def test_work_of_minutes_is_announced_with_the_estimate(monkeypatch, capsys):
    clock = FakeClock()
    monkeypatch.setattr(progress.time, "perf_counter", clock)
    with Progress("upscaling", 1254, unit="tile") as bar:
        clock.now += 4.1  # the first tile
        bar.update()
        clock.now += 4.1
        bar.update()
    err = capsys.readouterr().err
    assert err == "upscaling: this will take about 86 minutes (1,254 tiles at 4.1 s); Ctrl-C stops it\n"
    assert "%|" not in err  # stderr is no terminal here: no bar


def test_short_work_quiet_runs_and_unknown_totals_say_nothing(monkeypatch, capsys):
    clock = FakeClock()
    monkeypatch.setattr(progress.time, "perf_counter", clock)
    for total, step in ((20, 2.0), (None, 60.0)):  # 40 s in all; a stream of unknown length
        with Progress("eval seg", total) as bar:
            for _ in range(3):
                clock.now += step
                bar.update()
    progress.set_quiet(True)
    try:
        with Progress("upscaling", 1254, unit="tile") as bar:
            clock.now += 4.1
            bar.update()
            assert bar.warning is None
    finally:
        progress.set_quiet(False)
    assert capsys.readouterr().err == ""


def test_the_estimate_waits_for_a_second_of_work(monkeypatch, capsys):
    """Units of milliseconds are not extrapolated one by one: warm-up and timer noise would dominate."""
    clock = FakeClock()
    monkeypatch.setattr(progress.time, "perf_counter", clock)
    items = list(range(100_000))
    seen = []
    for item in track(items, "eval cls", unit="batch"):
        clock.now += 0.002 if item == 0 else 0.0011
        seen.append(item)
        if len(seen) == 1000:
            break
    assert seen == items[:1000]
    assert "eval cls: this will take about 2 minutes (100,000 batches at 0.0011 s)" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ the library layer
def test_upscale_reports_every_tile_and_gives_the_same_image():
    from evit_hf.predict import tile_count, upscale_image
    from evit_hf.resolve import load_model

    model, processor, _ = load_model("random:sr-light-x2", "image-to-image", seed=0)
    image = Image.fromarray((np.random.default_rng(1).random((50, 70, 3)) * 255).astype(np.uint8))
    calls = []
    reported = upscale_image(image, model, processor, 24, 8, progress=lambda done, total: calls.append((done, total)))
    padded = processor(image, return_tensors="pt")["pixel_values"].shape[-2:]  # padded to a multiple of 8
    total = (len(range(0, padded[0] - 24, 16)) + 1) * (len(range(0, padded[1] - 24, 16)) + 1)
    assert total > 4 and tile_count(padded, 24, 8) == total and calls == [(done, total) for done in range(total + 1)]
    assert np.array_equal(np.asarray(reported), np.asarray(upscale_image(image, model, processor, 24, 8)))
    assert tile_count((20, 24), 24) == 1 and tile_count((20, 24), None) == 1


def test_class_map_in_chunks_is_exactly_the_processors(monkeypatch):
    """Upsampling a few classes at a time (bounded memory, progress) gives the processor's class map bit for
    bit, ties (a class equal to an earlier one) included."""
    from evit_hf.models.efficientvit import EfficientViTSegImageProcessor
    from evit_hf.predict import segmentation

    processor = EfficientViTSegImageProcessor()
    logits = torch.randn(1, 19, 12, 20, generator=torch.Generator().manual_seed(0))
    logits[:, 11] = logits[:, 4]
    size = (97, 161)
    expected = processor.post_process_semantic_segmentation(logits, target_sizes=[size])[0].numpy()
    assert np.array_equal(segmentation.class_map(logits, size, processor), expected)  # every class in one call
    monkeypatch.setattr(segmentation, "SCORES_BUDGET", 3 * size[0] * size[1])
    calls = []
    chunked = segmentation.class_map(logits, size, processor, lambda done, total: calls.append((done, total)))
    assert np.array_equal(chunked, expected) and chunked.dtype == expected.dtype
    assert calls == [(0, 19), (3, 19), (6, 19), (9, 19), (12, 19), (15, 19), (18, 19), (19, 19)]


# ------------------------------------------------------------------------------ the command, in a pipe
def upscale_args(tmp_path: Path, size: tuple[int, int] = (96, 64)) -> list[str]:
    image = noise_image(tmp_path / "photo.png", *size)
    return ["upscale", str(image), "--out", str(tmp_path / "out.png"), "--model", "random:sr-light-x2",
            "--tile-size", "32", "--tile-overlap", "8"]


def test_no_bar_in_a_pipe_and_the_warning_unless_quiet(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(progress, "WARN_AFTER_S", 0.0)  # every job counts as long
    monkeypatch.setattr(progress, "ESTIMATE_AFTER_S", 0.0)
    assert main(upscale_args(tmp_path)) == 0
    err = capsys.readouterr().err
    assert re.search(r"^upscaling: this will take about \d+ seconds \(12 tiles at [\d.]+ s\); Ctrl-C stops it$",
                     err, re.M), err
    assert "%|" not in err and "tile/s" not in err
    assert main([*upscale_args(tmp_path), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "this will take" not in captured.err and "%|" not in captured.err
    assert "wrote" in captured.out and Image.open(tmp_path / "out.png").size == (192, 128)


def test_bench_and_release_batches_report_their_units(tmp_path, monkeypatch, capsys):
    """`evit-hf bench` rows and `evit-hf release` checkpoints go through the same reporter (the estimate here:
    every job counts as long); the release's conversions are replaced by a stub that records its order."""
    from evit_hf.release import builder

    monkeypatch.setattr(progress, "WARN_AFTER_S", 0.0)
    monkeypatch.setattr(progress, "ESTIMATE_AFTER_S", 0.0)
    assert main(["bench", "cls", "--presets", "b0", "b1", "--budget", "0.02"]) == 0
    assert re.search(r"^model zoo: this will take about \d+ seconds \(2 models at [\d.]+ s\); Ctrl-C stops it$",
                     capsys.readouterr().err, re.M)

    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    for name in ("efficientvit_b1_r224.pt", "efficientvit_seg_b0_cityscapes.pt", "efficientvit_sam_l0.pt"):
        (checkpoints / name).write_bytes(b"")
    released = []
    monkeypatch.setattr(builder, "release_checkpoint", lambda variant, *args: released.append(variant) or variant)
    assert builder.release_batch(checkpoints, tmp_path / "out") == released and len(released) == 3
    assert re.search(r"^release: this will take about \d+ seconds \(3 checkpoints at [\d.e-]+ s\)",
                     capsys.readouterr().err, re.M)


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys):
    """Every command: the handler of `evit_hf.cli.main`. A training run that stopped itself at the signal has
    printed where it stopped (and how to resume): its status is kept and nothing is added."""
    from evit_hf.commands import models
    from evit_hf.training.interrupts import TrainingInterrupted

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(models, "run", interrupted)
    assert main(["models"]) == 130
    captured = capsys.readouterr()
    assert captured.err == "evit-hf models: interrupted (Ctrl-C); stopped.\n" and captured.out == ""

    def stopped(args):
        raise TrainingInterrupted(signal.SIGTERM, None, None)

    monkeypatch.setattr(models, "run", stopped)
    assert main(["models"]) == 143
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------------------ the command, on a terminal
def in_terminal(argv: list[str], env: dict[str, str], interrupt_when=None, timeout: float = 240.0) -> tuple[int, str]:
    """Run `evit-hf argv` on a pseudo-terminal; once `interrupt_when(output so far)` holds, type Ctrl-C. Returns
    (exit status, everything the terminal showed)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal is its stdin, stdout, stderr and controlling terminal
        try:
            os.execve(sys.executable, [sys.executable, "-m", "evit_hf.cli", *argv], env)
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))  # a terminal window's size
    sent = False

    def watch(output: str) -> None:
        nonlocal sent
        if interrupt_when is not None and not sent and interrupt_when(output):
            os.write(fd, CTRL_C)
            sent = True

    status = None
    try:
        text, finished = read_terminal(fd, timeout, watch=watch)
        assert finished, f"evit-hf {' '.join(argv)} did not finish: {text[-3000:]}"
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
        if status is None:  # not reaped: still running
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    assert interrupt_when is None or sent, f"never interrupted: {text[-3000:]}"
    return os.waitstatus_to_exitcode(status), text


def terminal_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            "HF_HOME": str(tmp_path / "hf"), "EVIT_HF_HOME": str(tmp_path / "home"),
            "PYTHONWARNINGS": "ignore"}


def assert_stopped_cleanly(status: int, output: str, command: str, out: Path) -> None:
    assert status == 130, output[-3000:]
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output[-3000:]
    assert re.search(rf"(^|\r|\n)evit-hf {command}: interrupted \(Ctrl-C\); stopped\.\r?\n?$", output), output[-500:]
    leftovers = [path.name for path in out.parent.iterdir() if path.name.startswith((out.name, f".{out.name}"))]
    assert leftovers == [], leftovers  # neither the output nor a half-written one


def test_upscale_on_a_terminal_shows_the_bar_and_stops_at_ctrl_c(tmp_path):
    out = tmp_path / "out.png"
    args = [*upscale_args(tmp_path, (384, 384))]  # 16 x 16 tiles of 32 pixels
    status, output = in_terminal(args, terminal_env(tmp_path), interrupt_when=BAR_WITH_ETA.search)
    assert re.search(r"upscaling: +\d+%\|", output) and BAR_WITH_ETA.search(output)[1] == "256", output[-2000:]
    assert_stopped_cleanly(status, output, "upscale", out)


def test_upscale_on_a_terminal_with_quiet_shows_no_bar(tmp_path):
    status, output = in_terminal([*upscale_args(tmp_path, (160, 128)), "--quiet"], terminal_env(tmp_path))
    assert status == 0 and "wrote" in output, output[-3000:]
    assert "%|" not in output and "tile/s" not in output


def test_segment_stops_at_ctrl_c(tmp_path):
    image = noise_image(tmp_path / "street.png", 640, 320)
    out = tmp_path / "overlay.png"
    args = ["segment", str(image), "--model", "random:seg-b0-cityscapes", "--out", str(out)]
    # Ctrl-C once the model is loaded (its random-weights warning): the work at full Cityscapes size follows.
    env = {**terminal_env(tmp_path), "PYTHONWARNINGS": "default"}
    status, output = in_terminal(args, env, interrupt_when=lambda text: "random weights" in text)
    assert_stopped_cleanly(status, output, "segment", out)


def test_eval_on_a_terminal_shows_the_bar_and_stops_at_ctrl_c(tmp_path):
    from evit_hf.data.synthetic import write_synthetic_segmentation

    data = tmp_path / "data"
    write_synthetic_segmentation(data, num_train=1, num_validation=400, image_size=64, num_shards=1, progress=False)
    out = tmp_path / "results.json"
    args = ["eval", "seg", "--model", "random:seg-b0-cityscapes", "--data", str(data), "--out", str(out)]
    status, output = in_terminal(args, terminal_env(tmp_path), interrupt_when=BAR_WITH_ETA.search)
    assert re.search(r"eval seg: +\d+%\|", output) and BAR_WITH_ETA.search(output)[1] == "400", output[-2000:]
    assert_stopped_cleanly(status, output, "eval", out)
