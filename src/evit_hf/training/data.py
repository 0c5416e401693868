"""Streamed training data: where a split comes from, and which samples each process sees in which order.

`load_split` turns the `dataset` argument (a Hub id, a local folder, parquet files, or `synthetic`) into a
`datasets.IterableDataset` with the task's columns renamed to `image` / `label`.

`ProcessStream` owns distributed correctness. Each epoch it shuffles the stream with a seed shared by all
processes (shard order + buffer), gives each process a disjoint share with `split_dataset_by_node` (whole
shards when their number divides by the world size, every world-size-th sample otherwise), and can skip the
samples a process already trained on, so a resumed run continues at the same position. The data loader is
deliberately *not* passed through `accelerator.prepare`: Accelerate would shard the stream a second time and
drop data. Processes whose share runs out early are handled by the trainer (see `lockstep_batches`).
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

SYNTHETIC = "synthetic"


def default_cache_dir() -> Path:
    """Where built-in datasets are generated: `$EVIT_HF_HOME` or `~/.cache/evit_hf` (beside the converted models)."""
    from ..hub.cache import evit_hf_home

    return evit_hf_home()


def builtin_dataset_dir(name: str) -> Path:
    """A built-in dataset (`synthetic-seg`, `synthetic-sa1b`, `skimage-photos`), written once with its defaults
    on first use."""
    from ..data.photos import write_skimage_photos
    from ..data.sa1b import write_synthetic_sa1b
    from ..data.synthetic import write_synthetic_segmentation

    writers = {"synthetic-seg": write_synthetic_segmentation, "synthetic-sa1b": write_synthetic_sa1b,
               "skimage-photos": write_skimage_photos}
    if name not in writers:
        raise ValueError(f"Unknown built-in dataset {name!r}; known: {sorted(writers)}.")
    root = default_cache_dir() / name
    if not (root / "README.md").is_file():
        # Written to a temporary name first so an interrupted generation is not mistaken for a dataset.
        tmp = root.with_name(root.name + f".tmp{os.getpid()}")
        writers[name](tmp)
        try:
            tmp.rename(root)
        except OSError:  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def synthetic_segmentation_dir() -> Path:
    """The built-in synthetic segmentation dataset (see `evit_hf.data.synthetic`)."""
    return builtin_dataset_dir("synthetic-seg")


def _is_data_files(spec: str) -> bool:
    return spec.endswith(".parquet") or any(c in spec for c in "*?[")


def load_split(dataset: str, split: str, *, config_name: str | None = None, streaming: bool = True):
    """One split of `dataset` as a `datasets.IterableDataset`.

    `dataset` may be a local folder (parquet shards named `{split}-*.parquet`, an image folder with per-split
    sub-folders, or SA-1B's own layout of `sa_N.jpg` + `sa_N.json` pairs in `dataset/{split}` or in `dataset`
    itself, which has no splits), a parquet file or glob (then `split` may itself be a parquet glob for another
    split), or a Hub dataset id.
    """
    from ..data.sa1b import is_sa1b_folder, load_sa1b_folder

    try:
        import datasets
    except ImportError as err:  # pragma: no cover - an install problem, reported clearly
        raise ImportError("Training needs `datasets`: pip install 'evit-hf[train]'.") from err

    if not _is_data_files(split) and not _is_data_files(dataset):
        for folder in (Path(dataset) / split, Path(dataset)):
            if is_sa1b_folder(folder):
                return load_sa1b_folder(folder)
    if _is_data_files(split):
        kwargs: dict[str, Any] = {"path": "parquet", "data_files": {"data": split}, "split": "data"}
        if not glob.glob(split):
            raise ValueError(f"No parquet files match {split!r}.")
    elif _is_data_files(dataset):
        if not glob.glob(dataset):
            raise ValueError(f"No parquet files match {dataset!r}.")
        kwargs = {"path": "parquet", "data_files": {split: dataset}, "split": split}
    else:
        kwargs = {"path": dataset, "name": config_name, "split": split}
    try:
        ds = datasets.load_dataset(**kwargs, streaming=streaming)
    except ValueError as err:
        if "split" in str(err).lower():
            raise ValueError(f"Dataset {dataset!r} has no split {split!r}: {err}") from err
        raise
    except FileNotFoundError as err:
        raise ValueError(f"Cannot find dataset {dataset!r} (a Hub id, a local folder or parquet files): {err}") from err
    if not isinstance(ds, datasets.IterableDataset):
        ds = ds.to_iterable_dataset(num_shards=min(len(ds), 64) or 1)
    return ds


def rename_columns(ds, mapping: dict[str, str]):
    """Rename `{source: target}` columns, with an error naming the columns the dataset really has."""
    columns = ds.column_names
    if columns is None:  # unknown features (some streamed sources): look at the first example
        columns = list(next(iter(ds.take(1))).keys())
    missing = [source for source in mapping if source not in columns]
    if missing:
        raise ValueError(
            f"The dataset has no column {missing[0]!r}; its columns are {columns}. Map yours with "
            f"--image_column / --label_column."
        )
    renames = {source: target for source, target in mapping.items() if source != target}
    return ds.rename_columns(renames) if renames else ds


def ordered_map(fn: Callable[[Any], Any], items: Iterable[Any], threads: int) -> Iterator[Any]:
    """`map(fn, items)` on a thread pool, yielding results in input order (so runs stay deterministic)."""
    if threads <= 1:
        yield from map(fn, items)
        return
    window = 4 * threads
    with ThreadPoolExecutor(threads, thread_name_prefix="evit-data") as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of `size` items (the last one may be shorter)."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _shorten_parquet_shutdown_sleep(seconds: float = 0.2) -> None:
    """Cap the pause `datasets` takes after reading interleaved parquet shards.

    Every shuffled pass over parquet shards ends with `datasets.config.SLEEP_TIME_ON_THREADS_SHUTDOWN` (5 s)
    of sleep, a guard against an Arrow crash when reader threads are torn down at interpreter exit
    (apache/arrow#45214). Here it would cost 5 s per epoch; the reader threads have long finished by then.
    """
    import datasets

    datasets.config.SLEEP_TIME_ON_THREADS_SHUTDOWN = min(datasets.config.SLEEP_TIME_ON_THREADS_SHUTDOWN, seconds)


class ProcessStream:
    """This process's share of a streamed split, one deterministic pass per epoch.

    Args:
        dataset: the full split (`datasets.IterableDataset`), identical on every process.
        rank, world_size: this process and the number of processes.
        seed: shuffling seed shared by all processes; the epoch is mixed in by `set_epoch`.
        shuffle_buffer: streaming shuffle buffer size (0 keeps the stream order, e.g. for evaluation).
        max_samples: use only the first N samples of the split.
    """

    def __init__(
        self,
        dataset,
        *,
        rank: int,
        world_size: int,
        seed: int = 0,
        shuffle_buffer: int = 0,
        max_samples: int | None = None,
    ) -> None:
        if max_samples is not None:
            dataset = dataset.take(max_samples)
        self.dataset = dataset
        self.rank = rank
        self.world_size = world_size
        self.seed = seed
        self.shuffle_buffer = shuffle_buffer

    def epoch(self, epoch: int, skip: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
        """(position, undecoded example) pairs of this process's share for `epoch`, after `skip` samples.

        Images are left encoded (decode them with `decode`, e.g. on worker threads), which also makes
        skipping cheap. `position` counts from the start of the share (skipped samples included), so
        per-sample randomness keyed on it is the same whether or not the run was resumed.
        """
        from datasets.distributed import split_dataset_by_node

        ds = self.dataset
        if self.shuffle_buffer > 0:
            _shorten_parquet_shutdown_sleep()
            ds = ds.shuffle(seed=self.seed, buffer_size=self.shuffle_buffer)
        if self.world_size > 1:
            ds = split_dataset_by_node(ds, rank=self.rank, world_size=self.world_size)
        ds = ds.decode(False)
        # Last: the shuffle seed is read from the dataset being iterated (derived datasets drop the epoch).
        ds.set_epoch(epoch)
        # Skipped here rather than with `ds.skip`, which counts the whole stream, not this process's share.
        yield from itertools.islice(enumerate(ds), skip, None)

    def decode(self, example: dict[str, Any]) -> dict[str, Any]:
        """Decode the media columns (images to PIL) of an example from `epoch`."""
        features = self.dataset.features
        return features.decode_example(example) if features is not None else example

    def count(self) -> int:
        """Samples in the whole split (one pass over the stream without decoding images)."""
        return sum(1 for _ in self.dataset.decode(False))


__all__ = [
    "SYNTHETIC",
    "ProcessStream",
    "batched",
    "builtin_dataset_dir",
    "default_cache_dir",
    "load_split",
    "ordered_map",
    "rename_columns",
    "synthetic_segmentation_dir",
]
