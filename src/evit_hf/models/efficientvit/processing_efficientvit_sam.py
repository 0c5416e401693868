"""`EfficientViTSamProcessor`: transformers' `SamProcessor` with prompt validation.

The stock `SamProcessor.__call__` removes the prompts before the image processor sees them, so points outside
the image, ragged shapes or labels without points would reach the model. This subclass checks every image's
prompts against its original size (`EfficientViTSamImageProcessor.validate_prompts`) and raises a clear
`ValueError` instead.
"""

# No `from __future__ import annotations`: transformers reads the kwargs TypedDict's annotations as classes.
from typing import Any

from transformers import SamProcessor
from transformers.models.sam.processing_sam import SamProcessorKwargs

from .image_processing_efficientvit_sam import EfficientViTSamImageProcessorKwargs


class EfficientViTSamProcessorKwargs(SamProcessorKwargs, total=False):
    """`SamProcessor`'s keyword arguments, the image ones being EfficientViT-SAM's (`encoder_size` too)."""

    images_kwargs: EfficientViTSamImageProcessorKwargs


class EfficientViTSamProcessor(SamProcessor):
    """A `SamProcessor` for EfficientViT-SAM that rejects prompts the model cannot use."""

    # `save_pretrained` writes the `auto_map` and this file (with the files it imports) into the folder, so
    # that `AutoProcessor.from_pretrained(folder, trust_remote_code=True)` works where evit-hf is not installed.
    _auto_class = "AutoProcessor"

    valid_processor_kwargs = EfficientViTSamProcessorKwargs

    def __call__(
        self,
        images: Any = None,
        text: Any = None,
        segmentation_maps: Any = None,
        input_points: Any = None,
        input_labels: Any = None,
        input_boxes: Any = None,
        **kwargs: Any,
    ):
        encoding = super().__call__(
            images,
            text,
            segmentation_maps=segmentation_maps,
            input_points=input_points,
            input_labels=input_labels,
            input_boxes=input_boxes,
            **kwargs,
        )
        if input_points is not None or input_labels is not None or input_boxes is not None:
            sizes = encoding["original_sizes"]
            sizes = sizes.tolist() if hasattr(sizes, "tolist") else sizes
            self.image_processor.validate_prompts(sizes, input_points, input_labels, input_boxes)
        return encoding


__all__ = ["EfficientViTSamProcessor", "EfficientViTSamProcessorKwargs"]
