"""The CPU process settings every evit-hf user gets by default: `apply_cpu_defaults` (run by `import evit_hf`).

Owns the two process-wide settings that decide CPU speed on glibc Linux, measured in docs/benchmarks.md
(settings table, and the pipeline table: default vs tuned process):

- glibc's allocator (`tune_cpu_allocator`): by default glibc mmaps every allocation above its dynamic
  threshold (up to 32 MiB) and unmaps it on free, so every large activation is page-faulted back in on each
  forward pass: seg-B1 at 1024x2048 ran 2x slower (1317 vs 652 ms). `mallopt(M_MMAP_MAX=0,
  M_TRIM_THRESHOLD=1 GiB, M_TOP_PAD=64 MiB)` keeps them on the heap. The cost: the process keeps up to 1 GiB
  of freed memory for reuse, and a large block freed below live ones stays resident until they are freed.
- `GOMP_SPINCOUNT=10000000`: torch's OpenMP workers spin about 0.25 s before sleeping, so the next operator
  starts without a wake-up (a further 1.2x). libgomp reads it once, when torch loads: it is set only when
  torch is not imported yet and neither it nor `OMP_WAIT_POLICY` is set by the user. The workers spin while
  the calling thread runs Python, so a second multi-threaded runtime in the same process (ONNX Runtime,
  numpy's BLAS) gets less CPU for that quarter second: opt out where that matters.

Opt out with `EVIT_HF_CPU_DEFAULTS=0` in the environment (before `import evit_hf`). Thread counts are left to
torch (one intra-op thread per physical core): evit-hf starts no thread pool of its own, and pre/post-processing
runs in torch's pool or in one thread (PIL). Imports no torch (the `evit-hf` command stays torch-free).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

OPT_OUT_ENV = "EVIT_HF_CPU_DEFAULTS"
SPIN_COUNT = "10000000"

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4  # glibc malloc.h


def _mallopt():
    """glibc's `mallopt`, or None (musl, macOS, Windows)."""
    for name in (None, ctypes.util.find_library("c")):
        try:
            return ctypes.CDLL(name).mallopt
        except (OSError, AttributeError, TypeError):
            continue
    return None


def tune_cpu_allocator() -> bool:
    """glibc only: keep big activations on the heap instead of mmap'ing them (and page-faulting them back in)
    on every forward pass: `mallopt(M_MMAP_MAX=0, M_TRIM_THRESHOLD=1 GiB, M_TOP_PAD=64 MiB)`. Process-wide;
    the process keeps up to 1 GiB of freed memory for reuse. Returns True if applied (False elsewhere)."""
    mallopt = _mallopt()
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, 1 << 30) and mallopt(_M_TOP_PAD, 64 << 20))


def cpu_defaults_enabled() -> bool:
    """Whether evit-hf applies its CPU defaults (`EVIT_HF_CPU_DEFAULTS` is not 0 / false / off / no)."""
    return os.environ.get(OPT_OUT_ENV, "1").strip().lower() not in ("0", "false", "off", "no")


def apply_cpu_defaults() -> dict[str, bool]:
    """Apply the allocator tuning and, while torch is not loaded yet, `GOMP_SPINCOUNT` (see the module doc);
    nothing with `EVIT_HF_CPU_DEFAULTS=0`. Returns what was applied: {"allocator": ..., "spin": ...}."""
    if not cpu_defaults_enabled():
        return {"allocator": False, "spin": False}
    spin = False
    if "torch" not in sys.modules and not {"GOMP_SPINCOUNT", "OMP_WAIT_POLICY"} & os.environ.keys():
        os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
        spin = True
    return {"allocator": tune_cpu_allocator(), "spin": spin}


__all__ = ["OPT_OUT_ENV", "apply_cpu_defaults", "cpu_defaults_enabled", "tune_cpu_allocator"]
