"""`EfficientViTSamProcessor`: transformers' `SamProcessor` with prompt validation.

The stock `SamProcessor.__call__` removes the prompts before the image processor sees them, so points outside
the image, ragged shapes or labels without points would reach the model. This subclass checks every image's
prompts against its original size (`EfficientViTSamImageProcessor.validate_prompts`) and raises a clear
`ValueError` instead.
"""

from __future__ import annotations

from typing import Any

from transformers import SamProcessor


class EfficientViTSamProcessor(SamProcessor):
    """A `SamProcessor` for EfficientViT-SAM that rejects prompts the model cannot use."""

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


__all__ = ["EfficientViTSamProcessor"]
