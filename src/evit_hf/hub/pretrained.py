"""A released model's ready folder: the authors' file downloaded once, converted and verified once, then reused.

`prepare(released)` returns a local folder that `from_pretrained` reads (safetensors, config, processor, model
code). Online, one HEAD request gives the revision the Hub serves the source file at; a converted folder of
that revision is returned as is (the second load reads safetensors only), else the file is downloaded
(`huggingface_hub`: its cache, progress bar and token), converted with the strict key report
(`evit_hf.convert.convert_checkpoint`), verified on a probe input (every output finite) and stored in the
converted cache (`evit_hf.hub.cache`). Offline (`HF_HUB_OFFLINE`, or no connection) the revision is the one the
Hugging Face cache holds at `main`, else the most recently converted one. Every failure is one `ValueError`
line that names the fix: the URL and the `evit-hf convert` command when nothing is cached offline, the file to
delete when a cached file is truncated, the key report when a file holds other weights.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from . import cache
from .catalog import ReleasedModel
from .fetch import HubUnreachable, SourceFile, cached_file, download, hub_reachable, remote_revision, unreachable_reason

_PROBE_SIDE = {"mask-generation": 128}  # the SAM neck resizes any input to its 64x64 embedding grid
_PROBE_DEFAULT_SIDE = 64  # two strides of 32: every stage of the classifiers and segmenters runs


def prepare(released: ReleasedModel, online: Callable[[], bool] = hub_reachable) -> Path:
    """The local folder of `released`, downloading and converting its source file the first time."""
    if released.source is None:
        from ..sr_utils import require_embedded_sr_checkpoint

        return require_embedded_sr_checkpoint()
    source = released.source
    reason = None
    if online():
        try:
            revision = remote_revision(source)
        except HubUnreachable as err:
            reason = str(err)
        except ValueError as err:
            # the Hub answered with an error: a folder converted earlier still serves (e.g. a file gone upstream)
            entry = cache.find_entry(source)
            if entry is None:
                raise ValueError(f"{released.name}: {err}") from err
            return entry
        else:
            entry = cache.find_entry(source, revision)
            return entry or _convert(released, _download(released), redownload=True)
    local = cached_file(source)
    if local is not None:
        return cache.find_entry(source, local.revision) or _convert(released, local, redownload=False)
    entry = cache.find_entry(source)  # converted before; the source file has left the Hugging Face cache since
    if entry is not None:
        return entry
    raise ValueError(offline_message(released, reason or unreachable_reason()))


def offline_message(released: ReleasedModel, reason: str) -> str:
    """The one line for a released model that is neither converted nor downloaded here, without the Hub."""
    return (f"{released.name} is not in the local cache and the Hub cannot be asked ({reason}). Connect and run "
            f"again, or download {released.source.url} elsewhere, run `{released.convert_command()}` and pass "
            f"the folder ./{released.name} instead.")


def _download(released: ReleasedModel, force: bool = False) -> SourceFile:
    try:
        return download(released.source, force=force)
    except HubUnreachable as err:  # huggingface_hub keeps what came (a `.incomplete` blob) for the next call
        raise ValueError(f"{released.name}: {err}; run again to resume the download.") from err
    except ValueError as err:
        raise ValueError(f"{released.name}: {err}") from err


def _convert(released: ReleasedModel, local: SourceFile, redownload: bool) -> Path:
    """Convert and verify the downloaded source file into the cache; a cached file that cannot be read is
    downloaded again once when the Hub can be asked."""
    from ..convert import load_checkpoint
    from ..convert.folder import convert_checkpoint
    from ..hub_utils import save_pretrained_with_code

    start = time.perf_counter()
    try:
        state_dict = load_checkpoint(local.path)
    except ValueError as err:
        if not redownload:
            raise ValueError(_unreadable(released, local, err, offline=True)) from err
        local = _download(released, force=True)
        try:
            state_dict = load_checkpoint(local.path)
        except ValueError as again:
            raise ValueError(_unreadable(released, local, again, offline=False)) from again
    try:
        model, processor = convert_checkpoint(released.target.variant, state_dict,
                                              timm=released.source.layout == "timm",
                                              resolution=released.resolution)
    except ValueError as err:
        raise ValueError(f"{released.name}: {local.path} is not the {released.target.variant} checkpoint the "
                         f"authors published: {err}") from err
    probe = probe_outputs(model, released.task)
    if not probe["finite"]:
        raise ValueError(f"{released.name}: the weights converted from {local.path} give non-finite outputs on a "
                         f"probe input (the file is corrupt); delete it and run again to download it anew.")

    def write(folder: Path) -> dict:
        save_pretrained_with_code(model, folder, image_processor=processor)
        return {"name": released.name, "variant": released.target.variant, "resolution": released.resolution,
                "source_bytes": local.path.stat().st_size, "tensors": len(state_dict), "missing_keys": 0,
                "unexpected_keys": 0, "probe": probe}

    folder = cache.store(released.source, local.revision, write)
    print(f"evit-hf: converted {released.source.repo_id}/{released.source.filename} ({local.revision[:8]}) to "
          f"{folder} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return folder


def _unreadable(released: ReleasedModel, local: SourceFile, err: ValueError, offline: bool) -> str:
    cause = err.__cause__ or err
    reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0][:200]
    blob = os.path.realpath(local.path)  # the Hugging Face cache links snapshots to blobs: delete the blob
    fix = (f"delete it (rm '{blob}') and run again with a connection to download it anew" if offline else
           "it was downloaded again and is still unreadable: the file on the Hub may be broken")
    return f"{released.name}: {local.path} is truncated or corrupt ({reason}); {fix}."


def probe_outputs(model: torch.nn.Module, task: str) -> dict:
    """Run `model` once on a small deterministic input; whether every output is finite, and their size."""
    side = _PROBE_SIDE.get(task, _PROBE_DEFAULT_SIDE)
    pixels = torch.linspace(-2.0, 2.0, 3 * side * side).reshape(1, 3, side, side)
    with torch.inference_mode():
        if task == "mask-generation":  # the whole model: encoder, prompt encoder and mask decoder
            output = model(pixel_values=pixels, input_points=torch.tensor([[[[512.0, 512.0]]]]),
                           input_labels=torch.tensor([[[1]]]))
            tensors = [output.pred_masks, output.iou_scores]
        else:
            tensors = [model(pixel_values=pixels).logits]
    finite = all(bool(torch.isfinite(t).all()) for t in tensors)
    return {"input": [1, 3, side, side], "finite": finite,
            "max_abs": max(float(t.abs().max()) for t in tensors) if finite else None}


def cache_state(released: ReleasedModel) -> tuple[str, Path | None]:
    """Whether `released` is ready here, without the network: ("shipped" | "converted" | "downloaded" | "",
    its folder or cached source file)."""
    if released.source is None:
        from ..sr_utils import embedded_sr_checkpoint, has_embedded_sr_checkpoint

        return ("shipped", embedded_sr_checkpoint()) if has_embedded_sr_checkpoint() else ("", None)
    local = cached_file(released.source)
    entry = cache.find_entry(released.source, local.revision if local else None)
    if entry is not None:
        return "converted", entry
    return ("downloaded", local.path) if local is not None else ("", None)


__all__ = ["cache_state", "offline_message", "prepare", "probe_outputs"]
