"""`evit-hf sam IMAGE (--box | --point [--negative] | --everything) --model M --out out.png`: promptable masks.

This module owns the `sam` subcommand. `M` is a saved folder or Hub id (`AutoModel` + `AutoImageProcessor`),
or a preset name `sam-l0` ... `sam-xl1`, which builds the architecture with random weights (a warning says
the masks are then meaningless). With point / box prompts (original-image pixels) the best-IoU mask of the
multimask output is drawn over the image (semi-transparent colour and contour, prompts marked); with
`--everything` the mask-generation pipeline runs on a `--points-per-side` grid and every mask gets its own
colour. Prompts are validated with the processor's `check_prompts`; the time of the image embedding and of
the masks is printed. `predict_mask` is `embed_image` (the encoder, once per image) then `decode_mask` (prompt
encoder and mask decoder on that embedding), which `evit-hf app` calls per click.
"""

from __future__ import annotations

import argparse
import colorsys
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import load_image

PROMPT_COLOUR = (30, 144, 255)
POSITIVE_COLOUR = (0, 220, 0)
NEGATIVE_COLOUR = (230, 0, 0)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sam",
        help="Segment an object from point / box prompts, or everything, with EfficientViT-SAM.",
        description="Promptable segmentation of IMAGE with an EfficientViT-SAM (or SAM) model; writes an overlay "
        "PNG. Coordinates are in pixels of the original image.",
    )
    parser.add_argument("image", help="input image file")
    prompt = parser.add_mutually_exclusive_group(required=True)
    prompt.add_argument("--box", nargs=4, type=float, metavar=("X0", "Y0", "X1", "Y1"), help="box prompt")
    prompt.add_argument(
        "--point", nargs=2, type=float, action="append", metavar=("X", "Y"), help="foreground point (repeatable)"
    )
    prompt.add_argument("--everything", action="store_true", help="automatic mask generation on a point grid")
    parser.add_argument(
        "--negative",
        nargs=2,
        type=float,
        action="append",
        metavar=("X", "Y"),
        help="background point (repeatable; with --point or --box)",
    )
    parser.add_argument(
        "--model", required=True, help="saved folder, Hub id, or preset name (sam-l0 ... sam-xl1: random weights)"
    )
    parser.add_argument("--out", default="sam.png", help="output image (default: sam.png)")
    parser.add_argument(
        "--points-per-side",
        type=int,
        default=32,
        help="--everything: grid points per side (default 32; fewer is faster)",
    )
    parser.add_argument(
        "--pred-iou-thresh", type=float, default=0.88, help="--everything: keep masks with predicted IoU above this"
    )
    parser.add_argument(
        "--stability-score-thresh",
        type=float,
        default=0.95,
        help="--everything: keep masks with stability score above this",
    )
    parser.add_argument("--alpha", type=float, default=0.5, help="opacity of the mask colours (0-1)")
    parser.set_defaults(func=run)


def load_model_and_processor(name: str):
    """(model, image processor) for a folder / Hub id, or a preset name with random weights (warned)."""
    from ..models.efficientvit.configuration_efficientvit_sam import SAM_PRESETS, EfficientViTSamConfig
    from ..models.efficientvit.image_processing_efficientvit_sam import EfficientViTSamImageProcessor
    from ..models.efficientvit.modeling_efficientvit_sam import EfficientViTSamModel

    if name in SAM_PRESETS:
        print(
            f"warning: {name!r} is a preset name: the model has random weights, so the masks are meaningless. "
            "Pass a converted folder or Hub id (`evit-hf convert`) for real masks.",
            file=sys.stderr,
        )
        config = EfficientViTSamConfig.from_preset(name)
        return EfficientViTSamModel(config).eval(), EfficientViTSamImageProcessor.for_config(config)
    from transformers import AutoImageProcessor, AutoModel

    try:
        model = AutoModel.from_pretrained(name)
    except OSError as err:
        raise ValueError(
            f"cannot load model {name!r} (not a folder, Hub id or preset {sorted(SAM_PRESETS)}): {err}"
        ) from err
    if not hasattr(model, "get_image_embeddings") or not hasattr(model, "mask_decoder"):
        raise ValueError(f"{name!r} is a {type(model).__name__}, not a SAM-style model.")
    try:
        processor = AutoImageProcessor.from_pretrained(name)
    except (OSError, ValueError):
        processor = None
    if processor is None or not hasattr(processor, "post_process_masks"):
        if not isinstance(model, EfficientViTSamModel):
            raise ValueError(f"{name!r} has no SAM image processor.")
        processor = EfficientViTSamImageProcessor.for_config(model.config)
    return model.eval(), processor


def _checker(processor):
    """Something with `check_prompts` (ours; a default EfficientViT-SAM processor for other SAM processors)."""
    if hasattr(processor, "check_prompts"):
        return processor
    from ..models.efficientvit.image_processing_efficientvit_sam import EfficientViTSamImageProcessor

    return EfficientViTSamImageProcessor()


@dataclass
class SamImageEmbedding:
    """One image's encoder output with the sizes its prompts and masks are mapped with (original pixels)."""

    embeddings: Any               # (1, C, h, w) torch tensor from `model.get_image_embeddings`
    original_sizes: Any           # (1, 2) tensor: (height, width) of the original image
    reshaped_input_sizes: Any     # (1, 2) tensor: the image's size in the prompt frame

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the original image."""
        return int(self.original_sizes[0, 0]), int(self.original_sizes[0, 1])


def embed_image(image, model, processor) -> tuple[SamImageEmbedding, float]:
    """The image embedding of a PIL image (run the encoder once, then `decode_mask` per prompt) and its ms."""
    import torch

    inputs = processor(image, return_tensors="pt")
    with torch.inference_mode():
        start = time.perf_counter()
        embeddings = model.get_image_embeddings(inputs["pixel_values"])
        embed_ms = (time.perf_counter() - start) * 1e3
    return SamImageEmbedding(embeddings, inputs["original_sizes"], inputs["reshaped_input_sizes"]), embed_ms


def decode_mask(embedding: SamImageEmbedding, model, processor, points=None, labels=None,
                box=None) -> tuple[np.ndarray, float, float]:
    """The best-IoU mask (H, W) bool of one prompt (original pixels) on a precomputed embedding, its IoU score
    and the ms of the prompt encoder + mask decoder + post-processing.

    Points and boxes are checked with `check_prompts` and mapped to the prompt frame as `SamProcessor` does
    (x * new_w / old_w, y * new_h / old_h)."""
    import torch

    height, width = embedding.size
    _checker(processor).check_prompts(
        (height, width),
        input_points=[points] if points else None,
        input_labels=[labels] if points else None,
        input_boxes=[box] if box is not None else None,
    )
    new_h, new_w = (int(v) for v in embedding.reshaped_input_sizes[0])
    scale = np.array([new_w / width, new_h / height], dtype=np.float64)
    prompts = {}
    if points:
        prompts["input_points"] = torch.from_numpy(np.asarray(points, np.float64) * scale).float()[None, None]
        prompts["input_labels"] = torch.tensor(labels, dtype=torch.int64)[None, None]
    if box is not None:
        prompts["input_boxes"] = torch.from_numpy(np.asarray(box, np.float64) * np.tile(scale, 2)).float()[None, None]
    with torch.inference_mode():
        start = time.perf_counter()
        outputs = model(image_embeddings=embedding.embeddings, multimask_output=True, **prompts)
        masks = processor.post_process_masks(
            outputs.pred_masks, embedding.original_sizes, embedding.reshaped_input_sizes
        )[0]
        mask_ms = (time.perf_counter() - start) * 1e3
    scores = outputs.iou_scores[0, 0]
    best = int(scores.argmax())
    return masks[0, best].numpy().astype(bool), float(scores[best]), mask_ms


def predict_mask(image, model, processor, points=None, labels=None, box=None) -> tuple[np.ndarray, float, dict]:
    """The best-IoU mask (H, W) bool of one prompt (original pixels), its IoU score and the timings in ms."""
    _checker(processor).check_prompts(  # before the encoder runs: bad prompts fail fast
        (image.height, image.width),
        input_points=[points] if points else None,
        input_labels=[labels] if points else None,
        input_boxes=[box] if box is not None else None,
    )
    embedding, embed_ms = embed_image(image, model, processor)
    mask, score, mask_ms = decode_mask(embedding, model, processor, points, labels, box)
    return mask, score, {"embedding_ms": embed_ms, "mask_ms": mask_ms}


def generate_masks(image, model, processor, points_per_side: int = 32, pred_iou_thresh: float = 0.88,
                   stability_score_thresh: float = 0.95) -> tuple[list[np.ndarray], list[float], dict]:
    """Automatic mask generation on a `points_per_side` grid: masks (H, W) bool, scores, timings in ms."""
    from transformers import pipeline

    if points_per_side < 1:
        raise ValueError(f"--points-per-side must be at least 1, got {points_per_side}.")
    generator = pipeline("mask-generation", model=model, image_processor=processor, points_per_batch=64)
    embed_times: list[float] = []
    original = model.get_image_embeddings

    def timed_embeddings(*args, **kwargs):
        start = time.perf_counter()
        result = original(*args, **kwargs)
        embed_times.append((time.perf_counter() - start) * 1e3)
        return result

    model.get_image_embeddings = timed_embeddings  # instance attribute: times the pipeline's embedding call
    try:
        start = time.perf_counter()
        result = generator(
            image,
            points_per_crop=points_per_side,
            pred_iou_thresh=pred_iou_thresh,
            stability_score_thresh=stability_score_thresh,
        )
        total_ms = (time.perf_counter() - start) * 1e3
    finally:
        del model.get_image_embeddings
    masks = [np.asarray(m, dtype=bool) for m in result["masks"]]
    scores = [float(s) for s in result["scores"]]
    embed_ms = sum(embed_times)
    return masks, scores, {"embedding_ms": embed_ms, "mask_ms": total_ms - embed_ms}


def distinct_colour(index: int) -> tuple[int, int, int]:
    """A colour per index: golden-ratio hue steps, alternating brightness."""
    hue = (index * 0.618033988749895) % 1.0
    value = 0.95 if index % 2 == 0 else 0.75
    return tuple(round(c * 255) for c in colorsys.hsv_to_rgb(hue, 0.8, value))


def contour(mask: np.ndarray, width: int = 2) -> np.ndarray:
    """The inner boundary (`width` pixels) of a boolean mask."""
    eroded = mask.copy()
    for _ in range(width):
        padded = np.pad(eroded, 1, constant_values=False)
        eroded = (
            padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
        )
    return mask & ~eroded


def draw_masks(image, masks: list[np.ndarray], colours: list[tuple[int, int, int]], alpha: float = 0.5):
    """The image with each mask blended in its colour (largest first) and outlined."""
    from PIL import Image

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
    canvas = np.asarray(image.convert("RGB"), dtype=np.float32).copy()
    for i in sorted(range(len(masks)), key=lambda k: -int(masks[k].sum())):
        colour = np.array(colours[i], dtype=np.float32)
        canvas[masks[i]] = (1 - alpha) * canvas[masks[i]] + alpha * colour
        canvas[contour(masks[i])] = colour
    return Image.fromarray(canvas.round().clip(0, 255).astype(np.uint8))


def draw_prompts(overlay, points=None, labels=None, box=None):
    """Points (green foreground, red background) and the box drawn on the overlay, in place."""
    from PIL import ImageDraw

    draw = ImageDraw.Draw(overlay)
    radius = max(3, round(min(overlay.size) / 100))
    for (x, y), label in zip(points or [], labels or []):
        colour = POSITIVE_COLOUR if label == 1 else NEGATIVE_COLOUR
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour, outline=(255, 255, 255))
    if box is not None:
        draw.rectangle(list(box), outline=POSITIVE_COLOUR, width=max(2, radius // 2))
    return overlay


def run(args: argparse.Namespace) -> int:
    image = load_image(args.image)
    if args.negative and args.everything:
        raise ValueError("--negative points go with --point or --box, not --everything.")
    model, processor = load_model_and_processor(args.model)
    out = Path(args.out)
    if args.everything:
        masks, scores, timing = generate_masks(
            image, model, processor, args.points_per_side, args.pred_iou_thresh, args.stability_score_thresh
        )
        overlay = draw_masks(image, masks, [distinct_colour(i) for i in range(len(masks))], args.alpha)
        summary = f"{len(masks)} masks from a {args.points_per_side}x{args.points_per_side} grid"
    else:
        points = [list(p) for p in (args.point or [])] + [list(p) for p in (args.negative or [])]
        labels = [1] * len(args.point or []) + [0] * len(args.negative or [])
        mask, score, timing = predict_mask(image, model, processor, points or None, labels or None, args.box)
        overlay = draw_prompts(draw_masks(image, [mask], [PROMPT_COLOUR], args.alpha), points, labels, args.box)
        summary = f"best mask: predicted IoU {score:.3f}, {100 * mask.mean():.1f}% of the image"
    out.parent.mkdir(parents=True, exist_ok=True)
    overlay.save(out)
    print(f"image embedding: {timing['embedding_ms']:.1f} ms; masks: {timing['mask_ms']:.1f} ms")
    print(f"wrote {out} ({overlay.width}x{overlay.height}); {summary}")
    return 0
