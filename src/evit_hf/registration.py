"""Registration of the EfficientViT classes with the transformers Auto classes (run on `import evit_hf`)."""

from __future__ import annotations

from transformers import (
    AutoBackbone,
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageClassification,
)

from .models.efficientvit import (
    EfficientViTBackbone,
    EfficientViTConfig,
    EfficientViTForImageClassification,
    EfficientViTModel,
)

try:  # the PIL-backend processors need transformers >= 5
    from .models.efficientvit.image_processing_efficientvit import EfficientViTImageProcessor
except ImportError:  # transformers 4.57: models still work, processors are unavailable
    EfficientViTImageProcessor = None

# Per config class: Auto class name -> model class. Also written as `auto_map` into saved folders.
AUTO_MODEL_CLASSES: dict[type, dict[str, type]] = {
    EfficientViTConfig: {
        "AutoModel": EfficientViTModel,
        "AutoBackbone": EfficientViTBackbone,
        "AutoModelForImageClassification": EfficientViTForImageClassification,
    },
}

_AUTO_CLASSES = {
    "AutoModel": AutoModel,
    "AutoBackbone": AutoBackbone,
    "AutoModelForImageClassification": AutoModelForImageClassification,
}


def auto_map_for(config_class: type) -> dict[str, str]:
    """The `auto_map` of a saved folder: `module.Class` references to the copied model files."""
    def ref(cls: type) -> str:
        return f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"

    return {"AutoConfig": ref(config_class), **{auto: ref(cls) for auto, cls in
                                               AUTO_MODEL_CLASSES.get(config_class, {}).items()}}


def register() -> None:
    """Register configs, models and processors with the Auto classes (idempotent)."""
    for config_class, models in AUTO_MODEL_CLASSES.items():
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        for auto_name, model_class in models.items():
            _AUTO_CLASSES[auto_name].register(config_class, model_class, exist_ok=True)
    if EfficientViTImageProcessor is not None:
        AutoImageProcessor.register(
            EfficientViTConfig, image_processor_classes={"pil": EfficientViTImageProcessor}, exist_ok=True
        )
