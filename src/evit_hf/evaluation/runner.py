"""Shared evaluation plumbing: one split of a dataset as a stream, progress bars, the results record.

Owns the steps every task repeats: loading a split (`evit_hf.training.data.load_split`: Hub id, local folder
or parquet) with its columns checked and renamed, limiting it to the first N samples, wrapping iteration in
a tqdm bar, and turning metrics into an `EvalResult` that prints as a table and saves as JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class EvalResult:
    """What one `evit-hf eval` run measured: `metrics` (JSON-ready numbers) and `table` (markdown)."""

    task: str
    model: str
    data: str
    metrics: dict[str, Any]
    table: str
    settings: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (NaN written as null)."""
        return _finite(asdict(self))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_results(result: EvalResult, path: str | Path) -> Path:
    """Write `result` as JSON to `path` (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return path


def load_columns(data: str, split: str, columns: dict[str, str], max_samples: int | None = None):
    """The split `split` of `data` as a streamed `IterableDataset` with `{source: target}` columns renamed.

    Raises a `ValueError` naming the columns the dataset has when one is missing.
    """
    from ..training.data import load_split, rename_columns

    if max_samples is not None and max_samples < 1:
        raise ValueError(f"--max-samples must be positive, got {max_samples}.")
    dataset = rename_columns(load_split(data, split), columns)
    return dataset.take(max_samples) if max_samples else dataset


def progress(items: Iterable[T], description: str, total: int | None = None, unit: str = "img") -> Iterator[T]:
    """`items` under a tqdm progress bar (on stderr)."""
    from tqdm.auto import tqdm

    yield from tqdm(items, desc=description, total=total, unit=unit, dynamic_ncols=True)


def load_model(auto_class_name: str, name: str, device: str = "cpu", onnx: str | Path | None = None):
    """The model `name` (any name `evit_hf.resolve` takes: a released model, a folder, a Hub id) as the
    `transformers.<auto_class_name>` task loads it, in eval mode on `device`; a `ValueError` when it cannot be
    loaded. With `onnx`, that exported file in ONNX Runtime instead (`OnnxRuntimeModel` returning `logits`),
    checked against the model's config."""
    from ..resolve import AUTO_CLASSES
    from ..resolve import load_model as resolve_model

    task = next(task for task, auto_name in AUTO_CLASSES.items() if auto_name == auto_class_name)
    model = resolve_model(name, task).model
    if onnx is not None:
        from .onnx_model import OnnxRuntimeModel

        return OnnxRuntimeModel(onnx, model.config, "logits", device)
    return model.to(device)


def positive(name: str, value: int | float) -> None:
    """Raise a `ValueError` unless `value` is positive (`name` is the option shown to the user)."""
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}.")


__all__ = ["EvalResult", "load_columns", "load_model", "positive", "progress", "write_results"]
