"""The released checkpoints one call away: a released model's name -> a ready local folder.

- `catalog`: the released models, the names that find them and the Hub file each one is converted from
- `fetch`: downloads with `huggingface_hub` (its cache, progress bar, `HF_TOKEN`, `HF_HUB_OFFLINE`), failures as
  one line, `hub_reachable`
- `cache`: the converted folders, one per source file and revision, written atomically
- `pretrained`: `prepare` (download once, convert and verify once, reuse) and `cache_state`
- `listing`: the rows of `evit-hf models`

`evit_hf.resolve` puts this behind every entry point; `import evit_hf` installs `released_folder` as the hook of
the models' `from_pretrained`, so that `EfficientViTSamModel.from_pretrained("efficientvit-sam-xl1")` works.
"""

from __future__ import annotations

import os

from .catalog import ReleasedModel, Source, closest_names, find_released, released_models, released_names
from .fetch import hub_reachable
from .pretrained import cache_state, prepare


def released_folder(name: str | os.PathLike) -> str | None:
    """The ready folder of the released model `name`, or None when `name` is a path or no released name.

    A name that looks like a mistyped released name (`efficientvit-...` without an organisation) raises a
    `ValueError` with the closest names instead of going to the Hub.
    """
    if not isinstance(name, str) or os.path.exists(name):
        return None
    released = find_released(name)
    if released is None:
        if "/" not in name and name.strip().lower().startswith("efficientvit"):
            close = closest_names(name)
            raise ValueError(f"{name!r} is no released EfficientViT model"
                             + (f"; did you mean {', '.join(map(repr, close))}?" if close else "")
                             + " (`evit-hf models` lists them all)")
        return None
    return str(prepare(released))


def install_from_pretrained_hook() -> None:
    """Let every EfficientViT model class's `from_pretrained` take a released model's name (`import evit_hf`)."""
    from ..models.efficientvit.modeling_efficientvit import EfficientViTFamilyMixin

    EfficientViTFamilyMixin.pretrained_name_hook = staticmethod(released_folder)


__all__ = [
    "ReleasedModel",
    "Source",
    "cache_state",
    "closest_names",
    "find_released",
    "hub_reachable",
    "install_from_pretrained_hook",
    "prepare",
    "released_folder",
    "released_models",
    "released_names",
]
