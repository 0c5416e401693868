"""EfficientViT semantic segmentation: the original SegHead on top of the EfficientViT backbone.

Owns `EfficientViTSegmentationHead` (the decode head) and `EfficientViTForSemanticSegmentation`. The head
projects the coarsest-to-finest backbone stages (stage4, stage3, stage2 for the released models) to a common
width, upsamples them bicubically to the finest (stride 8) map, sums them, mixes the sum with residual
MBConv/FusedMBConv blocks and predicts per-pixel logits at stride 8, as the original `SegHead` does.
Imports only torch/transformers and sibling files, so it travels in `trust_remote_code` folders.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import SemanticSegmenterOutput

from .configuration_efficientvit import EfficientViTConfig
from .modeling_efficientvit import (
    EfficientViTModel,
    EfficientViTPreTrainedModel,
    check_pixel_values,
    model_output,
    plain_hidden_states,
)
from .modeling_efficientvit_blocks import ConvNormAct, FusedMBConv, MBConv, plain_layout, resize_bicubic


def _stage_index(config: EfficientViTConfig, name: str) -> int:
    if name not in config.stage_names:
        raise ValueError(f"`segmentation_in_features` names an unknown stage {name!r}; the backbone has "
                         f"{config.stage_names}.")
    return config.stage_names.index(name)


class EfficientViTSegmentationHead(nn.Module):
    """The original SegHead (a DAG block with "add" merge), with readable names.

    - `projections[i]`: 1x1 conv + BatchNorm (no activation) of input stage
      `config.segmentation_in_features[i]` (coarsest first) to `segmentation_head_width` channels;
    - the projected maps are upsampled (bicubic, fp32) to the size of the finest one and summed;
    - `blocks`: `segmentation_head_depth` residual MBConv / FusedMBConv blocks (BatchNorm everywhere, no
      bias);
    - `expand`: optional 1x1 conv (BN, act) widening by `segmentation_final_expand`;
    - `classifier`: 1x1 conv with bias to `num_labels` logits (at the finest input's stride).
    """

    def __init__(self, config: EfficientViTConfig) -> None:
        super().__init__()
        width, act, eps = config.segmentation_head_width, config.hidden_act, config.norm_eps
        self.in_indices = [_stage_index(config, name) for name in config.segmentation_in_features]
        self.projections = nn.ModuleList(
            ConvNormAct(config.widths[i], width, 1, act=None, norm_eps=eps) for i in self.in_indices
        )
        block_cls = MBConv if config.segmentation_head_block == "mb" else FusedMBConv
        self.blocks = nn.ModuleList(
            block_cls(width, width, 1, config.segmentation_head_expand_ratio, fewer_norm=False, act=act,
                      norm_eps=eps, residual=True)
            for _ in range(config.segmentation_head_depth)
        )
        if config.segmentation_final_expand:
            expanded = round(width * config.segmentation_final_expand)
            self.expand = ConvNormAct(width, expanded, 1, act=act, norm_eps=eps)
        else:
            expanded, self.expand = width, None
        self.classifier = nn.Conv2d(expanded, config.num_labels, 1, bias=True)

    def forward(self, features: list[torch.Tensor] | tuple[torch.Tensor, ...]) -> torch.Tensor:
        """`features`: every backbone stage's map (stage0 ... stageN); returns logits at the finest stride."""
        inputs = [features[i] for i in self.in_indices]
        # Use the finest map's size (not scale factors) so odd feature sizes still line up.
        target = max((x.shape[-2:] for x in inputs), key=lambda s: s[0] * s[1])
        projected = [resize_bicubic(proj(x), target) for proj, x in zip(self.projections, inputs)]
        # The original's recursive "add" merge: f0 + (f1 + (f2 + ...)).
        x = projected[-1]
        for feature in reversed(projected[:-1]):
            x = feature + x
        for block in self.blocks:
            x = block(x)
        if self.expand is not None:
            x = self.expand(x)
        return self.classifier(x)


def semantic_segmentation_loss(
    logits: torch.Tensor, labels: torch.Tensor, config: EfficientViTConfig
) -> torch.Tensor:
    """Cross-entropy (ignoring `config.semantic_loss_ignore_index`) on logits bicubic-upsampled to label size.

    With a single label the loss is a binary cross-entropy on the ignore-masked pixels, as in SegFormer.
    """
    if labels.ndim != 3:
        raise ValueError(
            f"`labels` must be (batch, height, width) class indices, got shape {tuple(labels.shape)}."
        )
    if labels.shape[0] != logits.shape[0]:
        raise ValueError(f"`labels` has batch size {labels.shape[0]} but the logits have {logits.shape[0]}.")
    if labels.is_floating_point():
        raise ValueError(f"`labels` must be an integer tensor of class indices, got {labels.dtype}.")
    upsampled = resize_bicubic(logits, labels.shape[-2:]).float()
    ignore = config.semantic_loss_ignore_index
    if config.num_labels > 1:
        valid = labels[labels != ignore]
        if valid.numel() and (valid.min() < 0 or valid.max() >= config.num_labels):
            raise ValueError(
                f"Labels must lie in [0, {config.num_labels}) or equal the ignore index {ignore}, got values "
                f"in [{int(valid.min())}, {int(valid.max())}]."
            )
        return F.cross_entropy(upsampled, labels.long(), ignore_index=ignore)
    if config.num_labels == 1:
        valid_mask = (labels >= 0) & (labels != ignore)
        loss = F.binary_cross_entropy_with_logits(upsampled.squeeze(1), labels.float(), reduction="none")
        return (loss * valid_mask).sum() / valid_mask.sum().clamp_min(1)
    raise ValueError(f"Number of labels should be >= 1, got {config.num_labels}.")


class EfficientViTForSemanticSegmentation(EfficientViTPreTrainedModel):
    """EfficientViT with the original segmentation head: `logits` (batch, num_labels, H/8, W/8).

    The logits are not upsampled inside the model; `EfficientViTSegImageProcessor.post_process_semantic_
    segmentation` resizes them (bicubic) to the image size before the argmax, as the original evaluation does.
    """

    def __init__(self, config: EfficientViTConfig) -> None:
        super().__init__(config)
        self.efficientvit = EfficientViTModel(config)
        self.decode_head = EfficientViTSegmentationHead(config)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None,
                output_hidden_states: bool | None = None, return_dict: bool | None = None,
                **kwargs) -> SemanticSegmenterOutput | tuple:
        """
        Args:
            pixel_values: (batch, channels, height, width) normalised images; height and width must be
                multiples of the total stride (32 for B/L models).
            labels: (batch, height, width) class indices of any size; pixels equal to
                `config.semantic_loss_ignore_index` are ignored. The loss upsamples the logits to this size.
            output_hidden_states: also return every backbone stage's feature map.

        Returns:
            `logits` (batch, num_labels, height / 8, width / 8), `loss` when `labels` is given, and optionally
            `hidden_states`.
        """
        check_pixel_values(pixel_values, self.config, multiple=self.config.total_stride)
        features = self.efficientvit.encoder(pixel_values)  # in the encoder's layout, for the head's convs
        logits = plain_layout(self.decode_head(features))
        loss = semantic_segmentation_loss(logits, labels, self.config) if labels is not None else None
        hidden_states = plain_hidden_states(features, output_hidden_states, self.config)
        output = SemanticSegmenterOutput(loss=loss, logits=logits, hidden_states=hidden_states, attentions=None)
        return model_output(output, return_dict, self.config)


__all__ = ["EfficientViTSegmentationHead", "EfficientViTForSemanticSegmentation"]
