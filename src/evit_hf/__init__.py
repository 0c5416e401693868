"""evit-hf: EfficientViT as Hugging Face transformers models.

`import evit_hf` registers every model with the transformers Auto classes, so that
`AutoModel.from_pretrained(...)`, `AutoImageProcessor.from_pretrained(...)` and `pipeline(...)` resolve
EfficientViT checkpoints without `trust_remote_code`.
"""

from .models.efficientvit import (
    PRESETS,
    SAM_PRESETS,
    SEGMENTATION_PRESETS,
    SR_PRESETS,
    EfficientViTBackbone,
    EfficientViTConfig,
    EfficientViTForImageClassification,
    EfficientViTForImageSuperResolution,
    EfficientViTForSemanticSegmentation,
    EfficientViTImageProcessor,
    EfficientViTModel,
    EfficientViTPreTrainedModel,
    EfficientViTSamConfig,
    EfficientViTSamImageProcessor,
    EfficientViTSamModel,
    EfficientViTSamPreTrainedModel,
    EfficientViTSamProcessor,
    EfficientViTSegImageProcessor,
    EfficientViTSegmentationHead,
    EfficientViTSRConfig,
    EfficientViTSRImageProcessor,
    EfficientViTSRPreTrainedModel,
    SuperResolutionPipeline,
    set_inference_optimizations,
    tiled_upscale,
)
from .optimization import compile_for_inference, tune_cpu_allocator
from .registration import register

__version__ = "0.1.0"

register()

__all__ = [  # sorted
    "__version__",
    "compile_for_inference",
    "EfficientViTBackbone",
    "EfficientViTConfig",
    "EfficientViTForImageClassification",
    "EfficientViTForImageSuperResolution",
    "EfficientViTForSemanticSegmentation",
    "EfficientViTImageProcessor",
    "EfficientViTModel",
    "EfficientViTPreTrainedModel",
    "EfficientViTSamConfig",
    "EfficientViTSamImageProcessor",
    "EfficientViTSamModel",
    "EfficientViTSamPreTrainedModel",
    "EfficientViTSamProcessor",
    "EfficientViTSegImageProcessor",
    "EfficientViTSegmentationHead",
    "EfficientViTSRConfig",
    "EfficientViTSRImageProcessor",
    "EfficientViTSRPreTrainedModel",
    "PRESETS",
    "register",
    "SAM_PRESETS",
    "SEGMENTATION_PRESETS",
    "set_inference_optimizations",
    "SR_PRESETS",
    "SuperResolutionPipeline",
    "tiled_upscale",
    "tune_cpu_allocator",
]
