"""EfficientViT-SAM configuration: an EfficientViT image encoder with SAM's prompt encoder and mask decoder.

This module owns `EfficientViTSamConfig` (composite, like transformers' `SamConfig`) and `SAM_PRESETS`, the
configuration data of the five released EfficientViT-SAM checkpoints. The vision sub-config is an
`EfficientViTConfig` (a backbone preset) carrying the neck fields; the prompt encoder and mask decoder
sub-configs are transformers' own `SamPromptEncoderConfig` / `SamMaskDecoderConfig`. It imports only
`transformers` and sibling files, so it travels in `trust_remote_code` folders.
"""

from __future__ import annotations

import copy
from typing import Any

from transformers import SamMaskDecoderConfig, SamPromptEncoderConfig

try:  # transformers >= 5
    from transformers import PreTrainedConfig
except ImportError:  # transformers 4.57
    from transformers import PretrainedConfig as PreTrainedConfig

from .configuration_efficientvit import PRESETS, EfficientViTConfig, PresetsMixin, renamed_stages

# Every norm of the released EfficientViT-SAM models (BatchNorm, LayerNorm2d and the mask decoder's
# LayerNorms) uses this epsilon (the original model zoo calls `set_norm_eps(model, 1e-6)`).
SAM_NORM_EPS = 1e-6

# Neck fields stored on the vision config, with their defaults.
NECK_DEFAULTS: dict[str, Any] = {
    "neck_in_features": None,  # stages the neck reads, coarsest first; None = the last three stages
    "neck_hidden_size": 256,  # channels of the neck and of the image embeddings
    "neck_depth": 4,  # residual FusedMBConv blocks after the fusion
    "neck_expand_ratio": 1.0,  # their expansion ratio
    "neck_output_size": 64,  # side of the image embeddings; every input stage is resized to it
    "neck_hidden_act": "gelu_tanh",  # activation of the FusedMBConv blocks (the original's tanh GELU)
}

# Released variants: a backbone preset, the neck and the encoder input resolution (`image_size`). The
# prompt / mask frame is 1024 pixels for all of them, also for the L models whose encoder input is 512.
SAM_PRESETS: dict[str, dict[str, Any]] = {
    "sam-l0": {
        "backbone": "l0",
        "neck_in_features": ["stage4", "stage3", "stage2"],
        "neck_depth": 4,
        "neck_expand_ratio": 1,
        "image_size": 512,
    },
    "sam-l1": {
        "backbone": "l1",
        "neck_in_features": ["stage4", "stage3", "stage2"],
        "neck_depth": 8,
        "neck_expand_ratio": 1,
        "image_size": 512,
    },
    "sam-l2": {
        "backbone": "l2",
        "neck_in_features": ["stage4", "stage3", "stage2"],
        "neck_depth": 12,
        "neck_expand_ratio": 1,
        "image_size": 512,
    },
    "sam-xl0": {
        "backbone": "xl0",
        "neck_in_features": ["stage5", "stage4", "stage3"],
        "neck_depth": 6,
        "neck_expand_ratio": 4,
        "image_size": 1024,
    },
    "sam-xl1": {
        "backbone": "xl1",
        "neck_in_features": ["stage5", "stage4", "stage3"],
        "neck_depth": 12,
        "neck_expand_ratio": 4,
        "image_size": 1024,
    },
}


def sam_vision_config(backbone: str | None = None, **kwargs: Any) -> EfficientViTConfig:
    """An `EfficientViTConfig` for the SAM image encoder: a backbone preset (or free fields) plus the neck."""
    fields = dict(PRESETS[backbone]) if backbone is not None else {}
    fields.pop("head_widths", None)
    fields.update({"norm_eps": SAM_NORM_EPS, **NECK_DEFAULTS})
    fields.update(kwargs)
    config = EfficientViTConfig(**fields)
    _fill_neck_defaults(config)
    return config


def _fill_neck_defaults(config: EfficientViTConfig) -> None:
    for name, default in NECK_DEFAULTS.items():
        if getattr(config, name, None) is None:
            setattr(config, name, copy.deepcopy(default))
    if config.neck_in_features is None or not config.neck_in_features:
        config.neck_in_features = config.stage_names[-1:-4:-1]
    config.neck_in_features = renamed_stages(config.neck_in_features)
    unknown = [name for name in config.neck_in_features if name not in config.stage_names]
    if unknown:
        raise ValueError(
            f"`neck_in_features` names unknown stage(s) {unknown}; the backbone has {config.stage_names}."
        )
    if int(config.neck_depth) < 0 or int(config.neck_hidden_size) < 1 or int(config.neck_output_size) < 1:
        raise ValueError("`neck_depth` must be >= 0 and `neck_hidden_size` / `neck_output_size` >= 1.")


def _as_sub_config(value: Any, config_class: type, name: str, defaults: dict[str, Any]) -> Any:
    if value is None:
        return config_class(**defaults)
    if isinstance(value, config_class):
        return value
    if isinstance(value, dict):
        return config_class(**{**defaults, **value})
    raise ValueError(f"`{name}` must be a dict or a {config_class.__name__}, got {type(value).__name__}.")


class EfficientViTSamConfig(PresetsMixin, PreTrainedConfig):
    r"""
    Configuration of EfficientViT-SAM (arXiv 2402.05008): SAM's prompt encoder and mask decoder on an
    EfficientViT image encoder (backbone, then a neck that resizes the chosen stages to one
    `neck_output_size`-pixel map, fuses them and refines them with FusedMBConv blocks, then a LayerNorm).

    Use `EfficientViTSamConfig.from_preset("sam-l0")` for the released variants (`sam-l0`, `sam-l1`,
    `sam-l2`, `sam-xl0`, `sam-xl1`).

    Args:
        vision_config (`dict` or `EfficientViTConfig`, *optional*):
            The image encoder: an EfficientViT backbone plus the neck fields `neck_in_features` (stages read,
            coarsest first), `neck_hidden_size` (256), `neck_depth`, `neck_expand_ratio`,
            `neck_output_size` (64) and `neck_hidden_act`; `image_size` is the encoder input resolution
            (512 for L, 1024 for XL).
        prompt_encoder_config (`dict` or `SamPromptEncoderConfig`, *optional*):
            SAM's prompt encoder. `image_size` (1024) is the frame of point and box prompts, and
            `image_size // patch_size` must equal the vision `neck_output_size`.
        mask_decoder_config (`dict` or `SamMaskDecoderConfig`, *optional*):
            SAM's two-way transformer mask decoder (`layer_norm_eps` 1e-6 for every LayerNorm).
        initializer_range (`float`, *optional*, defaults to 0.02):
            Std of the truncated normal used to initialise conv and linear weights.
    """

    model_type = "efficientvit_sam"
    preset_family = "EfficientViT-SAM"
    presets = SAM_PRESETS
    sub_configs = {
        "vision_config": EfficientViTConfig,
        "prompt_encoder_config": SamPromptEncoderConfig,
        "mask_decoder_config": SamMaskDecoderConfig,
    }
    sub_configs_defaults = dict(sub_configs)

    def __init__(
        self,
        vision_config: dict | EfficientViTConfig | None = None,
        prompt_encoder_config: dict | SamPromptEncoderConfig | None = None,
        mask_decoder_config: dict | SamMaskDecoderConfig | None = None,
        initializer_range: float = 0.02,
        tie_word_embeddings: bool = True,
        **kwargs: Any,
    ) -> None:
        if vision_config is None:
            vision_config = sam_vision_config(
                "l0", neck_in_features=["stage4", "stage3", "stage2"], image_size=512
            )
        elif isinstance(vision_config, dict):
            vision_config = sam_vision_config(**{k: v for k, v in vision_config.items() if k != "model_type"})
        elif isinstance(vision_config, EfficientViTConfig):
            _fill_neck_defaults(vision_config)
        else:
            raise ValueError(
                f"`vision_config` must be a dict or an EfficientViTConfig, got "
                f"{type(vision_config).__name__}."
            )
        self.vision_config = vision_config
        self.prompt_encoder_config = _as_sub_config(
            prompt_encoder_config,
            SamPromptEncoderConfig,
            "prompt_encoder_config",
            {"layer_norm_eps": SAM_NORM_EPS},
        )
        self.mask_decoder_config = _as_sub_config(
            mask_decoder_config, SamMaskDecoderConfig, "mask_decoder_config", {"layer_norm_eps": SAM_NORM_EPS}
        )
        self.initializer_range = initializer_range
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)
        self._validate()

    def _validate(self) -> None:
        vision, prompt, decoder = self.vision_config, self.prompt_encoder_config, self.mask_decoder_config
        if prompt.image_embedding_size != vision.neck_output_size:
            raise ValueError(
                f"The prompt encoder expects image embeddings of side {prompt.image_embedding_size} "
                f"(image_size {prompt.image_size} // patch_size {prompt.patch_size}) but the neck "
                f"outputs {vision.neck_output_size}x{vision.neck_output_size}."
            )
        if not prompt.hidden_size == decoder.hidden_size == vision.neck_hidden_size:
            raise ValueError(
                f"Embedding widths disagree: neck_hidden_size {vision.neck_hidden_size}, prompt encoder "
                f"{prompt.hidden_size}, mask decoder {decoder.hidden_size}."
            )
        if prompt.hidden_size % 2:
            raise ValueError(f"The prompt encoder width must be even, got {prompt.hidden_size}.")

    @property
    def prompt_image_size(self) -> int:
        """Side of the square frame that point/box prompts and low-res masks refer to (1024)."""
        return int(self.prompt_encoder_config.image_size)

    @property
    def encoder_image_size(self) -> int:
        """Input resolution of the image encoder (512 for the L models, 1024 for XL)."""
        return int(self.vision_config.image_size)

    @classmethod
    def preset_fields(cls, name: str) -> dict[str, Any]:
        """A released variant: its vision config (backbone preset + neck); overrides apply to this config."""
        return {"vision_config": sam_vision_config(**SAM_PRESETS[name])}


__all__ = ["EfficientViTSamConfig", "SAM_PRESETS", "NECK_DEFAULTS", "SAM_NORM_EPS", "sam_vision_config"]
