"""`evit-hf sam IMAGE (--box | --point [--negative] | --everything) --model M --out out.png`: promptable masks.

This module owns the `sam` subcommand's options and output. `M` is a released model (`efficientvit-sam-l0` ...
`efficientvit-sam-xl1`, or `sam-l0` ...: the authors' checkpoint, downloaded and converted once), a saved
folder, a Hub id, or `random:sam-l0` (random weights: a warning says the masks are then meaningless), resolved
by `evit_hf.resolve`. With point / box prompts (original-image pixels) the best-IoU mask of the multimask output
(`evit_hf.predict.SamPredictor`) is drawn over the image (semi-transparent colour and contour, prompts
marked); with `--everything` `SamAutomaticMaskGenerator` runs on a `--points-per-side` grid and every mask
gets its own colour. Prompts are checked before the encoder runs; the time of the image embedding and of
the masks is printed.
"""

from __future__ import annotations

import argparse
import time

from . import add_alpha, add_command, add_image_io, load_image, save_image

SUMMARY = "Segment an object from point / box prompts, or everything, with EfficientViT-SAM."
DESCRIPTION = ("Promptable segmentation of IMAGE with an EfficientViT-SAM (or SAM) model; writes an overlay PNG. "
               "Coordinates are in pixels of the original image.")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "sam", run, SUMMARY, DESCRIPTION)
    add_image_io(parser, "released model (efficientvit-sam-l0 ... efficientvit-sam-xl1; `evit-hf models`), saved "
                 "folder, Hub id, or random:PRESET (random weights)", "sam.png")
    prompt = parser.add_mutually_exclusive_group(required=True)
    prompt.add_argument("--box", nargs=4, type=float, metavar=("X0", "Y0", "X1", "Y1"), help="box prompt")
    prompt.add_argument(
        "--point", nargs=2, type=float, action="append", metavar=("X", "Y"), help="foreground point (repeatable)"
    )
    prompt.add_argument("--everything", action="store_true", help="automatic mask generation on a point grid")
    parser.add_argument("--negative", nargs=2, type=float, action="append", metavar=("X", "Y"),
                        help="background point (repeatable; with --point or --box)")
    parser.add_argument("--points-per-side", type=int, default=32,
                        help="--everything: grid points per side (default 32; fewer is faster)")
    parser.add_argument("--pred-iou-thresh", type=float, default=0.88,
                        help="--everything: keep masks with predicted IoU above this")
    parser.add_argument("--stability-score-thresh", type=float, default=0.95,
                        help="--everything: keep masks with stability score above this")
    add_alpha(parser, "mask colours")


def _everything(args: argparse.Namespace, image, model, processor):
    """(overlay, summary, embedding ms, mask ms) of automatic mask generation."""
    from ..predict import SamAutomaticMaskGenerator
    from ..predict.drawing import distinct_colour, draw_masks

    if args.points_per_side < 1:
        raise ValueError(f"--points-per-side must be at least 1, got {args.points_per_side}.")
    generator = SamAutomaticMaskGenerator(model, processor, args.points_per_side, args.pred_iou_thresh,
                                          args.stability_score_thresh)
    result = generator.generate(image)
    overlay = draw_masks(image, result.masks, [distinct_colour(i) for i in range(len(result.masks))], args.alpha)
    summary = f"{len(result.masks)} masks from a {args.points_per_side}x{args.points_per_side} grid"
    return overlay, summary, result.embedding_ms, result.mask_ms


def _prompted(args: argparse.Namespace, image, model, processor):
    """(overlay, summary, embedding ms, mask ms) of the best mask of the point / box prompt."""
    from ..predict import SamPredictor
    from ..predict.drawing import PROMPT_COLOUR, draw_masks, draw_prompts
    from ..predict.sam import check_prompts

    points = [list(p) for p in (args.point or [])] + [list(p) for p in (args.negative or [])]
    labels = [1] * len(args.point or []) + [0] * len(args.negative or [])
    predictor = SamPredictor(model, processor)
    check_prompts(predictor.processor, (image.height, image.width), [points] if points else None,  # fail fast
                  [labels] if points else None, [args.box] if args.box else None)
    embedding = predictor.set_image(image)
    start = time.perf_counter()
    mask, score = predictor.predict(points or None, labels or None, args.box).best()
    mask_ms = (time.perf_counter() - start) * 1e3
    mask = mask.numpy()
    overlay = draw_prompts(draw_masks(image, [mask], [PROMPT_COLOUR], args.alpha), points, labels, args.box)
    summary = f"best mask: predicted IoU {float(score):.3f}, {100 * mask.mean():.1f}% of the image"
    return overlay, summary, embedding.encode_ms, mask_ms


def run(args: argparse.Namespace) -> int:
    from ..resolve import load_model

    image = load_image(args.image)
    if args.negative and args.everything:
        raise ValueError("--negative points go with --point or --box, not --everything.")
    model, processor, _ = load_model(args.model, "mask-generation")
    overlay, summary, embed_ms, mask_ms = (_everything if args.everything else _prompted)(args, image, model,
                                                                                          processor)
    out = save_image(overlay, args.out)
    print(f"image embedding: {embed_ms:.1f} ms; masks: {mask_ms:.1f} ms")
    print(f"wrote {out} ({overlay.width}x{overlay.height}); {summary}")
    return 0
