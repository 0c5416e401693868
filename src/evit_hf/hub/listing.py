"""What `evit-hf models` shows: every released model with its task, source file, size, the authors' reported
accuracy and whether it is ready here (found without the network)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache

from .catalog import ReleasedModel, released_models
from .pretrained import cache_state


@dataclass(frozen=True)
class ReleasedRow:
    name: str
    task: str
    source: str          # "repo/file", or "shipped in evit-hf"
    size_bytes: int      # the converted weights (fp32 safetensors): the folder on disk when it is converted
    reported: str        # the original authors' numbers ("" when they published none)
    state: str           # "converted", "downloaded" (source file cached, converted on first use), "shipped" or ""
    path: str            # the converted folder or cached source file ("" when not cached)

    def to_json(self) -> dict:
        return asdict(self)


@cache
def _weights_bytes(variant: str, resolution: int | None) -> int:
    """Bytes of the fp32 state dict, counted on a model built on the meta device (no memory, no weights)."""
    import torch

    from ..release.catalog import get_target
    from ..release.models import default_config, model_class

    target = get_target(variant, resolution)
    with torch.device("meta"):
        model = model_class(target)(default_config(target))
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def _reported(released: ReleasedModel) -> str:
    from ..release.reported import reported_results

    results = reported_results(released.target.variant, released.resolution)
    return ", ".join(f"{r.dataset} {r.name} {r.value:.1f}" for r in results if "Top-5" not in r.name)


def released_rows(task: str | None = None) -> list[ReleasedRow]:
    """One row per released model (of `task`: an `evit_hf.resolve` task; None: all)."""
    from .cache import folder_size

    rows = []
    for released in released_models():
        if task not in (None, released.task):
            continue
        state, path = cache_state(released)
        source = released.source
        size = folder_size(path) if state in ("converted", "shipped") else _weights_bytes(
            released.target.variant, released.resolution if released.target.family == "cls" else None)
        rows.append(ReleasedRow(
            name=released.name, task=released.task,
            source=f"{source.repo_id}/{source.filename}" if source else "shipped in evit-hf",
            size_bytes=size, reported=_reported(released), state=state, path=str(path or "")))
    return rows


def format_rows(rows: list[ReleasedRow]) -> str:
    """A plain-text table (the widest cell of each column sets its width)."""
    header = ("name", "task", "source", "size", "reported by the authors", "here")
    cells = [header] + [(r.name, r.task, r.source, f"{r.size_bytes / 2**20:.0f} MB", r.reported or "-",
                         r.state or "-") for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells)


__all__ = ["ReleasedRow", "format_rows", "released_rows"]
