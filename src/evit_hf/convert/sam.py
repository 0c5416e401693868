"""EfficientViT-SAM checkpoints (mit-han-lab `efficientvit_sam_*.pt`) -> `EfficientViTSamModel`.

The original state dict has three parts:
- `image_encoder.backbone.*`: an L/XL-layout EfficientViT backbone (stem at `stages.0`), renamed by the
  shared backbone rules;
- `image_encoder.neck.*` (a DAGBlock: `input_ops.{i}.op_list.0`, `middle.op_list.{i}.main`,
  `output_ops.0.op_list.0`) and `image_encoder.norm.*`;
- `prompt_encoder.*` / `mask_decoder.*` in Meta's segment-anything layout, renamed to the names of
  transformers' SAM modules. The prompt encoder's Gaussian matrix is stored once; it is tied to the
  model's `shared_image_embedding` (as in transformers' `SamModel`), which the loader fills from it.
Registers the variants `sam-l0`, `sam-l1`, `sam-l2`, `sam-xl0` and `sam-xl1`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from ..models.efficientvit.configuration_efficientvit_sam import SAM_PRESETS, EfficientViTSamConfig
from ..models.efficientvit.modeling_efficientvit_sam import EfficientViTSamModel
from .original import Variant, register_variant
from .rules import original_backbone_key

# Meta segment-anything -> transformers SAM, applied in order (first match wins) to full keys.
_META_TO_HF: tuple[tuple[str, str], ...] = (
    (
        r"^prompt_encoder\.pe_layer\.positional_encoding_gaussian_matrix$",
        "prompt_encoder.shared_embedding.positional_embedding",
    ),
    (r"^prompt_encoder\.point_embeddings\.(\d+)\.", r"prompt_encoder.point_embed.\1."),
    (r"^prompt_encoder\.mask_downscaling\.0\.", "prompt_encoder.mask_embed.conv1."),
    (r"^prompt_encoder\.mask_downscaling\.1\.", "prompt_encoder.mask_embed.layer_norm1."),
    (r"^prompt_encoder\.mask_downscaling\.3\.", "prompt_encoder.mask_embed.conv2."),
    (r"^prompt_encoder\.mask_downscaling\.4\.", "prompt_encoder.mask_embed.layer_norm2."),
    (r"^prompt_encoder\.mask_downscaling\.6\.", "prompt_encoder.mask_embed.conv3."),
    (r"^prompt_encoder\.(no_mask_embed|not_a_point_embed)\.", r"prompt_encoder.\1."),
    (
        r"^mask_decoder\.transformer\.layers\.(\d+)\.norm(\d)\.",
        r"mask_decoder.transformer.layers.\1.layer_norm\2.",
    ),
    (r"^mask_decoder\.transformer\.norm_final_attn\.", "mask_decoder.transformer.layer_norm_final_attn."),
    (r"^mask_decoder\.transformer\.", "mask_decoder.transformer."),
    (r"^mask_decoder\.output_upscaling\.0\.", "mask_decoder.upscale_conv1."),
    (r"^mask_decoder\.output_upscaling\.1\.", "mask_decoder.upscale_layer_norm."),
    (r"^mask_decoder\.output_upscaling\.3\.", "mask_decoder.upscale_conv2."),
    (r"^mask_decoder\.(iou_token|mask_tokens)\.", r"mask_decoder.\1."),
)
# Meta's MLP (`layers.0..n-1`) -> transformers' SamFeedForward (`proj_in`, `layers.0..n-3`, `proj_out`).
_META_MLP = re.compile(
    r"^(mask_decoder\.(?:output_hypernetworks_mlps\.\d+|iou_prediction_head))\.layers\.(\d+)\.(.*)$"
)

_NECK_RULES: tuple[tuple[str, str], ...] = (
    (r"^input_ops\.(\d+)\.op_list\.0\.", r"lateral_convs.\1."),
    (r"^middle\.op_list\.(\d+)\.main\.spatial_conv\.", r"blocks.\1.spatial_conv."),
    (r"^middle\.op_list\.(\d+)\.main\.point_conv\.", r"blocks.\1.pointwise_conv."),
    (r"^output_ops\.0\.op_list\.0\.conv\.", "proj."),
)


def _substitute(key: str, rules: tuple[tuple[str, str], ...]) -> str | None:
    for pattern, replacement in rules:
        new_key, count = re.subn(pattern, replacement, key)
        if count:
            return new_key
    return None


def _mlp_depth(prefix: str, state_dict: Mapping[str, torch.Tensor]) -> int:
    pattern = re.compile(re.escape(prefix) + r"\.layers\.(\d+)\.")
    return 1 + max(int(m[1]) for k in state_dict if (m := pattern.match(k)))


def meta_sam_key(key: str, state_dict: Mapping[str, torch.Tensor]) -> str | None:
    """Rename a Meta segment-anything `prompt_encoder.*` / `mask_decoder.*` key to transformers' SAM name."""
    if match := _META_MLP.match(key):
        prefix, index, rest = match[1], int(match[2]), match[3]
        depth = _mlp_depth(prefix, state_dict)
        if index == 0:
            return f"{prefix}.proj_in.{rest}"
        if index == depth - 1:
            return f"{prefix}.proj_out.{rest}"
        return f"{prefix}.layers.{index - 1}.{rest}"
    return _substitute(key, _META_TO_HF)


def original_sam_key(key: str, state_dict: Mapping[str, torch.Tensor]) -> str | None:
    """Rename a key of an original EfficientViT-SAM checkpoint to an `EfficientViTSamModel` key."""
    if key.startswith("image_encoder.backbone."):
        renamed = original_backbone_key(key.removeprefix("image_encoder.backbone."), has_input_stem=False)
        return None if renamed is None else "vision_encoder.backbone." + renamed
    if key.startswith("image_encoder.neck."):
        renamed = _substitute(key.removeprefix("image_encoder.neck."), _NECK_RULES)
        return None if renamed is None else "vision_encoder.neck." + renamed
    if key.startswith("image_encoder.norm."):
        return "vision_encoder.layer_norm." + key.removeprefix("image_encoder.norm.")
    return meta_sam_key(key, state_dict)


def build_sam_model(preset: str) -> EfficientViTSamModel:
    """A freshly initialised model of a released variant (the converter loads the weights into it)."""
    return EfficientViTSamModel(EfficientViTSamConfig.from_preset(preset))


def _sam_processor(preset: str):
    from ..models.efficientvit.image_processing_efficientvit_sam import EfficientViTSamImageProcessor

    return EfficientViTSamImageProcessor.for_config(EfficientViTSamConfig.from_preset(preset))


for _name in SAM_PRESETS:
    register_variant(
        Variant(
            name=_name,
            build_model=lambda p=_name: build_sam_model(p),
            rename=original_sam_key,
            description=f"EfficientViT-{_name.upper()} (segment anything)",
            build_processor=lambda p=_name: _sam_processor(p),
        )
    )
