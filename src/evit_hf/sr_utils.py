"""The super-resolution checkpoint embedded in the package: where it lives and whether it is there.

Owns the location of the shipped x2 checkpoint (`src/evit_hf/weights/efficientvit-sr-x2/`, package data
written by the SR training run), so that the trainer, the release builder and the resolver (for which it is
the default super-resolution model: `evit_hf.resolve.load_model(None, "image-to-image")`) agree on it.
"""

from __future__ import annotations

from pathlib import Path

EMBEDDED_SR_NAME = "efficientvit-sr-x2"
# Files a usable embedded checkpoint folder has (what `save_pretrained_with_code` writes).
_REQUIRED_FILES = ("config.json", "model.safetensors")


def embedded_sr_checkpoint() -> Path:
    """Where the embedded x2 checkpoint folder lives (it may not exist yet: see `has_embedded_sr_checkpoint`)."""
    return Path(__file__).resolve().parent / "weights" / EMBEDDED_SR_NAME


def has_embedded_sr_checkpoint() -> bool:
    """Whether the embedded checkpoint folder is there with its config and weights."""
    folder = embedded_sr_checkpoint()
    return all((folder / name).is_file() for name in _REQUIRED_FILES)


def require_embedded_sr_checkpoint() -> Path:
    """The embedded checkpoint folder, or a `ValueError` that says it is missing and what to pass instead."""
    if not has_embedded_sr_checkpoint():
        raise ValueError(
            f"the embedded super-resolution checkpoint is missing ({embedded_sr_checkpoint()} has no "
            f"{' / '.join(_REQUIRED_FILES)}; the SR training run produces it). Pass --model with a saved folder, "
            f"a Hub id, or random:sr-light-x2 (random weights)."
        )
    return embedded_sr_checkpoint()


__all__ = [
    "EMBEDDED_SR_NAME",
    "embedded_sr_checkpoint",
    "has_embedded_sr_checkpoint",
    "require_embedded_sr_checkpoint",
]
