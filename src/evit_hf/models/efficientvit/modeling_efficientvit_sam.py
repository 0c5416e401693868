"""EfficientViT-SAM: an EfficientViT image encoder with SAM's prompt encoder and mask decoder.

Owns the SAM neck (`EfficientViTSamNeck`), the image encoder (`EfficientViTSamVisionEncoder`: backbone ->
neck -> LayerNorm, giving (batch, 256, 64, 64) embeddings) and `EfficientViTSamModel`, which reuses
transformers' `SamPromptEncoder`, `SamMaskDecoder` and `SamPositionalEmbedding` and has the interface of
transformers' `SamModel` (so `SamProcessor` and the `mask-generation` pipeline work, and so does code written
for `SamModel`: a call without prompts, `output_hidden_states`, `output_attentions`). The decoder's two-way
blocks are `EfficientViTSamTwoWayAttentionBlock`s, transformers' block as a unit of gradient checkpointing.
Imports only torch/transformers and sibling files, so it travels in `trust_remote_code` folders.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.models.sam.modeling_sam import (
    SamImageSegmentationOutput,
    SamLayerNorm,
    SamMaskDecoder,
    SamPositionalEmbedding,
    SamPromptEncoder,
    SamTwoWayAttentionBlock,
)

from .configuration_efficientvit import EfficientViTConfig
from .configuration_efficientvit_sam import EfficientViTSamConfig
from .modeling_efficientvit import (
    EfficientViTEncoder,
    EfficientViTFamilyMixin,
    InferenceOptimizationMixin,
    check_pixel_values,
    model_output,
)
from .modeling_efficientvit_blocks import ConvNormAct, FusedMBConv, capturing_graph, plain_layout, resize_bicubic


class EfficientViTSamNeck(nn.Module):
    """Fuses backbone stages into one map of image embeddings (the original's `SamNeck`).

    Each stage in `config.neck_in_features` goes through a 1x1 conv + BatchNorm (`lateral_convs`) and is
    resized to `neck_output_size` pixels; the maps are summed, refined by `neck_depth` residual FusedMBConv
    blocks (`blocks`) and projected by a 1x1 conv with bias (`proj`).
    """

    def __init__(self, config: EfficientViTConfig) -> None:
        super().__init__()
        hidden, eps = config.neck_hidden_size, config.norm_eps
        self.stage_indices = [config.stage_names.index(name) for name in config.neck_in_features]
        self.output_size = (config.neck_output_size, config.neck_output_size)
        self.lateral_convs = nn.ModuleList(
            ConvNormAct(config.widths[i], hidden, 1, use_norm=True, act=None, norm_eps=eps)
            for i in self.stage_indices
        )
        self.blocks = nn.ModuleList(
            FusedMBConv(
                hidden,
                hidden,
                1,
                config.neck_expand_ratio,
                fewer_norm=False,
                act=config.neck_hidden_act,
                norm_eps=eps,
                residual=True,
            )
            for _ in range(config.neck_depth)
        )
        self.proj = nn.Conv2d(hidden, hidden, 1, bias=True)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        maps = [
            resize_bicubic(conv(features[i]), self.output_size)
            for conv, i in zip(self.lateral_convs, self.stage_indices)
        ]
        # The original sums as f0 + (f1 + (f2 + ...)); keep that order for bit-level parity.
        fused = maps[-1]
        for feature in reversed(maps[:-1]):
            fused = feature + fused.to(feature.dtype)
        for block in self.blocks:
            fused = block(fused)
        return self.proj(fused)


class EfficientViTSamVisionEncoder(nn.Module):
    """The image encoder: EfficientViT `backbone` -> `neck` -> channel-wise `layer_norm` (LayerNorm2d)."""

    def __init__(self, config: EfficientViTConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = EfficientViTEncoder(config)
        self.neck = EfficientViTSamNeck(config)
        self.layer_norm = SamLayerNorm(
            config.neck_hidden_size, eps=config.norm_eps, data_format="channels_first"
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        check_pixel_values(pixel_values, self.config)
        return plain_layout(self.layer_norm(self.neck(self.backbone(pixel_values))))


class EfficientViTSamTwoWayAttentionBlock(GradientCheckpointingLayer, SamTwoWayAttentionBlock):
    """transformers' two-way attention block of SAM's mask decoder (same parameters and computation), as a unit of
    gradient checkpointing. The decoder calls its blocks with keyword arguments, which reentrant checkpointing (the
    default of transformers 4.57) would not differentiate, so they are passed on positionally."""

    def __call__(self, queries: torch.Tensor, keys: torch.Tensor, query_point_embedding: torch.Tensor,
                 key_point_embedding: torch.Tensor, attention_similarity: torch.Tensor | None = None, **kwargs):
        return super().__call__(queries, keys, query_point_embedding, key_point_embedding, attention_similarity,
                                **kwargs)


@contextlib.contextmanager
def recorded_outputs(modules: list[nn.Module], select: Callable) -> Iterator[list]:
    """The outputs of `modules` (`select(output)` of each call) while the context is open, in call order (as
    transformers' `OutputRecorder` collects `SamModel`'s)."""
    records: list = []
    handles = [module.register_forward_hook(lambda _module, _args, output: records.append(select(output)))
               for module in modules]
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()


class EfficientViTSamPreTrainedModel(InferenceOptimizationMixin, EfficientViTFamilyMixin, PreTrainedModel):
    """Weight initialisation and loading glue of EfficientViT-SAM."""

    hub_auto_map = {
        "AutoConfig": "configuration_efficientvit_sam.EfficientViTSamConfig",
        "AutoModel": "modeling_efficientvit_sam.EfficientViTSamModel",
        "AutoModelForMaskGeneration": "modeling_efficientvit_sam.EfficientViTSamModel",
    }
    config_class = EfficientViTSamConfig
    base_model_prefix = "efficientvit_sam"
    _no_split_modules = ["EfficientViTStage", "EfficientViTSamTwoWayAttentionBlock"]
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, SamPositionalEmbedding):
            nn.init.normal_(module.positional_embedding, std=module.scale)
        else:
            super()._init_weights(module)

    def inference_config(self) -> EfficientViTConfig:
        return self.config.vision_config  # the image encoder's switch


class EfficientViTSamModel(EfficientViTSamPreTrainedModel):
    """EfficientViT-SAM with the interface of transformers' `SamModel`.

    `vision_encoder` (EfficientViT) makes the image embeddings; `shared_image_embedding` (SAM's random-Fourier
    positional encoding, its matrix tied to the prompt encoder's), `prompt_encoder` and `mask_decoder` are
    transformers' SAM modules. Point and box prompts are in the `config.prompt_image_size` (1024) frame for
    every variant, also when the encoder input is 512 pixels; masks come out at 4x the embedding size (256).
    """

    _tied_weights_keys = {
        "prompt_encoder.shared_embedding.positional_embedding": "shared_image_embedding.positional_embedding"
    }

    def __init__(self, config: EfficientViTSamConfig) -> None:
        super().__init__(config)
        hidden = config.prompt_encoder_config.hidden_size
        # Meta's random-Fourier features: a (2, hidden/2) Gaussian matrix with scale 1.
        # transformers 5 reads `scale`; 4.57 derives it as hidden_size // 2 (both give Meta's 1.0).
        positional = SimpleNamespace(scale=1.0, hidden_size=2, num_pos_feats=hidden // 2)
        self.shared_image_embedding = SamPositionalEmbedding(positional)
        self.vision_encoder = EfficientViTSamVisionEncoder(config.vision_config)
        self.prompt_encoder = SamPromptEncoder(
            SimpleNamespace(vision_config=positional, prompt_encoder_config=config.prompt_encoder_config)
        )
        # SamMaskDecoder is not a PreTrainedModel; hand it the attention implementation (as SamModel does).
        config.mask_decoder_config._attn_implementation = config._attn_implementation
        self.mask_decoder = SamMaskDecoder(config.mask_decoder_config)
        transformer = self.mask_decoder.transformer
        transformer.layers = nn.ModuleList(  # as SamTwoWayTransformer builds them
            EfficientViTSamTwoWayAttentionBlock(config.mask_decoder_config, skip_first_layer_pe=i == 0)
            for i in range(len(transformer.layers))
        )
        # transformers builds the final token-to-image LayerNorm with torch's default eps (1e-5); the original
        # sets every mask-decoder norm to `layer_norm_eps` (1e-6).
        transformer.layer_norm_final_attn.eps = config.mask_decoder_config.layer_norm_eps
        self.post_init()  # ties the positional matrices

    def _tie_weights(self) -> None:
        """One positional matrix serves the image grid and the prompts: the prompt encoder's is the same parameter
        as `shared_image_embedding`'s. transformers 5 ties `_tied_weights_keys` itself (after loading, not while
        it builds the model on the meta device), 4.57 calls this hook. The modules stay two, as in `SamModel`, so
        that a checkpoint without the matrix loads as `SamModel`'s does."""
        self.prompt_encoder.shared_embedding.positional_embedding = self.shared_image_embedding.positional_embedding

    def get_image_wide_positional_embeddings(self) -> torch.Tensor:
        """Positional encoding of every embedding pixel centre, (1, hidden, size, size)."""
        size = self.config.prompt_encoder_config.image_embedding_size
        weight = self.shared_image_embedding.positional_embedding
        grid = torch.ones((size, size), device=weight.device, dtype=weight.dtype)
        y_embed = (grid.cumsum(dim=0) - 0.5) / size
        x_embed = (grid.cumsum(dim=1) - 0.5) / size
        positional_embedding = self.shared_image_embedding(torch.stack([x_embed, y_embed], dim=-1))
        return positional_embedding.permute(2, 0, 1).unsqueeze(0)

    @torch.no_grad()
    def get_image_embeddings(self, pixel_values: torch.Tensor, **kwargs) -> torch.Tensor:
        """Image embeddings (batch, 256, 64, 64) of preprocessed images at the encoder resolution."""
        return self.vision_encoder(pixel_values)

    @torch.no_grad()
    def get_prompt_embeddings(
        self,
        input_points: torch.Tensor | None = None,
        input_labels: torch.Tensor | None = None,
        input_boxes: torch.Tensor | None = None,
        input_masks: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Sparse (points, boxes) and dense (mask) prompt embeddings."""
        return self.prompt_encoder(
            input_points=input_points,
            input_labels=input_labels,
            input_boxes=input_boxes,
            input_masks=input_masks,
        )

    def _check_prompts(
        self,
        batch_size: int,
        input_points: torch.Tensor | None,
        input_labels: torch.Tensor | None,
        input_boxes: torch.Tensor | None,
        input_masks: torch.Tensor | None,
    ) -> None:
        if capturing_graph():
            return
        if input_labels is not None and input_points is None:
            raise ValueError("`input_labels` were given without `input_points`.")
        side = 4 * self.config.prompt_encoder_config.image_embedding_size
        shapes = {  # name: (tensor, expected rank, expected trailing shape, layout for the error)
            "input_points": (input_points, 4, (2,), "(batch_size, point_batch_size, points_per_mask, 2)"),
            "input_boxes": (input_boxes, 3, (4,), "(batch_size, num_boxes, 4) as (x0, y0, x1, y1)"),
            "input_masks": (input_masks, 4, (1, side, side), f"(batch_size, 1, {side}, {side}) low-res mask logits"),
        }
        for name, (tensor, rank, trailing, layout) in shapes.items():
            if tensor is None:
                continue
            if tensor.ndim != rank or tuple(tensor.shape[rank - len(trailing):]) != trailing:
                raise ValueError(f"`{name}` must be {layout}, got shape {tuple(tensor.shape)}.")
            if tensor.shape[0] != batch_size:
                raise ValueError(f"`{name}` has batch size {tensor.shape[0]} but there are {batch_size} images; "
                                 f"pass one entry per image (several prompts per image go in dim 1).")
        if input_labels is not None and tuple(input_labels.shape) != tuple(input_points.shape[:3]):
            raise ValueError(f"`input_labels` must have shape {tuple(input_points.shape[:3])} to match "
                             f"`input_points`, got {tuple(input_labels.shape)}.")
        if input_points is not None and input_boxes is not None and input_points.shape[1] != input_boxes.shape[1]:
            raise ValueError(f"Give as many boxes as point sets per image: {input_boxes.shape[1]} boxes vs "
                             f"{input_points.shape[1]} point sets.")

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        input_points: torch.Tensor | None = None,
        input_labels: torch.Tensor | None = None,
        input_boxes: torch.Tensor | None = None,
        input_masks: torch.Tensor | None = None,
        image_embeddings: torch.Tensor | None = None,
        multimask_output: bool = True,
        attention_similarity: torch.Tensor | None = None,
        target_embedding: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SamImageSegmentationOutput | tuple:
        """
        Args:
            pixel_values: (batch, 3, S, S) preprocessed images at the encoder resolution S (512 or 1024).
            input_points: (batch, point_batch_size, points_per_mask, 2) as (x, y) in the 1024 prompt frame.
            input_labels: (batch, point_batch_size, points_per_mask): 1 foreground, 0 background, -1 not a
                point, -10 padding; all ones when omitted.
            input_boxes: (batch, num_boxes, 4) as (x0, y0, x1, y1) in the 1024 prompt frame; one mask per box.
            input_masks: (batch, 1, 256, 256) low-res mask logits from an earlier prediction.
            image_embeddings: (batch, 256, 64, 64) from `get_image_embeddings`, instead of `pixel_values`.
            multimask_output: three masks per prompt (True) or the single best-guess mask (False).
            output_attentions: also return `mask_decoder_attentions`, the output of each two-way block's
                image-to-token attention (what `SamModel` returns). The EfficientViT encoder's linear attention
                forms no attention matrix: `vision_attentions` stays None.
            output_hidden_states: also return `vision_hidden_states`, the encoder's stage feature maps (stem,
                stage1 ... stageN); with `pixel_values` only.

        Without any prompt the model predicts from the image alone (one prompt set per image), as `SamModel`.

        Returns:
            `pred_masks` (batch, point_batch_size, num_masks, 256, 256) low-res mask logits and `iou_scores`
            (batch, point_batch_size, num_masks), and the optional outputs above.
        """
        config = self.config
        output_attentions = config.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = config.output_hidden_states if output_hidden_states is None else output_hidden_states
        if (pixel_values is None) == (image_embeddings is None):
            raise ValueError("Give exactly one of `pixel_values` and `image_embeddings`.")
        vision_hidden_states = None
        if pixel_values is not None:
            stages = self.vision_encoder.backbone.stages if output_hidden_states else []
            with recorded_outputs(list(stages), plain_layout) as features:
                image_embeddings = self.vision_encoder(pixel_values)
            vision_hidden_states = tuple(features) if output_hidden_states else None
        elif image_embeddings.ndim != 4:
            raise ValueError(
                f"`image_embeddings` must be (batch, channels, height, width), got shape "
                f"{tuple(image_embeddings.shape)}."
            )
        batch_size = image_embeddings.shape[0]
        self._check_prompts(batch_size, input_points, input_labels, input_boxes, input_masks)
        if input_points is not None and input_labels is None:
            input_labels = torch.ones_like(input_points[..., 0], dtype=torch.int)

        image_positional_embeddings = self.get_image_wide_positional_embeddings().repeat(batch_size, 1, 1, 1)
        sparse_embeddings, dense_embeddings = self.prompt_encoder(
            input_points=input_points,
            input_labels=input_labels,
            input_boxes=input_boxes,
            input_masks=input_masks,
        )
        if dense_embeddings.shape[0] != batch_size:  # masks only or no prompt: the prompt encoder assumes one image
            dense_embeddings = dense_embeddings.expand(batch_size, -1, -1, -1)
        blocks = self.mask_decoder.transformer.layers if output_attentions else []
        with recorded_outputs(list(blocks), lambda output: output[2]) as decoder_attentions:
            pred_masks, iou_scores = self.mask_decoder(
                image_embeddings=image_embeddings,
                image_positional_embeddings=image_positional_embeddings,
                sparse_prompt_embeddings=sparse_embeddings,
                dense_prompt_embeddings=dense_embeddings,
                multimask_output=multimask_output,
                attention_similarity=attention_similarity,
                target_embedding=target_embedding,
            )
        output = SamImageSegmentationOutput(
            iou_scores=iou_scores,
            pred_masks=pred_masks,
            vision_hidden_states=vision_hidden_states,
            mask_decoder_attentions=tuple(decoder_attentions) if output_attentions else None,
        )
        return model_output(output, return_dict, config)


__all__ = [
    "EfficientViTSamModel",
    "EfficientViTSamNeck",
    "EfficientViTSamPreTrainedModel",
    "EfficientViTSamTwoWayAttentionBlock",
    "EfficientViTSamVisionEncoder",
    "recorded_outputs",
]
