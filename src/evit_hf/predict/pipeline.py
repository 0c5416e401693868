"""The `mask-generation` pipeline with evit-hf imported: `MaskGenerationPipeline` for EfficientViT-SAM models.

Owns `EfficientViTMaskGenerationPipeline`, a subclass of transformers' `MaskGenerationPipeline` that
`evit_hf.registration` puts in the task registry. For an EfficientViT-SAM model (the package's class or the
same model loaded as remote code: the config's `model_type` decides) it runs `SamAutomaticMaskGenerator`
(one embedding, batched shared-work decoding, low-resolution filters); for every other model (transformers'
`SamModel`, SAM-HQ, ...) it is transformers' pipeline, unchanged. Without evit-hf imported, a remote-code
EfficientViT-SAM folder gets transformers' own pipeline, which keeps working (slower).

The call takes transformers' arguments (`points_per_crop`, `crops_n_layers`, `crop_overlap_ratio`,
`crop_n_points_downscale_factor`, `pred_iou_thresh`, `stability_score_thresh`, `stability_score_offset`,
`mask_threshold`, `crops_nms_thresh` (the box NMS of each crop and between crops), `points_per_batch`,
`output_rle_mask`, `output_bboxes_mask`) and returns its output (`masks` as (H, W) bool arrays, `scores`,
optionally `rle_mask` / `bounding_boxes`); plus segment-anything's `min_mask_region_area`, `box_nms_thresh`,
`multimask_output`, and `input_boxes` (one mask per given box instead of a grid).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers.image_utils import load_image
from transformers.pipelines.mask_generation import MaskGenerationPipeline

from .mask_generation import SamAutomaticMaskGenerator

EFFICIENTVIT_SAM = "efficientvit_sam"  # `EfficientViTSamConfig.model_type`
# transformers' name -> the generator's
_GENERATOR_OPTIONS = {
    "points_per_crop": "points_per_side",
    "points_per_batch": "points_per_batch",
    "crops_n_layers": "crop_n_layers",
    "crop_overlap_ratio": "crop_overlap_ratio",
    "crop_n_points_downscale_factor": "crop_n_points_downscale_factor",
    "pred_iou_thresh": "pred_iou_thresh",
    "stability_score_thresh": "stability_score_thresh",
    "stability_score_offset": "stability_score_offset",
    "mask_threshold": "mask_threshold",
    "box_nms_thresh": "box_nms_thresh",
    "min_mask_region_area": "min_mask_region_area",
    "multimask_output": "multimask_output",
}
_UNSUPPORTED = ("max_hole_area", "max_sprinkle_area")  # transformers' SAM 2 hole filling


class EfficientViTMaskGenerationPipeline(MaskGenerationPipeline):
    """transformers' mask-generation pipeline, with `SamAutomaticMaskGenerator` for EfficientViT-SAM models."""

    @property
    def runs_generator(self) -> bool:
        """Whether this pipeline's model is an EfficientViT-SAM (else transformers' pipeline runs)."""
        return getattr(self.model.config, "model_type", None) == EFFICIENTVIT_SAM

    def _sanitize_parameters(self, **kwargs):
        if not self.runs_generator:
            return super()._sanitize_parameters(**kwargs)
        unsupported = [name for name in _UNSUPPORTED if kwargs.get(name) is not None]
        if unsupported:
            raise ValueError(f"{unsupported} are not options of EfficientViT-SAM's mask generation; fill holes "
                             "and drop islands with `min_mask_region_area`.")
        preprocess = {_GENERATOR_OPTIONS[k]: v for k, v in kwargs.items() if k in _GENERATOR_OPTIONS}
        if "crops_nms_thresh" in kwargs:  # transformers' one NMS threshold: within and between crops
            preprocess["box_nms_thresh"] = preprocess["crop_nms_thresh"] = kwargs["crops_nms_thresh"]
        for name in ("input_boxes", "timeout"):
            if name in kwargs:
                preprocess[name] = kwargs[name]
        postprocess = {k: kwargs[k] for k in ("output_rle_mask", "output_bboxes_mask") if k in kwargs}
        return preprocess, {}, postprocess

    def preprocess(self, image, timeout: float | None = None, input_boxes=None, **options):
        if not self.runs_generator:
            yield from super().preprocess(image, timeout=timeout, **options)
            return
        yield {"image": load_image(image, timeout=timeout), "input_boxes": input_boxes, "options": options,
               "is_last": True}

    def _forward(self, model_inputs, **forward_params):
        if not self.runs_generator:
            return super()._forward(model_inputs, **forward_params)
        options = dict(model_inputs["options"])
        if options.get("points_per_side") is None:
            options.pop("points_per_side", None)
        generator = SamAutomaticMaskGenerator(self.model, self.image_processor, **options)
        boxes = model_inputs["input_boxes"]
        image = model_inputs["image"]
        result = generator.generate(image) if boxes is None else generator.segment_boxes(image, boxes)
        return {"generated": result, "is_last": True}

    def postprocess(self, model_outputs, output_rle_mask: bool = False, output_bboxes_mask: bool = False, **kwargs):
        if not self.runs_generator:
            return super().postprocess(model_outputs, output_rle_mask=output_rle_mask,
                                       output_bboxes_mask=output_bboxes_mask, **kwargs)
        result = model_outputs[0]["generated"]
        output: dict[str, Any] = {"masks": result.masks, "scores": torch.tensor(result.scores)}
        if output_rle_mask:
            output["rle_mask"] = result.rles()
        if output_bboxes_mask:
            output["bounding_boxes"] = torch.from_numpy(np.asarray(result.boxes, dtype=np.int64)).reshape(-1, 4)
        return output


__all__ = ["EfficientViTMaskGenerationPipeline"]
