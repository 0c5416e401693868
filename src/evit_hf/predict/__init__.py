"""What users do with a model, as a library: prompt SAM, generate masks, segment, upscale, draw the results.

- `sam`: `SamPredictor` (one image embedding, many prompts; segment-anything's predictor for transformers
  SAM-style models), `SamImageEmbedding`, `SamPrediction`;
- `mask_generation`: `SamAutomaticMaskGenerator` (masks of everything, from a grid of point prompts or given
  boxes), `GeneratedMasks`; `sam_decoder`: `PromptBatchDecoder` (the mask decoder for many prompts on one image,
  prompt-independent work once); `masks`: grids, crops, stability, boxes, RLE, small regions; `pipeline`: the
  `mask-generation` pipeline class registered for EfficientViT-SAM; `segmentation_pipeline`: the
  `image-segmentation` pipeline class registered for EfficientViT-Seg (the same masks, cheaper);
- `segmentation`: `segment_image` (the class map of one image; `class_map` upsamples scores in bounded
  memory, with progress), `set_short_side`;
- `super_resolution`: `upscale_image` (with progress by tile), `tile_count`, `bicubic_comparison`;
- `drawing`: colours, mask overlays, prompt marks, the segmentation overlay with its legend, side by side
  (`from evit_hf.predict.drawing import draw_masks, ...`).

Models and processors come from `evit_hf.resolve.load_model`; `evit-hf sam / segment / upscale`, the app and
the evaluation call this package and only adapt arguments and print.
"""

from __future__ import annotations

from . import drawing
from .mask_generation import (
    DEFAULT_POINTS_PER_SIDE,
    INTERACTIVE_POINTS_PER_SIDE,
    GeneratedMasks,
    SamAutomaticMaskGenerator,
)
from .sam import SamImageEmbedding, SamPrediction, SamPredictor
from .sam_decoder import PromptBatchDecoder
from .segmentation import segment_image, set_short_side
from .super_resolution import bicubic_comparison, tile_count, upscale_image

__all__ = [
    "DEFAULT_POINTS_PER_SIDE",
    "INTERACTIVE_POINTS_PER_SIDE",
    "GeneratedMasks",
    "PromptBatchDecoder",
    "SamAutomaticMaskGenerator",
    "SamImageEmbedding",
    "SamPrediction",
    "SamPredictor",
    "bicubic_comparison",
    "drawing",
    "segment_image",
    "set_short_side",
    "tile_count",
    "upscale_image",
]
