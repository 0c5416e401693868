"""The cache of converted checkpoints: one folder per source file and revision, complete or absent.

Layout: `$EVIT_HF_HOME/converted/v{FORMAT}/<source key>/<revision>/` (`EVIT_HF_HOME` defaults to
`~/.cache/evit_hf`) holding what `save_pretrained_with_code` writes (safetensors, config, processor, model code)
and `evit_hf_source.json` (where the weights came from, what the verification saw). An entry is written into a
`.partial-*` folder beside it and renamed into place in one step, so an interrupted conversion never leaves a
folder that looks complete, and two processes converting at once both end with the same entry. Nothing here
is a pickle: the authors' `.pt` files stay in the Hugging Face cache, read once with `weights_only=True`.
`FORMAT` changes when the converter's output does, so an upgrade re-converts instead of reusing stale folders.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from .catalog import Source

FORMAT = 1
MANIFEST = "evit_hf_source.json"
HOME_ENV = "EVIT_HF_HOME"
_STALE_PARTIAL_S = 3600.0  # a `.partial-*` folder this old belongs to a conversion that was killed


def evit_hf_home() -> Path:
    """`$EVIT_HF_HOME`, else `~/.cache/evit_hf`: where evit-hf keeps what it makes (converted models, datasets)."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".cache" / "evit_hf")


def cache_root() -> Path:
    return evit_hf_home() / "converted" / f"v{FORMAT}"


def entry_dir(source: Source, revision: str) -> Path:
    return cache_root() / source.key / revision


def _complete(folder: Path) -> bool:
    return (folder / MANIFEST).is_file()


def find_entry(source: Source, revision: str | None = None) -> Path | None:
    """The converted folder of `source` at `revision` (None: the most recently converted revision), if complete."""
    if revision is not None:
        folder = entry_dir(source, revision)
        return folder if _complete(folder) else None
    parent = cache_root() / source.key
    entries = [p for p in parent.iterdir() if not p.name.startswith(".") and _complete(p)] if parent.is_dir() else []
    return max(entries, key=lambda p: (p / MANIFEST).stat().st_mtime, default=None)


def read_manifest(folder: Path) -> dict:
    return json.loads((folder / MANIFEST).read_text())


def store(source: Source, revision: str, write: Callable[[Path], dict]) -> Path:
    """Make the entry of `source` at `revision`: `write(folder)` fills a fresh folder and returns the manifest
    fields; the folder then becomes the entry in one rename. An entry that already exists is kept."""
    final = entry_dir(source, revision)
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(final.parent)
    partial = final.parent / f".partial-{revision}-{uuid.uuid4().hex[:8]}"
    try:
        manifest = write(partial)
        manifest = {"repo_id": source.repo_id, "filename": source.filename, "layout": source.layout,
                    "revision": revision, "format": FORMAT, **manifest}
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if final.exists() and not _complete(final):  # not ours to keep: copied in by hand, or a damaged disk
            shutil.rmtree(final)
        try:
            partial.rename(final)
        except OSError:  # another process made it first
            if not _complete(final):
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return final


def _remove_stale_partials(parent: Path) -> None:
    now = time.time()
    for partial in parent.glob(".partial-*"):
        try:
            if now - partial.stat().st_mtime > _STALE_PARTIAL_S:
                shutil.rmtree(partial, ignore_errors=True)
        except OSError:  # removed by another process meanwhile
            pass


def folder_size(folder: Path) -> int:
    """Bytes of the files in `folder`."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


__all__ = ["FORMAT", "MANIFEST", "cache_root", "entry_dir", "evit_hf_home", "find_entry", "folder_size",
           "read_manifest", "store"]
