"""Key-renaming rules from the original (mit-han-lab) and timm layouts to ours.

Both layouts are parsed into (stage, op, rest): `op` 0 is the stage's downsampling block (the stem conv for
stage 0) and `op` j > 0 is its block j - 1. Block internals then get our readable names. Task heads add
their own rules on top (see `original.py`).
"""

from __future__ import annotations

import re

# Inner module names: original/timm -> ours. Applied in order to the remainder of a block key.
_INNER_RENAMES: tuple[tuple[str, str], ...] = (
    (r"^main\.", ""),
    (r"^context_module\.main\.", "attention."),
    (r"^local_module\.main\.", "local."),
    (r"(^|\.)inverted_conv\.", r"\1expand_conv."),
    (r"(^|\.)depth_conv\.", r"\1depthwise_conv."),
    (r"(^|\.)point_conv\.", r"\1pointwise_conv."),
    (r"(^|\.)aggreg\.(\d+)\.0\.", r"\1aggregations.\2.depthwise."),
    (r"(^|\.)aggreg\.(\d+)\.1\.", r"\1aggregations.\2.pointwise."),
)

_ORIGINAL_STEM = re.compile(r"^input_stem\.op_list\.(\d+)\.(.*)$")
_ORIGINAL_STAGE = re.compile(r"^stages\.(\d+)\.op_list\.(\d+)\.(.*)$")
_TIMM_STEM_CONV = re.compile(r"^stem\.in_conv\.(.*)$")
_TIMM_STEM_BLOCK = re.compile(r"^stem\.res(\d+)\.(.*)$")
_TIMM_STAGE = re.compile(r"^stages\.(\d+)\.blocks\.(\d+)\.(.*)$")


def _block_key(stage: int, op: int, rest: str) -> str:
    for pattern, replacement in _INNER_RENAMES:
        rest = re.sub(pattern, replacement, rest)
    place = "downsample" if op == 0 else f"blocks.{op - 1}"
    return f"stages.{stage}.{place}.{rest}"


def original_backbone_key(key: str, has_input_stem: bool) -> str | None:
    """Rename an original backbone key (without its `backbone.` prefix) to an encoder key.

    The B-series keeps the stem in `input_stem` and numbers the other stages from 0; the L/XL series
    store the stem as `stages.0`. `has_input_stem` tells which layout the checkpoint uses.
    """
    if match := _ORIGINAL_STEM.match(key):
        return _block_key(0, int(match[1]), match[2])
    if match := _ORIGINAL_STAGE.match(key):
        return _block_key(int(match[1]) + int(has_input_stem), int(match[2]), match[3])
    return None


def timm_backbone_key(key: str) -> str | None:
    """Rename a timm `efficientvit_mit` key (stem + stages) to an encoder key."""
    if match := _TIMM_STEM_CONV.match(key):
        return _block_key(0, 0, match[1])
    if match := _TIMM_STEM_BLOCK.match(key):
        return _block_key(0, int(match[1]) + 1, match[2])
    if match := _TIMM_STAGE.match(key):
        return _block_key(int(match[1]) + 1, int(match[2]), match[3])
    return None


ORIGINAL_CLS_HEAD = {
    "head.op_list.0.": "head.conv.",
    "head.op_list.2.linear.": "head.fc.",
    "head.op_list.2.norm.": "head.norm.",
    "head.op_list.3.linear.": "head.classifier.",
}
TIMM_CLS_HEAD = {
    "head.in_conv.": "head.conv.",
    "head.classifier.0.": "head.fc.",
    "head.classifier.1.": "head.norm.",
    "head.classifier.4.": "head.classifier.",
}


def rename_prefix(key: str, table: dict[str, str]) -> str | None:
    for old, new in table.items():
        if key.startswith(old):
            return new + key[len(old) :]
    return None
