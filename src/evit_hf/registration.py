"""Registration of the EfficientViT classes with the transformers Auto classes (run on `import evit_hf`)."""

from __future__ import annotations

from transformers import (
    AutoBackbone,
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForMaskGeneration,
    AutoModelForSemanticSegmentation,
    AutoProcessor,
)

from .models.efficientvit import (
    EfficientViTBackbone,
    EfficientViTConfig,
    EfficientViTForImageClassification,
    EfficientViTForSemanticSegmentation,
    EfficientViTModel,
    EfficientViTSamConfig,
    EfficientViTSamModel,
)

try:  # the PIL-backend image processors need transformers >= 5
    from .models.efficientvit.image_processing_efficientvit import EfficientViTImageProcessor
    from .models.efficientvit.image_processing_efficientvit_sam import EfficientViTSamImageProcessor
    from .models.efficientvit.image_processing_efficientvit_seg import EfficientViTSegImageProcessor
    from .models.efficientvit.processing_efficientvit_sam import EfficientViTSamProcessor

    HAS_PROCESSORS = True
except ImportError:  # transformers 4.57: the models work, the processors are unavailable
    HAS_PROCESSORS = False

# One config class maps to one processor class (the classification one). The segmentation processor is
# registered under its own key, so `AutoImageProcessor.from_pretrained(folder)` finds it by the
# `image_processor_type` of the folder's preprocessor_config.json.
SEGMENTATION_PROCESSOR_KEY = "efficientvit_seg"

# Per config class: Auto class name -> model class (saved folders list the same in `hub_auto_map`).
AUTO_MODEL_CLASSES: dict[type, dict[str, type]] = {
    EfficientViTConfig: {
        "AutoModel": EfficientViTModel,
        "AutoBackbone": EfficientViTBackbone,
        "AutoModelForImageClassification": EfficientViTForImageClassification,
        "AutoModelForSemanticSegmentation": EfficientViTForSemanticSegmentation,
    },
    EfficientViTSamConfig: {
        "AutoModel": EfficientViTSamModel,
        "AutoModelForMaskGeneration": EfficientViTSamModel,
    },
}

_AUTO_CLASSES = {
    "AutoModel": AutoModel,
    "AutoBackbone": AutoBackbone,
    "AutoModelForImageClassification": AutoModelForImageClassification,
    "AutoModelForMaskGeneration": AutoModelForMaskGeneration,
    "AutoModelForSemanticSegmentation": AutoModelForSemanticSegmentation,
}


def register() -> None:
    """Register configs, models and processors with the Auto classes (idempotent)."""
    for config_class, models in AUTO_MODEL_CLASSES.items():
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        for auto_name, model_class in models.items():
            _AUTO_CLASSES[auto_name].register(config_class, model_class, exist_ok=True)
    if not HAS_PROCESSORS:
        return
    AutoImageProcessor.register(
        EfficientViTSamConfig, image_processor_classes={"pil": EfficientViTSamImageProcessor}, exist_ok=True
    )
    AutoProcessor.register(EfficientViTSamConfig, EfficientViTSamProcessor, exist_ok=True)
    AutoImageProcessor.register(
        EfficientViTConfig, image_processor_classes={"pil": EfficientViTImageProcessor}, exist_ok=True
    )
    AutoImageProcessor.register(
        SEGMENTATION_PROCESSOR_KEY, image_processor_classes={"pil": EfficientViTSegImageProcessor}, exist_ok=True
    )
