"""`evit-hf sam IMAGE (--box ... | --point [--negative] | --everything) --model M --out out.png`: promptable masks.

This module owns the `sam` subcommand's options and output. `M` is a released model (`efficientvit-sam-l0` ...
`efficientvit-sam-xl1`, or `sam-l0` ...: the authors' checkpoint, downloaded and converted once), a saved
folder, a Hub id, or `random:sam-l0` (random weights: a warning says the masks are then meaningless), resolved
by `evit_hf.resolve`. With point / box prompts (original-image pixels) the best-IoU mask of the multimask output
(`evit_hf.predict.SamPredictor`) is drawn over the image (semi-transparent colour and contour, prompts
marked); several `--box`es are segmented in one batched call, one mask each; with `--everything`
`SamAutomaticMaskGenerator` runs on a `--points-per-side` grid (segment-anything's options, a progress bar
on a terminal unless `--quiet`) and every mask gets its own colour; `--json` writes the masks as
segment-anything records (uncompressed COCO RLE). Prompts are checked before the encoder runs; the time of
the image embedding and of the masks (decoder, post-processing) is printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import add_alpha, add_command, add_image_io, load_image, save_image

SUMMARY = "Segment an object from point / box prompts, or everything, with EfficientViT-SAM."
DESCRIPTION = ("Promptable segmentation of IMAGE with an EfficientViT-SAM (or SAM) model; writes an overlay PNG. "
               "Coordinates are in pixels of the original image.")


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..predict.mask_generation import INTERACTIVE_POINTS_PER_SIDE as GRID

    parser = add_command(subparsers, "sam", run, SUMMARY, DESCRIPTION)
    add_image_io(parser, "released model (efficientvit-sam-l0 ... efficientvit-sam-xl1; `evit-hf models`), saved "
                 "folder, Hub id, or random:PRESET (random weights)", "sam.png")
    prompt = parser.add_mutually_exclusive_group(required=True)
    prompt.add_argument("--box", nargs=4, type=float, action="append", metavar=("X0", "Y0", "X1", "Y1"),
                        help="box prompt (repeatable: one mask per box, the single-mask output, in one batched call)")
    prompt.add_argument(
        "--point", nargs=2, type=float, action="append", metavar=("X", "Y"), help="foreground point (repeatable)"
    )
    prompt.add_argument("--everything", action="store_true", help="automatic mask generation on a point grid")
    parser.add_argument("--negative", nargs=2, type=float, action="append", metavar=("X", "Y"),
                        help="background point (repeatable; with --point or one --box)")
    everything = parser.add_argument_group("--everything (segment-anything's automatic mask generator)")
    everything.add_argument("--points-per-side", type=int, default=GRID,
                            help=f"grid points per side (default {GRID}, as the app; segment-anything uses 32)")
    everything.add_argument("--pred-iou-thresh", type=float, default=0.88,
                            help="keep masks with predicted IoU above this (default 0.88)")
    everything.add_argument("--stability-score-thresh", type=float, default=0.95,
                            help="keep masks with stability score at least this (default 0.95)")
    everything.add_argument("--stability-score-offset", type=float, default=1.0,
                            help="logit offset of the stability score (default 1)")
    everything.add_argument("--box-nms-thresh", type=float, default=0.7,
                            help="box IoU above which a lower-scored mask is a duplicate (default 0.7)")
    everything.add_argument("--crop-n-layers", type=int, default=0,
                            help="also run on 4^i crops for i = 1..N (default 0: the whole image only)")
    everything.add_argument("--crop-overlap-ratio", type=float, default=512 / 1500,
                            help="overlap of the crops of the first crop layer (fraction of the image side)")
    everything.add_argument("--crop-n-points-downscale-factor", type=int, default=1,
                            help="crop layer i has points-per-side / factor^i points per side (default 1)")
    everything.add_argument("--min-mask-region-area", type=int, default=0,
                            help="fill holes and drop islands smaller than this many pixels (default 0: off)")
    everything.add_argument("--single-mask", action="store_true",
                            help="one mask per point instead of three (multimask output off)")
    everything.add_argument("--points-per-batch", type=int,
                            help="prompts decoded at once (default: what 1 GiB of working memory holds)")
    parser.add_argument("--json", type=Path, help="--everything / several --box: also write the masks as "
                        "segment-anything records (uncompressed COCO RLE, XYWH boxes)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_alpha(parser, "mask colours")


def _write_records(result, path: Path | None) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result.records("uncompressed_rle")))


def _generator(args: argparse.Namespace, model, processor):
    from ..predict import SamAutomaticMaskGenerator

    return SamAutomaticMaskGenerator(
        model, processor, args.points_per_side, args.pred_iou_thresh, args.stability_score_thresh,
        args.points_per_batch, stability_score_offset=args.stability_score_offset,
        box_nms_thresh=args.box_nms_thresh, crop_n_layers=args.crop_n_layers,
        crop_overlap_ratio=args.crop_overlap_ratio,
        crop_n_points_downscale_factor=args.crop_n_points_downscale_factor,
        min_mask_region_area=args.min_mask_region_area, multimask_output=not args.single_mask,
        progress=sys.stdout.isatty() and not args.quiet,
    )


def _everything(args: argparse.Namespace, image, model, processor):
    """(overlay, summary, embedding ms, mask ms) of automatic mask generation."""
    from ..predict.drawing import distinct_colour, draw_masks

    if args.points_per_side < 1:
        raise ValueError(f"--points-per-side must be at least 1, got {args.points_per_side}.")
    result = _generator(args, model, processor).generate(image)
    _write_records(result, args.json)
    overlay = draw_masks(image, result.masks, [distinct_colour(i) for i in range(len(result.masks))], args.alpha)
    summary = (f"{len(result.masks)} masks from a {args.points_per_side}x{args.points_per_side} grid "
               f"({result.num_prompts} prompts, {result.num_candidates} above the predicted-IoU threshold)")
    return overlay, summary, result


def _boxes(args: argparse.Namespace, image, model, processor):
    """(overlay, summary, result) of several box prompts: one mask each, one batched call."""
    from ..predict.drawing import distinct_colour, draw_masks, draw_prompts

    result = _generator(args, model, processor).segment_boxes(image, args.box)
    _write_records(result, args.json)
    overlay = draw_masks(image, result.masks, [distinct_colour(i) for i in range(len(result.masks))], args.alpha)
    for box in args.box:
        overlay = draw_prompts(overlay, [], [], box)
    scores = ", ".join(f"{score:.3f}" for score in result.scores)
    return overlay, f"{len(result.masks)} masks, one per box (predicted IoU {scores})", result


def _prompted(args: argparse.Namespace, image, model, processor):
    """(overlay, summary, embedding ms, mask ms) of the best mask of the point / box prompt."""
    from ..predict import SamPredictor
    from ..predict.drawing import PROMPT_COLOUR, draw_masks, draw_prompts
    from ..predict.sam import check_prompts

    points = [list(p) for p in (args.point or [])] + [list(p) for p in (args.negative or [])]
    labels = [1] * len(args.point or []) + [0] * len(args.negative or [])
    box = args.box[0] if args.box else None
    predictor = SamPredictor(model, processor)
    check_prompts(predictor.processor, (image.height, image.width), [points] if points else None,  # fail fast
                  [labels] if points else None, [box] if box else None)
    embedding = predictor.set_image(image)
    start = time.perf_counter()
    mask, score = predictor.predict(points or None, labels or None, box).best()
    mask_ms = (time.perf_counter() - start) * 1e3
    mask = mask.numpy()
    overlay = draw_prompts(draw_masks(image, [mask], [PROMPT_COLOUR], args.alpha), points, labels, box)
    summary = f"best mask: predicted IoU {float(score):.3f}, {100 * mask.mean():.1f}% of the image"
    return overlay, summary, embedding.encode_ms, mask_ms


def run(args: argparse.Namespace) -> int:
    from ..resolve import load_model

    image = load_image(args.image)
    if args.negative and args.everything:
        raise ValueError("--negative points go with --point or --box, not --everything.")
    if args.box and len(args.box) > 1 and args.negative:
        raise ValueError("--negative points go with one --box; several boxes are segmented one mask each.")
    if args.json and not (args.everything or (args.box and len(args.box) > 1)):
        raise ValueError("--json writes the masks of --everything or of several --box prompts.")
    model, processor, _ = load_model(args.model, "mask-generation")
    if args.everything or len(args.box or []) > 1:
        overlay, summary, result = (_everything if args.everything else _boxes)(args, image, model, processor)
        timing = (f"image embedding: {result.embedding_ms:.1f} ms; masks: {result.mask_ms:.1f} ms (decoder "
                  f"{result.decoder_ms:.1f} ms, post-processing {result.postprocess_ms:.1f} ms)")
    else:
        overlay, summary, embed_ms, mask_ms = _prompted(args, image, model, processor)
        timing = f"image embedding: {embed_ms:.1f} ms; masks: {mask_ms:.1f} ms"
    out = save_image(overlay, args.out)
    print(timing)
    print(f"wrote {out} ({overlay.width}x{overlay.height}); {summary}")
    if args.json:
        print(f"wrote {args.json}")
    return 0
