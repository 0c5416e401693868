"""Original EfficientViT-Seg checkpoints -> `EfficientViTForSemanticSegmentation`.

Registers the 11 released segmentation variants (`seg-<b0..b3,l1,l2>-cityscapes`, `seg-<b1..b3,l1,l2>-ade20k`)
with `register_variant` and renames the original `SegHead` keys (a DAGBlock) to our `decode_head`:

- `head.input_ops.{0,1}.op_list.0.{conv,norm}.*` (stride 32/16: conv, then a param-free upsample)
  -> `decode_head.projections.{0,1}.*`
- `head.input_ops.2.{conv,norm}.*` (stride 8: a bare ConvLayer) -> `decode_head.projections.2.*`
- `head.middle.op_list.{i}.main.*` -> `decode_head.blocks.{i}.*` (inner names as in the backbone)
- `head.output_ops.0.op_list.0.*` when there is a final expand conv -> `decode_head.expand.*`
- the last `head.output_ops.0.op_list.{0|1}.conv.*` -> `decode_head.classifier.*`

OpSequential drops None entries, so the classifier is `op_list.1` with a final expand conv, else `op_list.0`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from ..models.efficientvit import EfficientViTConfig
from ..models.efficientvit.modeling_efficientvit_seg import EfficientViTForSemanticSegmentation
from .original import Variant, register_variant
from .rules import _INNER_RENAMES, original_backbone_key

_INPUT_OP = re.compile(r"^head\.input_ops\.(\d+)\.(?:op_list\.0\.)?((?:conv|norm)\..*)$")
_MIDDLE = re.compile(r"^head\.middle\.op_list\.(\d+)\.(.*)$")
_OUTPUT = re.compile(r"^head\.output_ops\.0\.op_list\.(\d+)\.(.*)$")

SEGMENTATION_VARIANTS: tuple[str, ...] = (
    "seg-b0-cityscapes",
    "seg-b1-cityscapes",
    "seg-b2-cityscapes",
    "seg-b3-cityscapes",
    "seg-l1-cityscapes",
    "seg-l2-cityscapes",
    "seg-b1-ade20k",
    "seg-b2-ade20k",
    "seg-b3-ade20k",
    "seg-l1-ade20k",
    "seg-l2-ade20k",
)


def _inner(rest: str) -> str:
    for pattern, replacement in _INNER_RENAMES:
        rest = re.sub(pattern, replacement, rest)
    return rest


def original_segmentation_head_key(key: str, has_final_expand: bool) -> str | None:
    """Rename one original `head.*` key of a SegHead to our `decode_head.*` key (None if unknown)."""
    if match := _INPUT_OP.match(key):
        return f"decode_head.projections.{match[1]}.{match[2]}"
    if match := _MIDDLE.match(key):
        return f"decode_head.blocks.{match[1]}.{_inner(match[2])}"
    if match := _OUTPUT.match(key):
        index, rest = int(match[1]), match[2]
        classifier_index = 1 if has_final_expand else 0
        if index == classifier_index and rest.startswith("conv."):
            return "decode_head.classifier." + rest.removeprefix("conv.")
        if has_final_expand and index == 0:
            return "decode_head.expand." + rest
    return None


def _original_segmenter_key(key: str, state_dict: Mapping[str, torch.Tensor]) -> str | None:
    if key.startswith("backbone."):
        has_stem = any(k.startswith("backbone.input_stem.") for k in state_dict)
        renamed = original_backbone_key(key.removeprefix("backbone."), has_stem)
        return None if renamed is None else "efficientvit.encoder." + renamed
    has_final_expand = any(k.startswith("head.output_ops.0.op_list.1.") for k in state_dict)
    return original_segmentation_head_key(key, has_final_expand)


def _segmentation_processor(variant: str):
    from ..models.efficientvit.image_processing_efficientvit_seg import EfficientViTSegImageProcessor

    return EfficientViTSegImageProcessor.for_dataset(variant)


for _name in SEGMENTATION_VARIANTS:
    _dataset = "Cityscapes" if _name.endswith("cityscapes") else "ADE20K"
    register_variant(
        Variant(
            name=_name,
            build_model=lambda n=_name: EfficientViTForSemanticSegmentation(
                EfficientViTConfig.from_preset(n)
            ),
            rename=_original_segmenter_key,
            description=f"EfficientViT-Seg-{_name.split('-')[1].upper()} {_dataset} semantic segmentation",
            build_processor=lambda n=_name: _segmentation_processor(n),
        )
    )

__all__ = ["SEGMENTATION_VARIANTS", "original_segmentation_head_key"]
