"""Writing generated datasets in the Hugging Face `datasets` parquet layout (`data/{split}-0000K-of-0000N.parquet`).

Owns the shard layout shared by the built-in datasets: rows come from a per-sample function, so a sample's
content never depends on the shard count, and stale shards of an earlier run are removed first.
"""

from __future__ import annotations

import importlib
import io
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

SPLITS = ("train", "validation")
_SHARD_NAME = re.compile(r"^(train|validation)-\d{5}-of-\d{5}\.parquet$")
# Validation is small; more shards than this many samples each would only fragment it.
_SAMPLES_PER_VALIDATION_SHARD = 1000


def require(module: str, hint: str):
    """`import module` (e.g. an optional dependency), or an ImportError saying `hint` (what to install)."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(hint) from err


def require_datasets():
    """The `datasets` module, with an install hint when it is missing."""
    return require("datasets", "Writing a built-in dataset needs the `datasets` package: pip install datasets")


def card_front_matter(pretty_name: str | None = None, task: str | None = None, info: str = "") -> str:
    """The YAML front matter of a written dataset's card: the `datasets` config mapping each split to its
    `data/{split}-*` shards, after the optional name and task category, and `info` (more YAML) at the end."""
    lines = ["---"]
    if pretty_name:
        lines.append(f"pretty_name: {pretty_name}")
    if task:
        lines += ["task_categories:", f"- {task}"]
    lines += ["configs:", "- config_name: default", "  data_files:"]
    for split in SPLITS:
        lines += [f"  - split: {split}", f"    path: data/{split}-*"]
    return "\n".join(lines) + "\n" + info + "---\n"


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def shard_bounds(count: int, shards: int) -> list[tuple[int, int]]:
    """Contiguous [start, stop) ranges splitting `count` as evenly as possible (sizes differ by <= 1)."""
    base, extra = divmod(count, shards)
    bounds, start = [], 0
    for k in range(shards):
        stop = start + base + (1 if k < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def check_split_sizes(num_train: int, num_validation: int, num_shards: int) -> None:
    """Clear errors for split sizes a writer cannot honour."""
    for name, value in (("num_train", num_train), ("num_validation", num_validation), ("num_shards", num_shards)):
        if value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value}.")
    if num_shards > num_train:
        raise ValueError(f"num_shards must be between 1 and num_train ({num_train}), got {num_shards}.")


def write_parquet_splits(
    out: Path,
    counts: dict[str, int],
    num_shards: int,
    features: Any,
    make_row: Callable[[str, int, int], dict[str, Any]],
    name: str,
    progress: bool = True,
) -> tuple[dict[str, int], dict[str, int]]:
    """Write `counts[split]` rows per split, row i of split s being `make_row(split, s, i)`.

    `features` is the `datasets.Features` of the rows. The training split gets `num_shards` shards, validation
    one per started 1000 rows (at most `num_shards`). Returns (bytes per split, shards per split).
    """
    datasets = require_datasets()
    from tqdm.auto import tqdm

    data_dir = out / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    # Shards of an earlier run with another shard count would otherwise be loaded alongside the new ones.
    for stale in data_dir.iterdir():
        if _SHARD_NAME.match(stale.name):
            stale.unlink()
    shard_counts = {
        "train": num_shards,
        "validation": max(1, min(num_shards, math.ceil(counts["validation"] / _SAMPLES_PER_VALIDATION_SHARD))),
    }
    num_bytes = dict.fromkeys(SPLITS, 0)
    # datasets' own per-shard "Creating parquet" bar would interleave with ours; restored afterwards.
    bars_were_enabled = not datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        for split_index, split in enumerate(SPLITS):
            total = shard_counts[split]
            with tqdm(total=counts[split], desc=f"{name} {split}", unit="img", disable=not progress) as bar:
                for shard, (start, stop) in enumerate(shard_bounds(counts[split], total)):
                    rows = []
                    for index in range(start, stop):
                        rows.append(make_row(split, split_index, index))
                        bar.update(1)
                    shard_data = datasets.Dataset.from_list(rows, features=features)
                    shard_data.to_parquet(str(data_dir / f"{split}-{shard:05d}-of-{total:05d}.parquet"))
                    num_bytes[split] += shard_data.data.nbytes
    finally:
        if bars_were_enabled:
            datasets.enable_progress_bars()
    return num_bytes, shard_counts


__all__ = [
    "SPLITS",
    "card_front_matter",
    "check_split_sizes",
    "png_bytes",
    "require",
    "require_datasets",
    "shard_bounds",
    "write_parquet_splits",
]
