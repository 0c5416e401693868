"""Registration of the EfficientViT classes with the transformers Auto classes (run on `import evit_hf`)."""

from __future__ import annotations

from transformers import (
    AutoBackbone,
    AutoConfig,
    AutoModel,
    AutoModelForImageClassification,
)

from .models.efficientvit import (
    EfficientViTBackbone,
    EfficientViTConfig,
    EfficientViTForImageClassification,
    EfficientViTModel,
)

# Auto class -> model class, also written as `auto_map` into saved folders for `trust_remote_code`.
AUTO_MODEL_CLASSES = {
    "AutoModel": EfficientViTModel,
    "AutoBackbone": EfficientViTBackbone,
    "AutoModelForImageClassification": EfficientViTForImageClassification,
}


def register() -> None:
    """Register configs, models and processors with the Auto classes (idempotent)."""
    AutoConfig.register(EfficientViTConfig.model_type, EfficientViTConfig, exist_ok=True)
    AutoModel.register(EfficientViTConfig, EfficientViTModel, exist_ok=True)
    AutoBackbone.register(EfficientViTConfig, EfficientViTBackbone, exist_ok=True)
    AutoModelForImageClassification.register(EfficientViTConfig, EfficientViTForImageClassification, exist_ok=True)
