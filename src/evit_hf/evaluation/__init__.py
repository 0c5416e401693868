"""`evit-hf eval`: the paper's evaluation protocols on any dataset.

One module per task (`segmentation`, `classification`, `sam`, `super_resolution`), each owning its
preprocessing, inference and the call into the shared metric code of `evit_hf.training.metrics`;
`runner` owns what they share (loading a split and its size, the results record, table and JSON); progress
bars and time estimates come from `evit_hf.progress`.
"""

from __future__ import annotations

from .runner import EvalResult, write_results

__all__ = ["EvalResult", "write_results"]
