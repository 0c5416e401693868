"""EfficientViT super-resolution: EfficientViT blocks at full resolution, a pixel-shuffle upsampler and a
global bicubic residual.

Owns `EfficientViTSRUpsampler`, `EfficientViTSRPreTrainedModel` and `EfficientViTForImageSuperResolution`.
The EfficientViT paper (arXiv 2205.14756) reports SR results but its authors released no SR code; this
follows the paper's description: a shallow conv stem, EfficientViT blocks (multi-scale ReLU linear
attention + MBConv FFN with a depthwise conv) at the input resolution, a pixel-shuffle upsampler, and a
global residual over the bicubic-upsampled input. The blocks are the shared `EfficientViTBlock`s (without
BatchNorm; see `EfficientViTSRConfig`); the model runs the plain graph (no inference fast path). Also owns
`tiled_upscale`, which bounds memory on large images (the pipeline and `evit-hf upscale` use it).
Imports only torch/transformers and sibling files, so it travels in `trust_remote_code` folders.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import ImageSuperResolutionOutput

from .configuration_efficientvit_sr import EfficientViTSRConfig
from .modeling_efficientvit import (
    EfficientViTBlock,
    EfficientViTFamilyMixin,
    check_pixel_values,
    model_output,
)
from .modeling_efficientvit_blocks import ConvNormAct, bicubic_upscale


class EfficientViTSRUpsampler(nn.Module):
    """Features (batch, hidden, H, W) -> image residual (batch, channels, H * upscale, W * upscale).

    `"pixelshuffledirect"`: `proj` (3x3 conv to channels * upscale**2) then one pixel shuffle.
    `"pixelshuffle"`: `conv_before` (3x3, act), `steps` of 3x3 conv + pixel shuffle (x2 per step for 2 and 4,
    one x3 step for 3), then `proj` (3x3 conv to channels). `proj` is the network's last layer.
    """

    def __init__(self, config: EfficientViTSRConfig) -> None:
        super().__init__()
        scale, channels = config.upscale, config.num_channels
        if config.upsampler == "pixelshuffledirect":
            self.conv_before = None
            self.steps = nn.ModuleList()
            self.proj = nn.Conv2d(config.hidden_size, channels * scale**2, 3, padding=1)
            self.shuffle = nn.PixelShuffle(scale)
        else:
            width = config.upsampler_hidden_size
            self.conv_before = ConvNormAct(config.hidden_size, width, 3, bias=True, use_norm=False,
                                           act=config.hidden_act)
            factors = [3] if scale == 3 else [2] * int(math.log2(scale))
            self.steps = nn.ModuleList(
                nn.Sequential(nn.Conv2d(width, width * f**2, 3, padding=1), nn.PixelShuffle(f)) for f in factors
            )
            self.proj = nn.Conv2d(width, channels, 3, padding=1)
            self.shuffle = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv_before is not None:
            x = self.conv_before(x)
        for step in self.steps:
            x = step(x)
        x = self.proj(x)
        return self.shuffle(x) if self.shuffle is not None else x


def super_resolution_loss(reconstruction: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance to the high-resolution `labels` (same shape as the reconstruction), in fp32."""
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"`labels` must be a torch.Tensor of high-resolution images, got {type(labels).__name__}.")
    if tuple(labels.shape) != tuple(reconstruction.shape):
        raise ValueError(
            f"`labels` must have the reconstruction's shape {tuple(reconstruction.shape)} (batch, channels, "
            f"height * upscale, width * upscale), got {tuple(labels.shape)}; crop the high-resolution images "
            f"to exactly upscale times the input size."
        )
    if not labels.is_floating_point():
        raise ValueError(f"`labels` must be floating point images in [0, 1], got {labels.dtype}.")
    return F.l1_loss(reconstruction.float(), labels.float())


class EfficientViTSRPreTrainedModel(EfficientViTFamilyMixin, PreTrainedModel):
    """Weight initialisation and loading glue of the EfficientViT super-resolution models."""

    hub_auto_map = {
        "AutoConfig": "configuration_efficientvit_sr.EfficientViTSRConfig",
        "AutoModel": "modeling_efficientvit_sr.EfficientViTForImageSuperResolution",
        "AutoModelForImageToImage": "modeling_efficientvit_sr.EfficientViTForImageSuperResolution",
    }
    # transformers v5 has no super-resolution pipeline ("image-to-image" was removed); saved folders carry ours.
    hub_custom_pipelines = {
        "image-super-resolution": {
            "impl": "pipeline_efficientvit_sr.SuperResolutionPipeline",
            "pt": ["AutoModelForImageToImage"],
            "type": "image",
        },
    }
    config_class = EfficientViTSRConfig
    base_model_prefix = "efficientvit_sr"
    _no_split_modules = ["EfficientViTBlock"]

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if getattr(module, "_evit_zero_init", False):
            # The last layer starts at zero: the untrained network returns the bicubic upsampling and
            # training learns the residual from there.
            nn.init.zeros_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


class EfficientViTForImageSuperResolution(EfficientViTSRPreTrainedModel):
    """EfficientViT super-resolution: `reconstruction` (batch, channels, H * upscale, W * upscale) in [0, 1].

    Modules: `stem` (3x3 conv), `blocks` (EfficientViT blocks at the input resolution), `body_conv` (3x3 conv,
    plus a long skip from the stem), `upsampler` (`EfficientViTSRUpsampler`). The output is the bicubic
    upsampling of the input (fp32) plus the upsampler's prediction; it is not clamped (the image processor
    clamps when it converts to images).
    """

    def __init__(self, config: EfficientViTSRConfig) -> None:
        super().__init__(config)
        width, norm = config.hidden_size, config.block_norm_type
        self.stem = ConvNormAct(config.num_channels, width, 3, bias=True, use_norm=False)
        rates = [config.drop_path_rate * i / max(config.num_blocks - 1, 1) for i in range(config.num_blocks)]
        self.blocks = nn.ModuleList(
            EfficientViTBlock(width, config, config.expand_ratio, drop_path=rate, norm_type=norm) for rate in rates
        )
        self.body_conv = ConvNormAct(width, width, 3, bias=True, use_norm=False)
        self.upsampler = EfficientViTSRUpsampler(config)
        self.upsampler.proj._evit_zero_init = True
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None,
                output_hidden_states: bool | None = None, return_dict: bool | None = None,
                **kwargs) -> ImageSuperResolutionOutput | tuple:
        """
        Args:
            pixel_values: (batch, channels, height, width) low-resolution RGB in [0, 1], any height and width
                >= 1 (the attention is global and every conv keeps the size). Extra keys an image processor
                returns (e.g. `original_sizes`) are ignored.
            labels: (batch, channels, height * upscale, width * upscale) high-resolution images in [0, 1];
                gives the L1 `loss`.
            output_hidden_states: also return the stem's features and every block's output.

        Returns:
            `reconstruction` (batch, channels, height * upscale, width * upscale) in the dtype of
            `pixel_values`, `loss` when `labels` is given, and optionally `hidden_states`.
        """
        config = self.config
        check_pixel_values(pixel_values, config)  # config.total_stride is 1: any height and width >= 1
        mean = torch.tensor(config.image_mean, dtype=pixel_values.dtype, device=pixel_values.device)
        features = self.stem((pixel_values - mean.view(1, -1, 1, 1)) * config.img_range)
        hidden_states = [features]
        x = features
        for block in self.blocks:
            x = block(x)
            hidden_states.append(x)
        residual = self.upsampler(self.body_conv(x) + features)
        base = bicubic_upscale(pixel_values, config.upscale)
        reconstruction = (base + residual.float() / config.img_range).to(pixel_values.dtype)
        loss = super_resolution_loss(reconstruction, labels) if labels is not None else None
        wanted = config.output_hidden_states if output_hidden_states is None else output_hidden_states
        output = ImageSuperResolutionOutput(loss=loss, reconstruction=reconstruction,
                                            hidden_states=tuple(hidden_states) if wanted else None)
        return model_output(output, return_dict, config)

# Tiling defaults of the pipeline and the CLI (input pixels): 512 keeps a tile's activations of the light
# presets around 400 MB (100 MB at 256) and runs images up to 512x512 in one pass: in 256-pixel tiles with 16
# pixels of overlap a 512x512 image took 9 tiles, 2.25x the pixels and 2.1x the time of one pass (docs/benchmarks.md,
# pipeline table). 16 pixels of overlap hide the seams (see `tiled_upscale`).
DEFAULT_TILE_SIZE = 512
DEFAULT_TILE_OVERLAP = 16


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Tile origins covering [0, length): every `stride`, the last one flush with the end."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def _edge_ramp(size: int, interior_start: bool, interior_end: bool, margin: int, blend: int) -> torch.Tensor:
    """1D blending weights of one tile side (HR pixels): 0 on the `margin` pixels next to an edge shared with
    a neighbour tile, rising linearly over the next `blend` pixels, 1 elsewhere and at image borders."""
    weights = torch.ones(size)
    if blend <= 0:
        return weights
    distance = torch.arange(size, dtype=torch.float32) + 0.5
    ramp = ((distance - margin) / blend).clamp(0, 1)
    if interior_start:
        weights = torch.minimum(weights, ramp)
    if interior_end:
        weights = torch.minimum(weights, ramp.flip(0))
    return weights


def check_tile_arguments(tile_size: int, tile_overlap: int) -> None:
    """Clear `ValueError`s for tile settings `tiled_upscale` cannot use."""
    if not isinstance(tile_size, int) or isinstance(tile_size, bool) or tile_size < 1:
        raise ValueError(f"`tile_size` must be a positive integer, got {tile_size!r}.")
    if not isinstance(tile_overlap, int) or isinstance(tile_overlap, bool) or tile_overlap < 0:
        raise ValueError(f"`tile_overlap` must be a non-negative integer, got {tile_overlap!r}.")
    if 2 * tile_overlap >= tile_size:
        raise ValueError(f"`tile_overlap` ({tile_overlap}) must be less than half of `tile_size` ({tile_size}).")


def tiled_upscale(
    upscale_fn,
    pixel_values: torch.Tensor,
    scale: int,
    tile_size: int = DEFAULT_TILE_SIZE,
    tile_overlap: int = DEFAULT_TILE_OVERLAP,
) -> torch.Tensor:
    """Upscale `pixel_values` (batch, C, H, W) tile by tile; returns (batch, C, H * scale, W * scale) in fp32.

    `upscale_fn` maps a (batch, C, h, w) crop to its (batch, C, h * scale, w * scale) upscaling (e.g.
    `lambda x: model(x).reconstruction`). Tiles are `tile_size` pixels square (smaller images are one tile)
    and overlap by at least `tile_overlap` pixels. Where tiles overlap, each one is ignored on the quarter of
    the overlap next to its edge (where zero padding changes its output) and the rest is cross-faded
    linearly, so a model whose receptive field is within a quarter of the overlap gives exactly the untiled
    result, and seams stay invisible otherwise. Only one tile is in the model at a time, which bounds the
    memory by `tile_size` whatever the image size; the global linear attention sees one tile at a time, so
    results differ slightly from the untiled ones.
    """
    check_tile_arguments(tile_size, tile_overlap)
    batch, channels, height, width = pixel_values.shape
    stride = tile_size - tile_overlap
    margin = tile_overlap // 4
    blend = (tile_overlap - 2 * margin) * scale
    output = torch.zeros(batch, channels, height * scale, width * scale, device=pixel_values.device)
    total = torch.zeros(1, 1, height * scale, width * scale, device=pixel_values.device)
    rows, cols = tile_starts(height, tile_size, stride), tile_starts(width, tile_size, stride)
    for top in rows:
        tile_h = min(tile_size, height)
        ramp_y = _edge_ramp(tile_h * scale, top > 0, top + tile_h < height, margin * scale, blend)
        for left in cols:
            tile_w = min(tile_size, width)
            ramp_x = _edge_ramp(tile_w * scale, left > 0, left + tile_w < width, margin * scale, blend)
            tile = pixel_values[:, :, top : top + tile_h, left : left + tile_w]
            upscaled = upscale_fn(tile).float()
            expected = (batch, channels, tile_h * scale, tile_w * scale)
            if tuple(upscaled.shape) != expected:
                raise ValueError(f"`upscale_fn` gave shape {tuple(upscaled.shape)} for a tile, expected {expected}.")
            weight = (ramp_y[:, None] * ramp_x[None, :]).to(output.device)
            region = (slice(None), slice(None), slice(top * scale, (top + tile_h) * scale),
                      slice(left * scale, (left + tile_w) * scale))
            output[region] += upscaled * weight
            total[region] += weight
    return output / total


__all__ = [
    "EfficientViTSRPreTrainedModel",
    "EfficientViTForImageSuperResolution",
    "EfficientViTSRUpsampler",
    "DEFAULT_TILE_OVERLAP",
    "DEFAULT_TILE_SIZE",
    "check_tile_arguments",
    "tiled_upscale",
]
