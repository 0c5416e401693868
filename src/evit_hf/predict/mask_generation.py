"""Automatic mask generation ("segment everything") and box prompting: `SamAutomaticMaskGenerator`.

Owns segment-anything's automatic mask generator for transformers SAM-style models, computed the fast way:

- one image embedding per crop (`SamPredictor.set_image`), prompts decoded in batches sized by a memory budget
  by `PromptBatchDecoder` (the prompt-independent decoder work once per image);
- the predicted-IoU filter before any mask exists (the decoder's IoU head reads only the IoU token), then the
  stability score, the mask boxes and box NMS on the low-resolution logits (4x the embedding: 256x256 for
  SAM); only the masks that survive are upsampled to the image (segment-anything #712/#713), and their boxes
  and stability scores are then measured again at full resolution. segment-anything upsamples every candidate
  (three per point) first;
- segment-anything's options: `points_per_side` or explicit `point_grids`, crop layers (`crop_n_layers`,
  `crop_overlap_ratio`, `crop_n_points_downscale_factor`, `crop_nms_thresh`), `pred_iou_thresh`,
  `stability_score_thresh` (kept when >=), `stability_score_offset`, `box_nms_thresh`,
  `min_mask_region_area` (holes and islands, then NMS again) and `multimask_output`; outputs as binary
  masks, boxes, uncompressed or COCO RLE (`GeneratedMasks.records`);
- `segment_boxes`: every box a user (or a detector) gives, one mask each, in one batched call (MobileSAMv2's
  box prompts instead of a grid);
- a progress bar over the prompt batches (`progress=True`).

The low-resolution filters measure on a 4x coarser grid than segment-anything's; a decision whose measure lies
within a margin of its threshold is taken again on the upsampled mask (`mask_selection`), and
`tests/test_mask_generation.py` holds the result to the original's generator on a trained model (>= 95% of the
masks matched at mask IoU 0.9 both ways).
`evit-hf sam --everything`, the app and the `mask-generation` pipeline of EfficientViT-SAM models use it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .mask_selection import CropCandidates, SelectionRules
from .masks import (
    box_area,
    box_nms,
    build_point_grids,
    coco_rle,
    generate_crop_boxes,
    masks_to_boxes,
    masks_to_rle,
    remove_small_regions,
    stability_scores,
)
from .sam import SamImageEmbedding, SamPredictor, check_prompts
from .sam_decoder import PromptBatchDecoder

# The generator's and the pipeline's grid: segment-anything's 32x32.
DEFAULT_POINTS_PER_SIDE = 32
# The grid of `evit-hf sam --everything` and the app's "Segment everything" (one default for both). On SAM-L0 on
# the 2-core dev CPU (astronaut, 512x512), 16x16 takes 2.7 s on two threads (4.7 s on one) and 32x32 10 s (17 s):
# not the "few seconds" an interactive default needs, so 16x16; pass 32 for segment-anything's grid.
INTERACTIVE_POINTS_PER_SIDE = 16
# Working memory for one batch of prompts through the decoder. Peak use per prompt is about 8 copies of the
# (N, C) image tokens in fp32 (measured on SAM-L0: 33 MB per prompt), so 1 GiB decodes 32 SAM prompts at once.
DEFAULT_MEMORY_BUDGET = 1 << 30
OUTPUT_MODES = ("binary_mask", "uncompressed_rle", "coco_rle")


@dataclass
class GeneratedMasks:
    """The masks of one image, best predicted IoU first (NMS order), and what finding them took."""

    masks: list[np.ndarray]          # (H, W) bool each, at the image's size
    scores: list[float]              # predicted IoU of each mask
    embedding_ms: float              # the image encoder (every crop)
    decoder_ms: float = 0.0          # prompt encoder + mask decoder (the kept prompts' upscaling included)
    postprocess_ms: float = 0.0      # filters, NMS, upsampling the kept masks, small regions
    stability_scores: list[float] = field(default_factory=list)
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))        # (K, 4) XYXY image pixels
    prompts: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))      # (K, 2) point or (K, 4) box
    crop_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))   # (K, 4) XYXY
    num_prompts: int = 0             # prompts decoded (all crops)
    num_candidates: int = 0          # masks left after the predicted-IoU filter (before stability and NMS)

    @property
    def mask_ms(self) -> float:
        """Everything after the image embedding."""
        return self.decoder_ms + self.postprocess_ms

    def rles(self) -> list[dict[str, Any]]:
        """Uncompressed column-major RLE of every mask (COCO's layout)."""
        if not self.masks:
            return []
        return masks_to_rle(torch.from_numpy(np.stack(self.masks)))

    def records(self, output_mode: str = "binary_mask") -> list[dict[str, Any]]:
        """segment-anything's output: per mask `segmentation` (a bool array, or uncompressed / COCO RLE), `area`,
        `bbox` (XYWH), `predicted_iou`, `point_coords`, `stability_score`, `crop_box` (XYWH)."""
        if output_mode not in OUTPUT_MODES:
            raise ValueError(f"output_mode must be one of {OUTPUT_MODES}, got {output_mode!r}.")
        rles = self.rles() if output_mode != "binary_mask" else None
        records = []
        for i, mask in enumerate(self.masks):
            if output_mode == "binary_mask":
                segmentation: Any = mask
            else:
                segmentation = rles[i] if output_mode == "uncompressed_rle" else coco_rle(rles[i])
            x0, y0, x1, y1 = (float(v) for v in self.boxes[i])
            cx0, cy0, cx1, cy1 = (float(v) for v in self.crop_boxes[i])
            records.append({
                "segmentation": segmentation,
                "area": int(mask.sum()),
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "predicted_iou": self.scores[i],
                "point_coords": [self.prompts[i].tolist()],
                "stability_score": self.stability_scores[i],
                "crop_box": [cx0, cy0, cx1 - cx0, cy1 - cy0],
            })
        return records


def _rgb(image) -> Any:
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    if not isinstance(image, Image.Image):
        raise TypeError(f"Expected a PIL image or an (H, W, 3) uint8 array, got {type(image).__name__}.")
    return image.convert("RGB")


class SamAutomaticMaskGenerator:
    """Masks of every object in an image, from a grid of point prompts or from given boxes (module docstring)."""

    def __init__(
        self,
        model,
        processor=None,
        points_per_side: int | None = DEFAULT_POINTS_PER_SIDE,
        pred_iou_thresh: float = 0.88,
        stability_score_thresh: float = 0.95,
        points_per_batch: int | None = None,
        *,
        point_grids: list[np.ndarray] | None = None,
        stability_score_offset: float = 1.0,
        mask_threshold: float = 0.0,
        box_nms_thresh: float = 0.7,
        crop_n_layers: int = 0,
        crop_nms_thresh: float = 0.7,
        crop_overlap_ratio: float = 512 / 1500,
        crop_n_points_downscale_factor: int = 1,
        min_mask_region_area: int = 0,
        multimask_output: bool = True,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        progress: bool = False,
    ) -> None:
        """`points_per_batch` overrides the batch size that `memory_budget` (bytes) allows."""
        if (points_per_side is None) == (point_grids is None):
            raise ValueError("Give exactly one of `points_per_side` and `point_grids`.")
        if points_per_side is not None:
            if points_per_side < 1:
                raise ValueError(f"points_per_side must be at least 1, got {points_per_side}.")
            point_grids = build_point_grids(points_per_side, crop_n_layers, crop_n_points_downscale_factor)
        if len(point_grids) != crop_n_layers + 1:
            raise ValueError(f"Give one point grid per crop layer: {crop_n_layers + 1} for crop_n_layers="
                             f"{crop_n_layers}, got {len(point_grids)}.")
        for grid in point_grids:
            grid = np.asarray(grid)
            if grid.ndim != 2 or grid.shape[1] != 2 or len(grid) == 0 or grid.min() < 0 or grid.max() > 1:
                raise ValueError("Each point grid must be a non-empty (n, 2) array of (x, y) in [0, 1] (fractions "
                                 "of the crop's width and height).")
        if points_per_batch is not None and points_per_batch < 1:
            raise ValueError(f"points_per_batch must be at least 1, got {points_per_batch}.")
        if crop_n_layers < 0 or crop_n_points_downscale_factor < 1:
            raise ValueError("crop_n_layers must be >= 0 and crop_n_points_downscale_factor >= 1.")
        self.predictor = SamPredictor(model, processor)
        self.decoder = PromptBatchDecoder(model)
        self.points_per_side = points_per_side
        self.point_grids = [np.asarray(grid, dtype=np.float64) for grid in point_grids]
        self.pred_iou_thresh = pred_iou_thresh
        self.stability_score_thresh = stability_score_thresh
        self.stability_score_offset = stability_score_offset
        self.mask_threshold = mask_threshold
        self.box_nms_thresh = box_nms_thresh
        self.crop_n_layers = crop_n_layers
        self.crop_nms_thresh = crop_nms_thresh
        self.crop_overlap_ratio = crop_overlap_ratio
        self.min_mask_region_area = min_mask_region_area
        self.multimask_output = multimask_output
        self.points_per_batch = points_per_batch
        self.memory_budget = memory_budget
        self.progress = progress

    @property
    def model(self):
        return self.predictor.model

    @property
    def processor(self):
        return self.predictor.processor

    def prompts_per_batch(self) -> int:
        """Prompts decoded at once: `points_per_batch`, else what `memory_budget` holds (module constant)."""
        if self.points_per_batch is not None:
            return self.points_per_batch
        config = self.model.config.prompt_encoder_config
        per_prompt = 8 * config.image_embedding_size**2 * config.hidden_size * 4
        return max(1, self.memory_budget // per_prompt)

    # ------------------------------------------------------------------------------------------- grid
    def generate(self, image, embedding: SamImageEmbedding | None = None) -> GeneratedMasks:
        """The masks of `image` (PIL or (H, W, 3) uint8 array) from the point grids, filtered, NMS'd.
        `embedding`: the image's embedding computed before (`SamPredictor.set_image`), used for the whole-image
        crop instead of running the encoder again."""
        image = _rgb(image)
        size = (image.height, image.width)
        _check_embedding(embedding, size)
        crop_boxes, layers = generate_crop_boxes(size, self.crop_n_layers, self.crop_overlap_ratio)
        timer = _Timer()
        total = sum(len(self.point_grids[layer]) for layer in layers)
        parts = []
        with _progress_bar(total, self.progress) as bar:
            for crop_box, layer in zip(crop_boxes, layers):
                parts.append(self._process_crop(image, crop_box, layer, timer, bar, embedding))
        masks, scores, stability, boxes, prompts, crops = (
            [m for part in parts for m in part[0]], *(torch.cat([part[i] for part in parts]) for i in range(1, 6)))
        with timer("postprocess"):
            if len(crop_boxes) > 1 and len(masks):  # duplicates between crops: prefer the smaller crop's mask
                keep = box_nms(boxes, 1.0 / box_area(crops.float()), self.crop_nms_thresh).tolist()
                masks = [masks[i] for i in keep]
                scores, stability, boxes, prompts, crops = (t[keep] for t in (scores, stability, boxes, prompts, crops))
            if self.min_mask_region_area > 0 and masks:
                masks, keep, boxes = self._remove_small_regions(masks, boxes)
                scores, stability, prompts, crops = (t[keep] for t in (scores, stability, prompts, crops))
        return GeneratedMasks(
            masks=[m.numpy() for m in masks], scores=scores.tolist(), embedding_ms=timer.ms["embedding"],
            decoder_ms=timer.ms["decoder"], postprocess_ms=timer.ms["postprocess"],
            stability_scores=stability.tolist(), boxes=boxes.numpy(), prompts=prompts.numpy(),
            crop_boxes=crops.numpy(), num_prompts=total, num_candidates=timer.candidates,
        )

    def _process_crop(self, image, crop_box: list[int], layer: int, timer: _Timer, bar,
                      whole: SamImageEmbedding | None) -> tuple:
        """The kept masks of one crop, in the image: (masks, scores, stability, boxes, prompts, crop boxes)."""
        x0, y0, x1, y1 = crop_box
        width, height = image.size
        if whole is not None and crop_box == [0, 0, width, height]:
            embedding = whole
        else:
            with timer("embedding"):
                embedding = self.predictor.set_image(image.crop((x0, y0, x1, y1)))
        crop_h, crop_w = embedding.original_size
        points = torch.from_numpy(self.point_grids[layer] * np.array([crop_w, crop_h]))  # crop pixels, float64
        scale = _prompt_scale(embedding)
        rules = SelectionRules(self.mask_threshold, self.stability_score_thresh, self.stability_score_offset,
                               self.box_nms_thresh)
        with timer("decoder"):
            context = self.decoder.prepare(embedding.embeddings)
        low_res = 4 * context.size[0], 4 * context.size[1]
        candidates = CropCandidates(lambda logits: _upsampled(self.processor, logits, embedding),
                                    _valid_low_res(low_res, embedding), (crop_h, crop_w), rules, crop_box,
                                    [0, 0, width, height])
        batch = self.prompts_per_batch()
        for start in range(0, len(points), batch):
            chunk = points[start:start + batch]
            with timer("decoder"):
                sparse = self.decoder.sparse_embeddings((chunk * scale).float()[:, None].to(self.predictor.device))
                decoded = self.decoder.decode(context, sparse, self.multimask_output)
                scores = decoded.iou_scores.float().cpu()
                keep = scores > self.pred_iou_thresh if self.pred_iou_thresh > 0.0 else torch.ones_like(scores) > 0
                logits = self.decoder.masks(decoded, keep.to(decoded.iou_scores.device)).float().cpu()
            with timer("postprocess"):
                timer.candidates += int(keep.sum())
                candidates.add(logits, scores[keep], chunk[keep.nonzero()[:, 0]].float())
            bar.update(len(chunk))
        with timer("postprocess"):
            selected = candidates.select()
            masks = [F.pad(m, (x0, width - x1, y0, height - y1)) if (x1 - x0, y1 - y0) != (width, height) else m
                     for m in selected.masks]
            offset = torch.tensor([x0, y0, x0, y0], dtype=torch.float32)
            crops = torch.tensor([crop_box] * len(masks), dtype=torch.long).reshape(-1, 4)
            return (masks, selected.scores, selected.stability, (selected.boxes + offset).long(),
                    selected.prompts + offset[:2], crops)

    def _remove_small_regions(self, masks: list[torch.Tensor], boxes: torch.Tensor):
        """segment-anything's `postprocess_small_regions`: fill small holes, drop small islands, then NMS that
        prefers unchanged masks. Returns (masks, kept indices, boxes)."""
        cleaned, unchanged = [], []
        for mask in masks:
            array, holes = remove_small_regions(mask.numpy(), self.min_mask_region_area, "holes")
            array, islands = remove_small_regions(array, self.min_mask_region_area, "islands")
            cleaned.append(torch.from_numpy(array))
            unchanged.append(float(not (holes or islands)))
        new_boxes = masks_to_boxes(torch.stack(cleaned))
        keep = box_nms(new_boxes, torch.tensor(unchanged), max(self.box_nms_thresh, self.crop_nms_thresh))
        return [cleaned[i] for i in keep.tolist()], keep, new_boxes[keep]

    # ------------------------------------------------------------------------------------------ boxes
    def segment_boxes(self, image, boxes, embedding: SamImageEmbedding | None = None,
                      multimask_output: bool = False) -> GeneratedMasks:
        """One mask per box (XYXY image pixels, (K, 4)), in the boxes' order, decoded `prompts_per_batch` boxes
        at a time: the single-mask output (a box is unambiguous; MobileSAMv2 prompts its detector's boxes so),
        or the best of three with `multimask_output`. No quality filter: every box keeps its mask (the
        predicted IoUs are reported). `embedding`: the image's embedding computed before."""
        image = _rgb(image)
        boxes = torch.as_tensor(np.asarray(boxes, dtype=np.float64)).reshape(-1, 4)
        check_prompts(self.processor, (image.height, image.width), boxes=boxes.numpy())  # before the encoder runs
        _check_embedding(embedding, (image.height, image.width))
        timer = _Timer()
        if embedding is None:
            with timer("embedding"):
                embedding = self.predictor.set_image(image)
        scale = _prompt_scale(embedding)
        with timer("decoder"):
            context = self.decoder.prepare(embedding.embeddings)
        masks, scores, stability, mask_boxes = [], [], [], []
        batch = self.prompts_per_batch()
        with _progress_bar(len(boxes), self.progress) as bar:
            for start in range(0, len(boxes), batch):
                chunk = boxes[start:start + batch]
                with timer("decoder"):
                    sparse = self.decoder.sparse_embeddings(boxes=(chunk * scale.repeat(2)).float().to(
                        self.predictor.device))
                    decoded = self.decoder.decode(context, sparse, multimask_output)
                    best = decoded.iou_scores.argmax(-1)
                    keep = torch.nn.functional.one_hot(best, decoded.iou_scores.shape[-1]).bool()
                    logits = self.decoder.masks(decoded, keep).float().cpu()
                    scores.append(decoded.iou_scores.gather(-1, best[:, None])[:, 0].float().cpu())
                with timer("postprocess"):
                    full = _upsampled(self.processor, logits, embedding)
                    stability.append(stability_scores(full, self.mask_threshold, self.stability_score_offset))
                    binary = full > self.mask_threshold
                    mask_boxes.append(masks_to_boxes(binary))
                    masks.extend(m.numpy() for m in binary)
                bar.update(len(chunk))
        whole = np.array([[0, 0, image.width, image.height]] * len(masks)).reshape(-1, 4)
        return GeneratedMasks(
            masks=masks, scores=torch.cat(scores).tolist(), embedding_ms=timer.ms["embedding"],
            decoder_ms=timer.ms["decoder"], postprocess_ms=timer.ms["postprocess"],
            stability_scores=torch.cat(stability).tolist(), boxes=torch.cat(mask_boxes).numpy(),
            prompts=boxes.numpy(), crop_boxes=whole, num_prompts=len(boxes), num_candidates=len(boxes),
        )


# ------------------------------------------------------------------------------------------------ helpers
class _Timer:
    """Wall time per phase (ms), summed over calls: `with timer("decoder"): ...`."""

    def __init__(self) -> None:
        self.ms = {"embedding": 0.0, "decoder": 0.0, "postprocess": 0.0}
        self.candidates = 0
        self._phase: str | None = None

    def __call__(self, phase: str) -> _Timer:
        self._phase = phase
        return self

    def __enter__(self) -> _Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.ms[self._phase] += (time.perf_counter() - self._start) * 1e3


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def update(self, count: int) -> None:
        pass


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="prompt", desc="masks", leave=False)


def _check_embedding(embedding: SamImageEmbedding | None, size: tuple[int, int]) -> None:
    if embedding is not None and tuple(embedding.original_size) != tuple(size):
        raise ValueError(f"The embedding is of a {embedding.original_size[1]}x{embedding.original_size[0]} image, "
                         f"not of this {size[1]}x{size[0]} one: pass the embedding of the same image.")


def _prompt_scale(embedding: SamImageEmbedding) -> torch.Tensor:
    """(x, y) factors from image (crop) pixels to the prompt frame, as `SamProcessor` maps prompts."""
    (height, width), (new_h, new_w) = embedding.original_size, embedding.reshaped_input_size
    return torch.tensor([new_w / width, new_h / height], dtype=torch.float64)


def _upsampled(processor, logits: torch.Tensor, embedding: SamImageEmbedding) -> torch.Tensor:
    """(K, H, W) logits at the image's size of (K, 4h, 4w) low-resolution ones (`post_process_masks`)."""
    return processor.post_process_masks(logits[None, :, None], [embedding.original_size],
                                        [embedding.reshaped_input_size], binarize=False)[0][:, 0]


def _valid_low_res(shape: tuple[int, int], embedding: SamImageEmbedding) -> tuple[int, int]:
    """Rows and columns of the low-resolution grid that cover the image (the rest is the padding of the
    square prompt frame)."""
    frame = embedding.reshaped_input_size
    side = max(frame)  # the image fills the frame along its longer side
    rows = max(1, round(shape[0] * frame[0] / side))
    cols = max(1, round(shape[1] * frame[1] / side))
    return rows, cols


__all__ = ["DEFAULT_MEMORY_BUDGET", "DEFAULT_POINTS_PER_SIDE", "GeneratedMasks", "INTERACTIVE_POINTS_PER_SIDE",
           "OUTPUT_MODES", "SamAutomaticMaskGenerator"]
