"""EfficientViT super-resolution configuration and its named presets.

This module owns `EfficientViTSRConfig` (model type `efficientvit_sr`) and `SR_PRESETS`, the presets of the
two settings of the EfficientViT paper (arXiv 2205.14756): lightweight SR (BSD100 evaluation, x2/x3/x4) and
high-resolution face SR (FFHQ, x4). The original authors published results but no SR code; the architecture
follows the paper's description (see `modeling_efficientvit_sr.py`). The token-mixer fields of its EfficientViT blocks
are `EfficientViTConfig`'s (`TokenMixerFieldsMixin`). It imports only `transformers` and a sibling file, so a
folder written by `save_pretrained` can carry it for `trust_remote_code=True`.
"""

from __future__ import annotations

from typing import Any

try:  # transformers >= 5
    from transformers import PreTrainedConfig
except ImportError:  # transformers 4.57 (the Optimum ONNX exporter pins it)
    from transformers import PretrainedConfig as PreTrainedConfig

from .configuration_efficientvit import ACTIVATIONS, PresetsMixin, TokenMixerFieldsMixin, _as_list

UPSCALES = (2, 3, 4)
SR_NORM_TYPES = ("none", "layernorm")
UPSAMPLERS = ("pixelshuffledirect", "pixelshuffle")
# Mean RGB of DIV2K, subtracted before the body as EDSR and SwinIR do (the global bicubic residual carries
# the absolute intensities, the body only sees centred values).
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)

_LIGHT = {
    "hidden_size": 64,
    "num_blocks": 8,
    "attention_head_dim": 16,
    "attention_scales": [5],
    "expand_ratio": 4,
    "upsampler": "pixelshuffledirect",
}
# Presets are data: keyword sets of `EfficientViTSRConfig`.
SR_PRESETS: dict[str, dict[str, Any]] = {
    # Lightweight SR (the BSD100 setting): one-step pixel-shuffle upsampler, as lightweight SwinIR/Swin2SR.
    "sr-light-x2": {**_LIGHT, "upscale": 2},
    "sr-light-x3": {**_LIGHT, "upscale": 3},
    "sr-light-x4": {**_LIGHT, "upscale": 4},
    # High-resolution face SR (the FFHQ setting): wider and deeper, a conv + pixel-shuffle upsampler.
    "sr-ffhq-x4": {
        "hidden_size": 96,
        "num_blocks": 16,
        "attention_head_dim": 32,
        "attention_scales": [5],
        "expand_ratio": 4,
        "upsampler": "pixelshuffle",
        "upsampler_hidden_size": 64,
        "upscale": 4,
    },
}


class EfficientViTSRConfig(TokenMixerFieldsMixin, PresetsMixin, PreTrainedConfig):
    r"""
    Configuration of an EfficientViT super-resolution network: a 3x3 conv stem, `num_blocks` EfficientViT
    blocks (multi-scale ReLU linear attention + MBConv FFN with a depthwise conv) at the input resolution, a
    3x3 conv with a long skip from the stem, a pixel-shuffle upsampler, and a global residual: the output is
    the bicubic upsampling of the input plus the network's prediction.

    Inputs and outputs are RGB in [0, 1]. Use `EfficientViTSRConfig.from_preset("sr-light-x2")` for the
    presets (`sr-light-x2`, `sr-light-x3`, `sr-light-x4`, `sr-ffhq-x4`) or pass the fields below.

    Normalisation: the body has no norm by default (`norm_type="none"`, every conv has a bias). EDSR showed
    that BatchNorm hurts SR: it normalises away the absolute intensity range the output must reproduce, and
    its batch statistics differ between small training crops and large test images. `"layernorm"` puts a
    channel LayerNorm (per pixel, no batch statistics) where the released EfficientViT models have BatchNorm.

    Args:
        upscale (`int`, *optional*, defaults to 2):
            Upscaling factor: 2, 3 or 4.
        num_channels (`int`, *optional*, defaults to 3):
            Channels of the input and output images.
        hidden_size (`int`, *optional*, defaults to 64):
            Width of the stem, the EfficientViT blocks and the conv after them.
        num_blocks (`int`, *optional*, defaults to 8):
            Number of EfficientViT blocks, all at the input resolution.
        token_mixer (`str`, *optional*, defaults to `"lite_mla"`):
            The token mixer of the EfficientViT blocks: by default LiteMLA with `hidden_size //
            attention_head_dim` heads of 16 channels and one 5x5 aggregation scale. It and its fields
            (`attention_head_dim`, `attention_heads_ratio`, `attention_scales`, `attention_eps`, `hyena_*`,
            `retention_decay_exponents`) are documented once, in `TokenMixerFieldsMixin`.
        expand_ratio (`float`, *optional*, defaults to 4):
            Expansion ratio of the FFN (MBConv: 1x1 expand, 3x3 depthwise, 1x1 project).
        hidden_act (`str`, *optional*, defaults to `"gelu"`):
            Activation of the FFN and the upsampler: `relu`, `relu6`, `hardswish`, `silu`, `gelu`, `gelu_tanh`.
            The exact GELU is the default: PyTorch's CPU kernel for it is about 4x faster than the tanh
            approximation (which the L/XL backbones use), and both are the same function to within 1e-3.
        norm_type (`str`, *optional*, defaults to `"none"`):
            `"none"` (convs with biases, no norm) or `"layernorm"` (channel LayerNorm after the attention
            projection and the FFN's last conv).
        norm_eps (`float`, *optional*, defaults to 1e-5):
            Epsilon of the LayerNorms (unused with `norm_type="none"`).
        upsampler (`str`, *optional*, defaults to `"pixelshuffledirect"`):
            `"pixelshuffledirect"`: one 3x3 conv to `num_channels * upscale**2` channels and a pixel shuffle
            (lightweight SR). `"pixelshuffle"`: 3x3 conv to `upsampler_hidden_size` (act), conv + pixel
            shuffle steps (x2 twice for x4, x3 once for x3), then a 3x3 conv to `num_channels`.
        upsampler_hidden_size (`int`, *optional*, defaults to 64):
            Width of the `"pixelshuffle"` upsampler.
        img_range (`float`, *optional*, defaults to 1.0):
            The body sees `(pixels - image_mean) * img_range` and its prediction is divided by `img_range`
            before the bicubic image is added (SwinIR's convention; 1.0 keeps [0, 1] units).
        image_mean (`list[float]`, *optional*, defaults to the DIV2K RGB mean):
            Subtracted from the input before the body, one value per channel.
        drop_path_rate (`float`, *optional*, defaults to 0.0):
            Stochastic depth of the blocks, growing linearly with depth (training only).
        initializer_range (`float`, *optional*, defaults to 0.02):
            Std of the truncated normal used to initialise conv weights. The upsampler's last conv starts at
            zero, so a freshly initialised model returns the bicubic upsampling exactly.
    """

    model_type = "efficientvit_sr"
    preset_family = "EfficientViT-SR"
    presets = SR_PRESETS

    def __init__(
        self,
        upscale: int = 2,
        num_channels: int = 3,
        hidden_size: int = 64,
        num_blocks: int = 8,
        expand_ratio: float = 4,
        hidden_act: str = "gelu",
        norm_type: str = "none",
        norm_eps: float = 1e-5,
        upsampler: str = "pixelshuffledirect",
        upsampler_hidden_size: int = 64,
        img_range: float = 1.0,
        image_mean: list[float] | tuple[float, ...] | None = None,
        drop_path_rate: float = 0.0,
        initializer_range: float = 0.02,
        **kwargs: Any,
    ) -> None:
        self._init_token_mixer_fields(kwargs)
        super().__init__(**kwargs)
        self.upscale = upscale
        self.num_channels = num_channels
        self.hidden_size = hidden_size
        self.num_blocks = num_blocks
        self.expand_ratio = expand_ratio
        self.hidden_act = hidden_act
        self.norm_type = norm_type
        self.norm_eps = norm_eps
        self.upsampler = upsampler
        self.upsampler_hidden_size = upsampler_hidden_size
        self.img_range = img_range
        if image_mean is None:
            image_mean = DIV2K_RGB_MEAN if num_channels == 3 else (0.5,) * num_channels
        self.image_mean = [float(m) for m in _as_list(image_mean)]
        self.drop_path_rate = drop_path_rate
        self.initializer_range = initializer_range
        self._validate()

    def _validate(self) -> None:
        def positive_int(name: str) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")

        if self.upscale not in UPSCALES or isinstance(self.upscale, bool):
            raise ValueError(f"`upscale` must be one of {UPSCALES}, got {self.upscale!r}.")
        for name in ("num_channels", "hidden_size", "num_blocks", "upsampler_hidden_size"):
            positive_int(name)
        self._validate_token_mixer_fields({"`hidden_size`": self.hidden_size})
        if not self.expand_ratio > 0:
            raise ValueError(f"`expand_ratio` must be positive, got {self.expand_ratio}.")
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"Unknown activation {self.hidden_act!r}; expected one of {ACTIVATIONS}.")
        if self.norm_type not in SR_NORM_TYPES:
            raise ValueError(
                f"`norm_type` must be one of {SR_NORM_TYPES}, got {self.norm_type!r} (BatchNorm is not offered: "
                f"its batch statistics hurt super-resolution)."
            )
        if self.upsampler not in UPSAMPLERS:
            raise ValueError(f"`upsampler` must be one of {UPSAMPLERS}, got {self.upsampler!r}.")
        if not self.img_range > 0:
            raise ValueError(f"`img_range` must be positive, got {self.img_range}.")
        if len(self.image_mean) != self.num_channels:
            raise ValueError(
                f"`image_mean` has {len(self.image_mean)} values for {self.num_channels} channels."
            )
        if not 0.0 <= self.drop_path_rate < 1.0:
            raise ValueError(f"`drop_path_rate` must be in [0, 1), got {self.drop_path_rate}.")

    @property
    def total_stride(self) -> int:
        """The body runs at the input resolution: any input of at least 1x1 pixels works."""
        return 1

    @property
    def block_norm_type(self) -> str | None:
        """`norm_type` as the shared blocks take it (`None` for no norm)."""
        return None if self.norm_type == "none" else self.norm_type

    @property
    def custom_pipelines(self) -> dict[str, dict]:
        """The pipelines a saved folder ships as code (`{"image-super-resolution": {...}}`).

        Tasks already registered in this process (by `import evit_hf`) are left out, so that
        `pipeline("image-super-resolution", model=folder)` uses the installed pipeline instead of asking for
        `trust_remote_code`; where the task is unknown (evit-hf not installed) the folder's pipeline code is
        offered to `trust_remote_code=True`. The saved value is kept whole in `config.json`.
        """
        pipelines = self.__dict__.get("custom_pipelines") or {}
        try:
            from transformers.pipelines import PIPELINE_REGISTRY
        except ImportError:  # pragma: no cover - transformers always ships pipelines
            return pipelines
        return {task: info for task, info in pipelines.items() if task not in PIPELINE_REGISTRY.supported_tasks}

    @custom_pipelines.setter
    def custom_pipelines(self, value: dict[str, dict] | None) -> None:
        self.__dict__["custom_pipelines"] = dict(value or {})


__all__ = ["EfficientViTSRConfig", "SR_PRESETS"]
