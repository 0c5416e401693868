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
    EfficientViTSamProcessor,
    EfficientViTSegImageProcessor,
    EfficientViTSRConfig,
    EfficientViTSRImageProcessor,
    SuperResolutionPipeline,
    tiled_upscale,
)
from .optimization import compile_for_inference, tune_cpu_allocator
from .registration import register

__version__ = "0.1.0"

register()

__all__ = [
    "PRESETS",
    "SEGMENTATION_PRESETS",
    "EfficientViTBackbone",
    "EfficientViTConfig",
    "EfficientViTForImageClassification",
    "EfficientViTModel",
    "EfficientViTPreTrainedModel",
    "SAM_PRESETS",
    "EfficientViTSamConfig",
    "EfficientViTSamModel",
    "EfficientViTForSemanticSegmentation",
    "EfficientViTSegImageProcessor",
    "EfficientViTImageProcessor",
    "EfficientViTSamImageProcessor",
    "EfficientViTSamProcessor",
    "SR_PRESETS",
    "EfficientViTSRConfig",
    "EfficientViTForImageSuperResolution",
    "EfficientViTSRImageProcessor",
    "SuperResolutionPipeline",
    "tiled_upscale",
    "compile_for_inference",
    "tune_cpu_allocator",
    "register",
    "__version__",
]
