"""Progress of long jobs: a bar with an ETA on a terminal, and a warning before work that will take minutes.

Every long loop of the library (tiles of an upscaling, images of an evaluation or a release, benchmark rows)
reports through `Progress` (or `track` for an iterable); the command line decides whether anyone sees it:

- the bar (tqdm, on stderr) is drawn only when stderr is a terminal, never under `--quiet` (`set_quiet`), and
  only once the work has run `BAR_DELAY_S`;
- once the first unit(s) of work have run, the remaining time is estimated from them, and work that will
  take more than `WARN_AFTER_S` is announced on stderr, bar or not, e.g. "upscaling: this will take about
  85 minutes (1,254 tiles at 4.1 s); Ctrl-C stops it" (not under `--quiet`).

Library callers that print nothing (the Python API, the app) pass no `Progress` or leave the bar off: nothing
here prints unless a command enabled it, except the warning, which goes to stderr like a `warnings` message.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

# Work estimated to take longer than this is announced before it runs on: a user waiting a minute without a
# word should know why, and that Ctrl-C is safe.
WARN_AFTER_S = 60.0
# The estimate waits for this much measured time (or one unit, whichever comes later): a first unit of a few
# milliseconds (an evaluation image) is dominated by warm-up and timer noise.
ESTIMATE_AFTER_S = 1.0

# A bar appears only once the work has run this long: a quick command prints no bar that flashes and stays.
BAR_DELAY_S = 0.5

_quiet = False

ProgressCallback = Callable[[int, int], None]
"""`callback(done, total)`: called by library functions (e.g. `evit_hf.predict.upscale_image`) as work
advances: `(0, total)` before the first unit, then after each."""


def set_quiet(quiet: bool) -> None:
    """`True`: no bars and no time warnings from now on (`evit-hf ... --quiet`)."""
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    return _quiet


def bar_enabled() -> bool:
    """Whether bars are drawn: stderr is a terminal and `--quiet` was not given."""
    return not _quiet and _isatty(sys.stderr)


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


def _terminal_width() -> int:
    """The width stderr's terminal reports; 0 where it reports none (a pseudo-terminal never sized, on which tqdm
    would draw nothing at all: the bar then takes $COLUMNS x $LINES, else 80 x 24)."""
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


def format_duration(seconds: float) -> str:
    """`seconds` as a reader says it: "45 seconds", "about 85 minutes" style, without the "about"."""
    if seconds < 90:
        return f"{seconds:.0f} seconds"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds / 3600:.1f} hours"


def _plural(unit: str) -> str:
    return unit + ("es" if unit.endswith(("s", "x", "ch", "sh")) else "s")


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.2g} s"


class Progress:
    """Work of `total` units (`unit`: "tile", "image", ...; None: unknown) described as `description`.

    `update(n)` after each unit (or call the object as a `ProgressCallback`); `close()` (or `with`) at the end.
    The bar follows `bar_enabled()`; the time warning is given once, when the measured time allows an estimate.
    """

    def __init__(self, description: str, total: int | None = None, unit: str = "image",
                 warn_after_s: float | None = None) -> None:
        self.description = description
        self.total = total
        self.unit = unit
        self.warn_after_s = WARN_AFTER_S if warn_after_s is None else warn_after_s
        self.done = 0
        self.warning: str | None = None  # the warning given, if any
        self._estimated = False
        self._started = time.perf_counter()
        self._bar = None
        if bar_enabled():
            from tqdm.auto import tqdm

            fallback = shutil.get_terminal_size()
            size = ({"dynamic_ncols": True} if _terminal_width()
                    else {"ncols": fallback.columns, "nrows": fallback.lines})
            self._bar = tqdm(total=total, desc=description, unit=unit, file=sys.stderr, delay=BAR_DELAY_S, **size)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, done: int, total: int) -> None:
        """The `ProgressCallback` form: `done` units of `total` are finished."""
        if total != self.total:
            self.total = total
            if self._bar is not None:
                self._bar.total = total
                self._bar.refresh()
        if done == 0:
            self._started = time.perf_counter()  # the clock starts with the first unit, not at construction
        self.update(done - self.done)

    def update(self, n: int = 1) -> None:
        if n <= 0:
            return
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        if not self._estimated:
            self._estimate()

    def _estimate(self) -> None:
        elapsed = time.perf_counter() - self._started
        if self.total is None or elapsed < ESTIMATE_AFTER_S and self.done < self.total:
            return
        self._estimated = True
        per_unit = elapsed / self.done
        remaining = per_unit * (self.total - self.done)
        if _quiet or elapsed + remaining < self.warn_after_s:
            return
        units = f"{self.total:,} {_plural(self.unit) if self.total != 1 else self.unit}"
        self.warning = (f"{self.description}: this will take about {format_duration(elapsed + remaining)} "
                        f"({units} at {_seconds(per_unit)}); Ctrl-C stops it")
        self.write(self.warning)

    def write(self, message: str) -> None:
        """A line of news about the work (on stderr, above the bar); nothing under `--quiet`."""
        if self._bar is not None:
            self._bar.write(message, file=sys.stderr)
        elif not _quiet:
            print(message, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def track(items: Iterable[T], description: str, total: int | None = None, unit: str = "image") -> Iterator[T]:
    """`items`, reported to a `Progress` as each one is consumed (its work done); `total` defaults to
    `len(items)` where it has one."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(description, total, unit) as progress:
        for item in items:
            yield item
            progress.update()


__all__ = ["BAR_DELAY_S", "ESTIMATE_AFTER_S", "WARN_AFTER_S", "Progress", "ProgressCallback", "bar_enabled",
           "format_duration", "is_quiet", "set_quiet", "track"]
