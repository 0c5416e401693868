"""Data shipped with the package (label sets) and, later, synthetic dataset generators."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources


@cache
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in the standard index order (WordNet lemmas)."""
    text = resources.files(__package__).joinpath("imagenet_labels.json").read_text()
    return tuple(json.loads(text))


def imagenet_id2label() -> dict[int, str]:
    return dict(enumerate(imagenet_labels()))
