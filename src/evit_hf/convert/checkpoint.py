"""Reading checkpoints safely and loading renamed state dicts with errors that name every mismatch."""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn


def load_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a `.safetensors` file or a torch pickle with `weights_only=True` (never arbitrary code)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"Checkpoint {path!r} does not exist.")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except Exception as err:  # safetensors raises its own error types for corrupt headers
            raise ValueError(f"Checkpoint {path!r} is not a valid safetensors file: {err}") from err
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # the unpickler raises many types (UnpicklingError, EOFError, IndexError, ...)
        raise ValueError(
            f"Could not read checkpoint {path!r} as a weights-only torch file (corrupt, truncated, or it "
            f"contains objects other than tensors): {err}"
        ) from err


def unwrap_state_dict(checkpoint: Mapping) -> dict[str, torch.Tensor]:
    """Accept a raw state dict or `{"state_dict": ...}` / `{"model": ...}`; drop DDP `module.` prefixes."""
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"Expected a state dict (a mapping of names to tensors), got {type(checkpoint).__name__}.")
    for wrapper in ("state_dict", "model"):
        if wrapper in checkpoint and isinstance(checkpoint[wrapper], Mapping):
            checkpoint = checkpoint[wrapper]
            break
    state_dict = {}
    for key, value in checkpoint.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"Entry {key!r} of the checkpoint is a {type(value).__name__}, not a tensor.")
        state_dict[key.removeprefix("module.")] = value
    return state_dict


def _summarise(keys: list[str], limit: int = 20) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def _fill_tied(expected: Mapping[str, torch.Tensor], state_dict: Mapping[str, torch.Tensor]) -> dict:
    """Tied parameters (one tensor under several names, e.g. SAM's shared positional embedding) may be
    given once in a checkpoint: copy the given one to the model's other names for it."""
    names_by_storage: dict[int, list[str]] = {}
    for name, tensor in expected.items():
        if tensor.numel():
            names_by_storage.setdefault(tensor.data_ptr(), []).append(name)
    filled = dict(state_dict)
    for names in names_by_storage.values():
        given = [name for name in names if name in filled]
        if len(names) > 1 and given:
            for name in names:
                filled.setdefault(name, filled[given[0]])
    return filled


def load_converted(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> nn.Module:
    """Load a converted state dict strictly; raise a `ValueError` listing missing/unexpected/mis-shaped keys."""
    expected = model.state_dict()
    state_dict = _fill_tied(expected, state_dict)
    missing = sorted(k for k in expected if k not in state_dict)
    unexpected = sorted(k for k in state_dict if k not in expected)
    mismatched = sorted(
        f"{k} (checkpoint {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)})"
        for k in state_dict
        if k in expected and state_dict[k].shape != expected[k].shape
    )
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing: {_summarise(missing)}")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected: {_summarise(unexpected)}")
        if mismatched:
            problems.append(f"{len(mismatched)} with the wrong shape: {_summarise(mismatched)}")
        raise ValueError(
            f"The checkpoint does not match {source} ({type(model).__name__}). Is it the right variant? "
            + "; ".join(problems)
        )
    converted = {k: v.to(expected[k].dtype) if v.is_floating_point() else v for k, v in state_dict.items()}
    model.load_state_dict(converted, strict=True)
    return model
