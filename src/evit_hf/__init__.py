"""evit-hf: EfficientViT as Hugging Face transformers models.

`import evit_hf` registers every model with the transformers Auto classes, so that
`AutoModel.from_pretrained(...)`, `AutoImageProcessor.from_pretrained(...)` and `pipeline(...)` resolve
EfficientViT checkpoints without `trust_remote_code`, and lets the models' own `from_pretrained` take a released
model's name (`EfficientViTSamModel.from_pretrained("efficientvit-sam-xl1")`). `evit_hf.pretrained(name)` is
the local folder of a released model (the authors' checkpoint, converted once and cached) for the Auto classes
and pipelines: `pipeline("image-classification", model=evit_hf.pretrained("efficientvit-b1-r224"))`.
"""

from .hub import install_from_pretrained_hook
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
from .resolve import pretrained

__version__ = "0.1.0"

register()
install_from_pretrained_hook()

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
    "pretrained",
    "register",
    "SAM_PRESETS",
    "SEGMENTATION_PRESETS",
    "set_inference_optimizations",
    "SR_PRESETS",
    "SuperResolutionPipeline",
    "tiled_upscale",
    "tune_cpu_allocator",
]
