"""Registration of the EfficientViT classes with the transformers Auto classes (run on `import evit_hf`)."""

from __future__ import annotations

from transformers import (
    AutoBackbone,
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForImageToImage,
    AutoModelForMaskGeneration,
    AutoModelForSemanticSegmentation,
    AutoProcessor,
)

from .models.efficientvit import (
    EfficientViTBackbone,
    EfficientViTConfig,
    EfficientViTForImageClassification,
    EfficientViTForImageSuperResolution,
    EfficientViTForSemanticSegmentation,
    EfficientViTModel,
    EfficientViTSamConfig,
    EfficientViTSamModel,
    EfficientViTSRConfig,
)

try:  # the PIL-backend image processors need transformers >= 5
    from .models.efficientvit.image_processing_efficientvit import EfficientViTImageProcessor
    from .models.efficientvit.image_processing_efficientvit_sam import EfficientViTSamImageProcessor
    from .models.efficientvit.image_processing_efficientvit_seg import EfficientViTSegImageProcessor
    from .models.efficientvit.image_processing_efficientvit_sr import EfficientViTSRImageProcessor
    from .models.efficientvit.pipeline_efficientvit_sr import SuperResolutionPipeline
    from .models.efficientvit.processing_efficientvit_sam import EfficientViTSamProcessor

    HAS_PROCESSORS = True
except ImportError:  # transformers 4.57: the models work, the processors are unavailable
    HAS_PROCESSORS = False

# One config class maps to one processor class (the classification one). The segmentation processor is
# registered under its own key, so `AutoImageProcessor.from_pretrained(folder)` finds it by the
# `image_processor_type` of the folder's preprocessor_config.json.
SEGMENTATION_PROCESSOR_KEY = "efficientvit_seg"

# transformers v5 removed "image-to-image" (and refuses that name even when re-registered).
SUPER_RESOLUTION_TASK = "image-super-resolution"

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
    EfficientViTSRConfig: {
        "AutoModel": EfficientViTForImageSuperResolution,
        "AutoModelForImageToImage": EfficientViTForImageSuperResolution,
    },
}

_AUTO_CLASSES = {
    "AutoModel": AutoModel,
    "AutoBackbone": AutoBackbone,
    "AutoModelForImageClassification": AutoModelForImageClassification,
    "AutoModelForImageToImage": AutoModelForImageToImage,
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
    AutoImageProcessor.register(
        EfficientViTSRConfig, image_processor_classes={"pil": EfficientViTSRImageProcessor}, exist_ok=True
    )
    register_sr_pipeline()
    from .predict.pipeline import register_mask_generation_pipeline

    register_mask_generation_pipeline()  # EfficientViT-SAM's fast generator; other models keep transformers'


def register_sr_pipeline() -> None:
    """Register `SuperResolutionPipeline` as "image-super-resolution" (once: registering again would log an
    overwrite warning; the registry entry is also what `pipeline.save_pretrained` writes to `custom_pipelines`)."""
    from transformers.pipelines import PIPELINE_REGISTRY

    if PIPELINE_REGISTRY.supported_tasks.get(SUPER_RESOLUTION_TASK, {}).get("impl") is SuperResolutionPipeline:
        return
    PIPELINE_REGISTRY.register_pipeline(
        SUPER_RESOLUTION_TASK, pipeline_class=SuperResolutionPipeline, pt_model=AutoModelForImageToImage, type="image"
    )
