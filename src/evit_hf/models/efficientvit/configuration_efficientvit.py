"""EfficientViT configuration, the fields every EfficientViT block reads, and the named presets.

This module owns `EfficientViTConfig` (backbone, classification and segmentation heads share it, like
SegFormer's config), `PRESETS` / `SEGMENTATION_PRESETS` (the configuration data of the original checkpoints),
`TokenMixerFieldsMixin` (the token-mixer fields, defined once for every config whose model has EfficientViT
blocks: this one and `EfficientViTSRConfig`) and `PresetsMixin` (`from_preset` / `preset_names` of each config
family). It imports only `transformers`, so a folder written by `save_pretrained` can carry it for
`trust_remote_code=True`.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

try:  # transformers >= 5
    from transformers import PreTrainedConfig
except ImportError:  # transformers 4.57 (the Optimum ONNX exporter pins it)
    from transformers import PretrainedConfig as PreTrainedConfig

try:
    from transformers.backbone_utils import BackboneConfigMixin
except ImportError:
    from transformers.utils.backbone_utils import BackboneConfigMixin


BLOCK_TYPES = ("ds", "res", "mb", "fmb", "att")
ACTIVATIONS = ("relu", "relu6", "hardswish", "silu", "gelu", "gelu_tanh")
# Token mixers of the EfficientViT block (`modeling_efficientvit_mixers.py` builds each by name).
TOKEN_MIXERS = ("lite_mla", "softmax", "hyena", "retention")
# The EfficientViT block's attention and token-mixer fields with their defaults (`TokenMixerFieldsMixin`).
TOKEN_MIXER_DEFAULTS: dict[str, Any] = {
    "token_mixer": "lite_mla",
    "attention_head_dim": 16,
    "attention_heads_ratio": 1.0,
    "attention_scales": [5],
    "attention_eps": 1e-15,
    "hyena_order": 2,
    "hyena_filter_hidden": 32,
    "hyena_filter_frequencies": 8,
    "hyena_filter_reach": [4.0, 256.0],
    "retention_decay_exponents": [2.0, 6.0],
}


def backbone_stage_names(num_stages: int) -> list[str]:
    """transformers' backbone stage names: the stem (the first, stride-2 stage), then `stage1` ... `stageN`."""
    return ["stem"] + [f"stage{i}" for i in range(1, num_stages)]


def renamed_stages(names: list[str] | tuple[str, ...] | None) -> list[str] | None:
    """Stage names with the stem's former name `stage0` (configs saved before the backbone names) as `stem`."""
    return None if names is None else ["stem" if name == "stage0" else name for name in names]


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


# How each token-mixer field is stored (lists stay lists in config.json).
_TOKEN_MIXER_TYPES = {
    "attention_scales": lambda v: [int(s) for s in _as_list(v)],
    "hyena_order": int,
    "hyena_filter_hidden": int,
    "hyena_filter_frequencies": int,
    "hyena_filter_reach": lambda v: [float(r) for r in _as_list(v)],
    "retention_decay_exponents": lambda v: [float(e) for e in _as_list(v)],
}


class TokenMixerFieldsMixin:
    r"""The fields of the EfficientViT block's token mixer, for every config whose model has EfficientViT blocks.

    A config takes them as keyword arguments (`_init_token_mixer_fields` pops them before
    `PreTrainedConfig.__init__`); a field a saved config lacks gets its default (SR configs saved before the
    field existed load with LiteMLA).

    Token-mixer fields:
        token_mixer (`str`, *optional*, defaults to `"lite_mla"`):
            Global token mixer of every EfficientViT block: `"lite_mla"` (the original multi-scale ReLU linear
            attention), `"softmax"` (quadratic multi-head softmax attention over all pixels, the baseline the
            paper compares against), `"hyena"` (2-D gated long convolution computed with FFTs) or `"retention"`
            (2-D retention with a per-head Manhattan-distance decay). Each is a drop-in (B, C, H, W) module.
        attention_head_dim (`int`, *optional*, defaults to 16):
            Channels per head of the attention (`lite_mla`, `softmax` and `retention`); `hyena` mixes
            `heads * attention_head_dim` channels, headless.
        attention_heads_ratio (`float`, *optional*, defaults to 1.0):
            Heads = `int(channels // attention_head_dim * attention_heads_ratio)`.
        attention_scales (`list[int]`, *optional*, defaults to `[5]`):
            Odd kernel sizes of the multi-scale token aggregation (one extra set of q/k/v each; `lite_mla` only).
        attention_eps (`float`, *optional*, defaults to 1e-15):
            Added to the attention denominator; the attention always runs in fp32, where it is not 0 (`lite_mla`).
        hyena_order (`int`, *optional*, defaults to 2):
            `hyena`: number of gated long convolutions (the Hyena recurrence depth N; N + 1 input projections).
        hyena_filter_hidden (`int`, *optional*, defaults to 32):
            `hyena`: width of the MLP that generates the implicit long filters from relative positions.
        hyena_filter_frequencies (`int`, *optional*, defaults to 8):
            `hyena`: sine/cosine features per axis fed to that MLP (periods 4, 8, ..., 2**(frequencies + 1) pixels).
        hyena_filter_reach (`list[float]`, *optional*, defaults to `[4.0, 256.0]`):
            `hyena`: distances (feature-map pixels) at which the filter window decays to 1% of its centre, for
            the fastest and the slowest decaying channel (log-spaced between, as Hyena's exponential modulation).
        retention_decay_exponents (`list[float]`, *optional*, defaults to `[2.0, 6.0]`):
            `retention`: head `h` of `n` decays as `gamma_h ** (|dy| + |dx|)` with
            `gamma_h = 1 - 2 ** -(a + (b - a) * h / n)` for `[a, b]` (RMT's setting: gamma from 0.75 towards 0.98).
    """

    def _init_token_mixer_fields(self, kwargs: dict[str, Any]) -> None:
        """Take the token-mixer fields out of `kwargs` (defaults for the missing ones) and set them."""
        for name, default in TOKEN_MIXER_DEFAULTS.items():
            value = kwargs.pop(name, copy.deepcopy(default))
            convert = _TOKEN_MIXER_TYPES.get(name)
            setattr(self, name, convert(value) if convert else value)

    def _validate_token_mixer_fields(self, widths: dict[str, int]) -> None:
        """Clear errors for the token-mixer fields; `widths` names the channels of every EfficientViT block."""
        if self.token_mixer not in TOKEN_MIXERS:
            raise ValueError(f"Unknown token_mixer {self.token_mixer!r}; expected one of {', '.join(TOKEN_MIXERS)}.")
        head_dim = self.attention_head_dim
        if isinstance(head_dim, bool) or not isinstance(head_dim, int) or head_dim < 1:
            raise ValueError(f"`attention_head_dim` must be a positive integer, got {head_dim!r}.")
        for where, channels in widths.items():
            if int(channels // head_dim * self.attention_heads_ratio) < 1:
                raise ValueError(
                    f"{where} ({channels} channels) gives no attention head of {head_dim} channels (with "
                    f"attention_heads_ratio {self.attention_heads_ratio}); lower `attention_head_dim`."
                )
        if any(s < 1 or s % 2 == 0 for s in self.attention_scales):
            raise ValueError(f"`attention_scales` must be odd positive kernel sizes, got {self.attention_scales}.")
        for name in ("hyena_order", "hyena_filter_hidden", "hyena_filter_frequencies"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be at least 1, got {getattr(self, name)}.")
        reach = self.hyena_filter_reach
        if len(reach) != 2 or not 0 < reach[0] <= reach[1]:
            raise ValueError(f"`hyena_filter_reach` must be two distances 0 < fastest <= slowest, got {reach}.")
        exponents = self.retention_decay_exponents
        if len(exponents) != 2 or not 0 < exponents[0] <= exponents[1]:
            raise ValueError(
                f"`retention_decay_exponents` must be two exponents 0 < first <= last (gamma = 1 - 2**-e), got "
                f"{exponents}."
            )


class PresetsMixin:
    """`from_preset(name, **overrides)` and `preset_names()` for a config family whose presets are data.

    A family sets `preset_family` (the name its errors use) and `presets` (name -> keyword arguments), or
    overrides `preset_names` / `preset_fields` where a preset is built from others."""

    preset_family = "EfficientViT"
    presets: ClassVar[dict[str, dict[str, Any]]] = {}  # name -> keyword arguments

    @classmethod
    def preset_names(cls) -> list[str]:
        return sorted(cls.presets)

    @classmethod
    def preset_fields(cls, name: str) -> dict[str, Any]:
        """The keyword arguments of preset `name` (a known name)."""
        return copy.deepcopy(cls.presets[name])

    @classmethod
    def from_preset(cls, name: str, **overrides: Any):
        """The configuration of preset `name`, with field overrides."""
        if name not in cls.preset_names():
            raise ValueError(
                f"Unknown {cls.preset_family} preset {name!r}. Known presets: {', '.join(cls.preset_names())}."
            )
        return cls(**{**cls.preset_fields(name), **overrides})


_B_SERIES = {
    "block_types": ["ds", "mb", "mb", "att", "att"],
    "expand_ratios": [1, 4, 4, 4, 4],
    "downsample_expand_ratios": [1, 4, 4, 4, 4],
    "fewer_norm": [False, False, False, True, True],
    "attention_scales": [5],
    "hidden_act": "hardswish",
    "norm_eps": 1e-5,
}
_L_SERIES = {
    "block_types": ["res", "fmb", "fmb", "mb", "att"],
    "expand_ratios": [1, 4, 4, 4, 6],
    "downsample_expand_ratios": [1, 16, 16, 16, 24],
    "fewer_norm": [False, False, False, True, True],
    "attention_head_dim": 32,
    "attention_scales": [5],
    "hidden_act": "gelu_tanh",
    "norm_eps": 1e-7,
}
_XL_SERIES = {
    "widths": [32, 64, 128, 256, 512, 1024],
    "block_types": ["res", "fmb", "fmb", "fmb", "att", "att"],
    "expand_ratios": [1, 4, 4, 4, 4, 6],
    "downsample_expand_ratios": [1, 16, 16, 16, 16, 24],
    "fewer_norm": [False, False, False, False, True, True],
    "attention_head_dim": 32,
    "attention_scales": [3],
    "hidden_act": "gelu_tanh",
    "norm_eps": 1e-6,
}

# Depths count the stride-1 blocks that follow each stage's downsampling block. The original B-series
# `depth_list` counts the downsampling MBConv too in stages 1-2 (B1: 1,2,3,3,4 -> 1,1,2,3,4 here).
PRESETS: dict[str, dict[str, Any]] = {
    "b0": {**_B_SERIES, "widths": [8, 16, 32, 64, 128], "depths": [1, 1, 1, 2, 2],
           "attention_head_dim": 16, "head_widths": [1024, 1280]},
    "b1": {**_B_SERIES, "widths": [16, 32, 64, 128, 256], "depths": [1, 1, 2, 3, 4],
           "attention_head_dim": 16, "head_widths": [1536, 1600]},
    "b2": {**_B_SERIES, "widths": [24, 48, 96, 192, 384], "depths": [1, 2, 3, 4, 6],
           "attention_head_dim": 32, "head_widths": [2304, 2560]},
    "b3": {**_B_SERIES, "widths": [32, 64, 128, 256, 512], "depths": [1, 3, 5, 6, 9],
           "attention_head_dim": 32, "head_widths": [2304, 2560]},
    "l0": {**_L_SERIES, "widths": [32, 64, 128, 256, 512], "depths": [1, 1, 1, 4, 4],
           "head_widths": [3072, 3200]},
    "l1": {**_L_SERIES, "widths": [32, 64, 128, 256, 512], "depths": [1, 1, 1, 6, 6],
           "head_widths": [3072, 3200]},
    "l2": {**_L_SERIES, "widths": [32, 64, 128, 256, 512], "depths": [1, 2, 2, 8, 8],
           "head_widths": [3072, 3200]},
    "l3": {**_L_SERIES, "widths": [64, 128, 256, 512, 1024], "depths": [1, 2, 2, 8, 8],
           "head_widths": [6144, 6400]},
    "xl0": {**_XL_SERIES, "depths": [0, 1, 1, 2, 3, 3], "head_widths": [6144, 6400]},
    "xl1": {**_XL_SERIES, "depths": [1, 2, 2, 4, 6, 6], "head_widths": [6144, 6400]},
}

# Segmentation presets: a backbone preset plus the original head. Heads read stages 4, 3, 2 (strides 32,
# 16, 8) and predict at stride 8. Label names: the 19 Cityscapes trainIds and the 150 ADE20K classes
# (SceneParse150 order, "other" = 0 removed), as the original evaluation scripts number them.
CITYSCAPES_LABELS: tuple[str, ...] = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)
ADE20K_LABELS: tuple[str, ...] = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
    "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
    "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence",
    "desk", "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
    "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand",
    "path", "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove",
    "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus",
    "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
    "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle",
    "buffet", "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything",
    "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven",
    "ball", "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake",
    "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray",
    "ashcan", "fan", "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator",
    "glass", "clock", "flag",
)
_CITYSCAPES_NAMES = {"id2label": dict(enumerate(CITYSCAPES_LABELS))}
_ADE20K_NAMES = {"id2label": dict(enumerate(ADE20K_LABELS))}
_CITYSCAPES_B = {"segmentation_head_block": "mb", "segmentation_head_expand_ratio": 4,
                 "segmentation_final_expand": 4, **_CITYSCAPES_NAMES}
_ADE20K_B = {"segmentation_head_block": "mb", "segmentation_head_expand_ratio": 4,
             "segmentation_final_expand": None, **_ADE20K_NAMES}
SEGMENTATION_PRESETS: dict[str, dict[str, Any]] = {
    "seg-b0-cityscapes": {"backbone": "b0", "segmentation_head_width": 32, "segmentation_head_depth": 1,
                          **_CITYSCAPES_B},
    "seg-b1-cityscapes": {"backbone": "b1", "segmentation_head_width": 64, "segmentation_head_depth": 3,
                          **_CITYSCAPES_B},
    "seg-b2-cityscapes": {"backbone": "b2", "segmentation_head_width": 96, "segmentation_head_depth": 3,
                          **_CITYSCAPES_B},
    "seg-b3-cityscapes": {"backbone": "b3", "segmentation_head_width": 128, "segmentation_head_depth": 3,
                          **_CITYSCAPES_B},
    "seg-l1-cityscapes": {"backbone": "l1", "segmentation_head_width": 256, "segmentation_head_depth": 3,
                          "segmentation_head_block": "fmb", "segmentation_head_expand_ratio": 1,
                          "segmentation_final_expand": None, **_CITYSCAPES_NAMES},
    "seg-l2-cityscapes": {"backbone": "l2", "segmentation_head_width": 256, "segmentation_head_depth": 5,
                          "segmentation_head_block": "fmb", "segmentation_head_expand_ratio": 1,
                          "segmentation_final_expand": None, **_CITYSCAPES_NAMES},
    "seg-b1-ade20k": {"backbone": "b1", "segmentation_head_width": 64, "segmentation_head_depth": 3,
                      **_ADE20K_B},
    "seg-b2-ade20k": {"backbone": "b2", "segmentation_head_width": 96, "segmentation_head_depth": 3,
                      **_ADE20K_B},
    "seg-b3-ade20k": {"backbone": "b3", "segmentation_head_width": 128, "segmentation_head_depth": 3,
                      **_ADE20K_B},
    "seg-l1-ade20k": {"backbone": "l1", "segmentation_head_width": 128, "segmentation_head_depth": 3,
                      "segmentation_head_block": "fmb", "segmentation_head_expand_ratio": 4,
                      "segmentation_final_expand": 8, **_ADE20K_NAMES},
    "seg-l2-ade20k": {"backbone": "l2", "segmentation_head_width": 128, "segmentation_head_depth": 3,
                      "segmentation_head_block": "fmb", "segmentation_head_expand_ratio": 4,
                      "segmentation_final_expand": 8, **_ADE20K_NAMES},
}


class EfficientViTConfig(TokenMixerFieldsMixin, PresetsMixin, BackboneConfigMixin, PreTrainedConfig):
    r"""
    Configuration of an EfficientViT network (arXiv 2205.14756): a stride-2 stem followed by stages that
    each start with a stride-2 downsampling block, convolutional stages (DSConv / ResBlock / MBConv /
    FusedMBConv) at high resolution and EfficientViT blocks (multi-scale ReLU linear attention + MBConv)
    at low resolution. The same configuration drives the backbone, the classifier and the segmenter.

    Use `EfficientViTConfig.from_preset("b1")` for the original variants (`b0`-`b3`, `l0`-`l3`, `xl0`,
    `xl1`, and `seg-<model>-<cityscapes|ade20k>`), or pass the fields below for a free-form network.

    Args:
        num_channels (`int`, *optional*, defaults to 3):
            Channels of the input image.
        widths (`list[int]`):
            Output channels of every stage; the first is the stem (stride 2), stage `i` has stride `2**(i+1)`.
        depths (`list[int]`):
            Number of stride-1 blocks in each stage, after the stage's downsampling block (the stem
            convolution for stage 0).
        block_types (`list[str]`):
            Block type of each stage: `"ds"` (depthwise-separable conv), `"res"` (two 3x3 convs), `"mb"`
            (MBConv), `"fmb"` (FusedMBConv) or `"att"` (EfficientViT block). Stage 0 must be `"ds"` or `"res"`.
        expand_ratios (`list[float]`):
            Expansion ratio of the stride-1 blocks of each stage (the MBConv of an attention block too).
        downsample_expand_ratios (`list[float]`):
            Expansion ratio of the downsampling block that starts each stage (ignored for stage 0). The
            downsampling block is an MBConv in attention stages, else a block of the stage's type.
        fewer_norm (`list[bool]`):
            Per stage: convolutions inside MBConv/FusedMBConv/ResBlock use a bias and no BatchNorm, except
            for the last one (the original's "fewer_norm").
        token_mixer (`str`, *optional*, defaults to `"lite_mla"`):
            The EfficientViT blocks' token mixer. It and its fields (`attention_head_dim`,
            `attention_heads_ratio`, `attention_scales`, `attention_eps`, `hyena_*`, `retention_decay_exponents`)
            are documented once, in `TokenMixerFieldsMixin`.
        hidden_act (`str`, *optional*, defaults to `"hardswish"`):
            One of `relu`, `relu6`, `hardswish`, `silu`, `gelu` (exact) and `gelu_tanh` (the original's gelu).
        norm_eps (`float`, *optional*, defaults to 1e-5):
            Epsilon of every BatchNorm and LayerNorm (the original sets 1e-5 for B, 1e-7 for L, 1e-6 for SAM).
        head_widths (`list[int]`, *optional*, defaults to `[1536, 1600]`):
            Classification head: 1x1 conv to `head_widths[0]`, average pool, linear + LayerNorm to
            `head_widths[1]`, then the classifier.
        classifier_dropout (`float`, *optional*, defaults to 0.0):
            Dropout before the classifier.
        drop_path_rate (`float`, *optional*, defaults to 0.0):
            Stochastic depth on residual blocks, growing linearly with depth (training only).
        segmentation_in_features (`list[str]`, *optional*, defaults to the last three stages):
            Stages the segmentation head reads (names as `out_features`), from the coarsest to the finest.
        segmentation_head_width (`int`, *optional*, defaults to 64):
            Channels of the segmentation head.
        segmentation_head_depth (`int`, *optional*, defaults to 3):
            Residual blocks in the middle of the segmentation head.
        segmentation_head_block (`str`, *optional*, defaults to `"mb"`):
            `"mb"` (MBConv) or `"fmb"` (FusedMBConv) for those blocks.
        segmentation_head_expand_ratio (`float`, *optional*, defaults to 4):
            Their expansion ratio.
        segmentation_final_expand (`float`, *optional*):
            If set, a 1x1 conv widens the head by this factor before the classifier.
        semantic_loss_ignore_index (`int`, *optional*, defaults to 255):
            Label ignored by the segmentation loss.
        image_size (`int`, *optional*, defaults to 224):
            Default input resolution (used for MACs in reports and by the demo).
        initializer_range (`float`, *optional*, defaults to 0.02):
            Std of the truncated normal used to initialise conv and linear weights.
        optimize_inference (`bool`, *optional*, defaults to `True`):
            Install the inference fast path (`modeling_efficientvit_fastpath.py`): in eval mode BatchNorm folded
            into the conv before it, channels-last feature maps on CPU, the fastest CPU conv kernels, in-place
            activations and residual adds when no gradient is recorded. Outputs agree with the plain graph to
            fp32 rounding; training mode always runs the plain graph; `state_dict` is the same either way.
            `model.set_inference_optimizations(False)` switches it off at run time.
        out_features (`list[str]`, *optional*):
            Backbone outputs by stage name, transformers' backbone names: `"stem"` (stride 2), `"stage1"` ...
            `"stageN"` (stride `2**(N+1)`); defaults to the last stage. `"stage0"`, the stem's name in configs
            saved before, is read as `"stem"`.
        out_indices (`list[int]`, *optional*):
            Backbone outputs by stage index.
    """

    model_type = "efficientvit"

    def __init__(
        self,
        num_channels: int = 3,
        widths: list[int] | tuple[int, ...] = (16, 32, 64, 128, 256),
        depths: list[int] | tuple[int, ...] = (1, 1, 2, 3, 4),
        block_types: list[str] | tuple[str, ...] = ("ds", "mb", "mb", "att", "att"),
        expand_ratios: list[float] | tuple[float, ...] = (1, 4, 4, 4, 4),
        downsample_expand_ratios: list[float] | tuple[float, ...] = (1, 4, 4, 4, 4),
        fewer_norm: list[bool] | tuple[bool, ...] = (False, False, False, True, True),
        hidden_act: str = "hardswish",
        norm_eps: float = 1e-5,
        head_widths: list[int] | tuple[int, ...] = (1536, 1600),
        classifier_dropout: float = 0.0,
        drop_path_rate: float = 0.0,
        segmentation_in_features: list[str] | tuple[str, ...] | None = None,
        segmentation_head_width: int = 64,
        segmentation_head_depth: int = 3,
        segmentation_head_block: str = "mb",
        segmentation_head_expand_ratio: float = 4,
        segmentation_final_expand: float | None = None,
        semantic_loss_ignore_index: int = 255,
        image_size: int = 224,
        initializer_range: float = 0.02,
        optimize_inference: bool = True,
        out_features: list[str] | None = None,
        out_indices: list[int] | None = None,
        **kwargs: Any,
    ) -> None:
        self._init_token_mixer_fields(kwargs)
        super().__init__(**kwargs)
        self.num_channels = num_channels
        self.widths = [int(w) for w in widths]
        self.depths = [int(d) for d in depths]
        self.block_types = list(block_types)
        self.expand_ratios = list(expand_ratios)
        self.downsample_expand_ratios = list(downsample_expand_ratios)
        self.fewer_norm = [bool(f) for f in fewer_norm]
        self.hidden_act = hidden_act
        self.norm_eps = norm_eps
        self.head_widths = list(head_widths)
        self.classifier_dropout = classifier_dropout
        self.drop_path_rate = drop_path_rate
        num_stages = len(self.widths)
        self.stage_names = backbone_stage_names(num_stages)
        if segmentation_in_features is None:
            segmentation_in_features = self.stage_names[-1:-4:-1] if num_stages >= 3 else self.stage_names[::-1]
        self.segmentation_in_features = renamed_stages(segmentation_in_features)
        self.segmentation_head_width = segmentation_head_width
        self.segmentation_head_depth = segmentation_head_depth
        self.segmentation_head_block = segmentation_head_block
        self.segmentation_head_expand_ratio = segmentation_head_expand_ratio
        self.segmentation_final_expand = segmentation_final_expand
        self.semantic_loss_ignore_index = semantic_loss_ignore_index
        self.image_size = image_size
        self.initializer_range = initializer_range
        self.optimize_inference = bool(optimize_inference)
        self._validate()
        self._set_backbone_outputs(renamed_stages(out_features),
                                   list(out_indices) if out_indices is not None else None)

    def _set_backbone_outputs(self, out_features: list[str] | None, out_indices: list[int] | None) -> None:
        """Align `out_features` and `out_indices` (either may be None; both must name the same stages)."""
        if hasattr(BackboneConfigMixin, "set_output_features_output_indices"):  # transformers >= 5
            self.set_output_features_output_indices(out_features=out_features, out_indices=out_indices)
        else:  # transformers 4.57
            from transformers.utils.backbone_utils import get_aligned_output_features_output_indices

            self._out_features, self._out_indices = get_aligned_output_features_output_indices(
                out_features=out_features, out_indices=out_indices, stage_names=self.stage_names)

    @property
    def out_features(self) -> list[str]:
        return self._out_features

    @out_features.setter
    def out_features(self, out_features: list[str] | None) -> None:
        self._set_backbone_outputs(renamed_stages(out_features), None)

    def _validate(self) -> None:
        n = len(self.widths)
        per_stage = {
            "depths": self.depths,
            "block_types": self.block_types,
            "expand_ratios": self.expand_ratios,
            "downsample_expand_ratios": self.downsample_expand_ratios,
            "fewer_norm": self.fewer_norm,
        }
        for name, values in per_stage.items():
            if len(values) != n:
                raise ValueError(f"`{name}` has {len(values)} entries but `widths` defines {n} stages.")
        unknown = [b for b in self.block_types if b not in BLOCK_TYPES]
        if unknown:
            raise ValueError(f"Unknown block type(s) {unknown}; expected one of {BLOCK_TYPES}.")
        if self.block_types[0] not in ("ds", "res"):
            raise ValueError(f"Stage 0 (the stem) must use 'ds' or 'res' blocks, got {self.block_types[0]!r}.")
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"Unknown activation {self.hidden_act!r}; expected one of {ACTIVATIONS}.")
        attention_stages = [i for i, block in enumerate(self.block_types) if block == "att"]
        self._validate_token_mixer_fields({f"Stage {i}": self.widths[i] for i in attention_stages})
        if self.segmentation_head_block not in ("mb", "fmb"):
            raise ValueError(f"`segmentation_head_block` must be 'mb' or 'fmb', got {self.segmentation_head_block!r}.")

    @property
    def num_stages(self) -> int:
        return len(self.widths)

    @property
    def total_stride(self) -> int:
        """Downsampling factor of the last stage."""
        return 2 ** len(self.widths)

    @classmethod
    def preset_names(cls) -> list[str]:
        return sorted(PRESETS) + sorted(SEGMENTATION_PRESETS)

    @classmethod
    def preset_fields(cls, name: str) -> dict[str, Any]:
        """A backbone preset, or a segmentation preset merged onto its backbone's."""
        if name in SEGMENTATION_PRESETS:
            seg = copy.deepcopy(SEGMENTATION_PRESETS[name])
            return {**copy.deepcopy(PRESETS[seg.pop("backbone")]), **seg}
        return copy.deepcopy(PRESETS[name])


__all__ = [
    "EfficientViTConfig",
    "PRESETS",
    "SEGMENTATION_PRESETS",
    "TOKEN_MIXERS",
    "TOKEN_MIXER_DEFAULTS",
    "PresetsMixin",
    "TokenMixerFieldsMixin",
    "backbone_stage_names",
    "renamed_stages",
]
