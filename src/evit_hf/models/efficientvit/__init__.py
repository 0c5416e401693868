"""The EfficientViT model family (flat: the files here travel together in `trust_remote_code` folders)."""

from .configuration_efficientvit import PRESETS, SEGMENTATION_PRESETS, EfficientViTConfig
from .modeling_efficientvit import (
    EfficientViTBackbone,
    EfficientViTForImageClassification,
    EfficientViTModel,
    EfficientViTPreTrainedModel,
)

__all__ = [
    "PRESETS",
    "SEGMENTATION_PRESETS",
    "EfficientViTConfig",
    "EfficientViTBackbone",
    "EfficientViTForImageClassification",
    "EfficientViTModel",
    "EfficientViTPreTrainedModel",
]
