"""The `image-segmentation` pipeline with evit-hf imported: cheap masks for EfficientViT-Seg models.

Owns `EfficientViTImageSegmentationPipeline`, a subclass of transformers' `ImageSegmentationPipeline` that
`evit_hf.registration` puts in the task registry. For a model whose image processor is evit-hf's segmentation
processor (semantic segmentation only), the classes present come from one `torch.bincount` of the class map
instead of `np.unique`, which sorts the whole map (28 of the 95 ms of post-processing at 1024x2048, seg-B1,
measured on this project's 2-core CPU); the output is transformers' own, mask for mask and in the same order
(tests/test_pipeline_speed.py). Every other model runs transformers' pipeline, unchanged. Without evit-hf
imported, a remote-code folder gets transformers' pipeline, with the same output.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from transformers.pipelines.image_segmentation import ImageSegmentationPipeline

from ..models.efficientvit import EfficientViTSegImageProcessor


class EfficientViTImageSegmentationPipeline(ImageSegmentationPipeline):
    """transformers' image-segmentation pipeline, with a faster (same-output) semantic post-processing for
    EfficientViT-Seg models."""

    def postprocess(self, model_outputs, subtask=None, threshold=0.9, mask_threshold=0.5,
                    overlap_mask_area_threshold=0.5):
        if subtask not in ("semantic", None) or not isinstance(self.image_processor, EfficientViTSegImageProcessor):
            return super().postprocess(model_outputs, subtask=subtask, threshold=threshold,
                                       mask_threshold=mask_threshold,
                                       overlap_mask_area_threshold=overlap_mask_area_threshold)
        (class_map,) = self.image_processor.post_process_semantic_segmentation(
            model_outputs, target_sizes=model_outputs["target_size"])
        present = torch.bincount(class_map.flatten()).nonzero()[:, 0].tolist()  # ascending, as np.unique
        segmentation = class_map.numpy()
        annotation = []
        for label in present:
            mask = (segmentation == label).astype(np.uint8) * 255
            annotation.append({"score": None, "label": self.model.config.id2label[label],
                               "mask": Image.fromarray(mask, mode="L")})
        return annotation


__all__ = ["EfficientViTImageSegmentationPipeline"]
