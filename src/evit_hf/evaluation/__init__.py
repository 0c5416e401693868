"""`evit-hf eval`: the paper's evaluation protocols on any dataset.

One module per task (`segmentation`, `classification`, `sam`, `super_resolution`), each owning its
preprocessing, inference and the call into the shared metric code of `evit_hf.training.metrics`;
`runner` owns what they share (loading a split, progress bars, the results record, table and JSON).
"""

from __future__ import annotations

from .runner import EvalResult, write_results

__all__ = ["EvalResult", "write_results"]
