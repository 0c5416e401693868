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
    """Register configs, models and processors with the Auto classes, and let the models' `from_pretrained` take a
    released model's name (idempotent)."""
    from .hub import install_from_pretrained_hook

    install_from_pretrained_hook()
    for config_class, models in AUTO_MODEL_CLASSES.items():
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        for auto_name, model_class in models.items():
            _AUTO_CLASSES[auto_name].register(config_class, model_class, exist_ok=True)
    name_semantic_segmentation_model()
    if not HAS_PROCESSORS:
        return
    declare_no_video_processor()
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
    from .predict.pipeline import EfficientViTMaskGenerationPipeline
    from .predict.segmentation_pipeline import EfficientViTImageSegmentationPipeline

    serve_task("mask-generation", EfficientViTMaskGenerationPipeline)  # EfficientViT-SAM's fast generator
    serve_task("image-segmentation", EfficientViTImageSegmentationPipeline)  # EfficientViT-Seg's cheap masks


def serve_task(task: str, pipeline_class: type) -> None:
    """Serve a built-in `task` with `pipeline_class`, a subclass of transformers' own that changes only what it
    does for EfficientViT models (every other model runs the parent class).

    The registry entry is replaced in place, keeping transformers' model classes and default checkpoint; the
    class is not marked as a custom pipeline, so `pipeline.save_pretrained` writes no `custom_pipelines` entry
    (a saved folder must load without evit-hf)."""
    from transformers.pipelines import PIPELINE_REGISTRY

    entry = PIPELINE_REGISTRY.supported_tasks[task]
    if entry["impl"] is not pipeline_class:
        PIPELINE_REGISTRY.supported_tasks[task] = {**entry, "impl": pipeline_class}


def name_semantic_segmentation_model() -> None:
    """List the segmentation model's class name in transformers' semantic-segmentation name table.

    Pipelines check the model with `Pipeline.check_model_type(<task>_MAPPING_NAMES)`, which finds registered
    classes through the table's link back to its Auto mapping (`names._model_mapping._extra_content`). The
    image-segmentation pipeline checks a merged *copy* of four tables instead, which has no such link: a
    registered model is logged as "not supported for image-segmentation" (a 756-character error) and then
    works. Naming the class in the table, as transformers names its own models, is what that check reads.
    The lazy Auto mapping is unaffected: it resolves registered configs before the names and only imports the
    model types that `CONFIG_MAPPING_NAMES` lists, which ours is not.
    """
    from transformers.models.auto import modeling_auto

    names = modeling_auto.MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES
    model_class = AUTO_MODEL_CLASSES[EfficientViTConfig]["AutoModelForSemanticSegmentation"]
    names.setdefault(EfficientViTConfig.model_type, model_class.__name__)


def declare_no_video_processor() -> None:
    """Tell `AutoVideoProcessor` that EfficientViT configs have no video processor (transformers >= 5).

    `pipeline()` tries `AutoVideoProcessor.from_pretrained(model)` for every task whose pipeline class leaves
    `_load_video_processor` unset (classification, segmentation, mask generation). With no video processor in
    the folder it derives one from `auto_map["AutoImageProcessor"]` of preprocessor_config.json (our folders
    carry it for `trust_remote_code`), "image_processing_x.XImageProcessor" -> "...XVideoProcessor", and since
    no video processor is registered for the config it asks whether to run that remote code: "Do you wish to
    run the custom code? [y/N]", waiting 15 s on a terminal before the pipeline goes on without one. A
    registered entry without classes makes the config local code, so the derived reference is never trusted,
    and the load fails quietly as for any image model ("Could not load any video processor").
    """
    # The pipelines' own import: `transformers.AutoVideoProcessor` is a placeholder without torchvision.
    from transformers.models.auto.video_processing_auto import AutoVideoProcessor

    for config_class in AUTO_MODEL_CLASSES:
        AutoVideoProcessor.register(config_class, video_processor_classes={}, exist_ok=True)


def register_sr_pipeline() -> None:
    """Register `SuperResolutionPipeline` as "image-super-resolution" (once: registering again would log an
    overwrite warning; the registry entry is also what `pipeline.save_pretrained` writes to `custom_pipelines`)."""
    from transformers.pipelines import PIPELINE_REGISTRY

    if PIPELINE_REGISTRY.supported_tasks.get(SUPER_RESOLUTION_TASK, {}).get("impl") is SuperResolutionPipeline:
        return
    PIPELINE_REGISTRY.register_pipeline(
        SUPER_RESOLUTION_TASK, pipeline_class=SuperResolutionPipeline, pt_model=AutoModelForImageToImage, type="image"
    )
