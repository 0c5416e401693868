"""The EfficientViT model family (flat: the files here travel together in `trust_remote_code` folders).

Files in dependency order (each imports only the ones before it, as `from .x import y`):
configuration_efficientvit (configs, token-mixer fields, presets) -> configuration_efficientvit_{sam,sr} ->
modeling_efficientvit_blocks (convs, norms, resizing, the fp32 island) -> modeling_efficientvit_mixers (token
mixers, one registry) -> modeling_efficientvit_fastpath (the inference fast path and its CPU kernels, installed
from outside) -> modeling_efficientvit (block, stage, encoder, backbone, classifier) ->
modeling_efficientvit_{seg,sam,sr} -> processors and pipeline.
"""

from .configuration_efficientvit import PRESETS, SEGMENTATION_PRESETS, EfficientViTConfig
from .configuration_efficientvit_sam import SAM_PRESETS, EfficientViTSamConfig
from .configuration_efficientvit_sr import SR_PRESETS, EfficientViTSRConfig
from .modeling_efficientvit import (
    EfficientViTBackbone,
    EfficientViTForImageClassification,
    EfficientViTModel,
    EfficientViTPreTrainedModel,
)
from .modeling_efficientvit_fastpath import set_inference_optimizations
from .modeling_efficientvit_sam import EfficientViTSamModel, EfficientViTSamPreTrainedModel
from .modeling_efficientvit_seg import EfficientViTForSemanticSegmentation, EfficientViTSegmentationHead
from .modeling_efficientvit_sr import (
    EfficientViTForImageSuperResolution,
    EfficientViTSRPreTrainedModel,
    tiled_upscale,
)

try:  # PIL-backend processors need transformers >= 5
    from .image_processing_efficientvit import EfficientViTImageProcessor
    from .image_processing_efficientvit_sam import EfficientViTSamImageProcessor
    from .image_processing_efficientvit_seg import EfficientViTSegImageProcessor
    from .image_processing_efficientvit_sr import EfficientViTSRImageProcessor
    from .pipeline_efficientvit_sr import SuperResolutionPipeline
    from .processing_efficientvit_sam import EfficientViTSamProcessor
except ImportError:  # transformers 4.57: the models work, the processors (and the SR pipeline) are unavailable
    EfficientViTImageProcessor = EfficientViTSamImageProcessor = EfficientViTSegImageProcessor = None
    EfficientViTSamProcessor = EfficientViTSRImageProcessor = SuperResolutionPipeline = None

__all__ = [
    "PRESETS",
    "SEGMENTATION_PRESETS",
    "EfficientViTConfig",
    "EfficientViTBackbone",
    "EfficientViTForImageClassification",
    "EfficientViTModel",
    "EfficientViTPreTrainedModel",
    "SAM_PRESETS",
    "EfficientViTSamConfig",
    "EfficientViTSamModel",
    "EfficientViTSamPreTrainedModel",
    "EfficientViTForSemanticSegmentation",
    "EfficientViTSegmentationHead",
    "EfficientViTSegImageProcessor",
    "EfficientViTImageProcessor",
    "EfficientViTSamImageProcessor",
    "EfficientViTSamProcessor",
    "SR_PRESETS",
    "EfficientViTSRConfig",
    "EfficientViTForImageSuperResolution",
    "EfficientViTSRPreTrainedModel",
    "EfficientViTSRImageProcessor",
    "SuperResolutionPipeline",
    "set_inference_optimizations",
    "tiled_upscale",
]
