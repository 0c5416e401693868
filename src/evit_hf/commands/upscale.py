"""`evit-hf upscale IMAGE --out OUT.png [--model M] [--scale N] [--tile-size T] [--compare SIDE.png]`.

This module owns the `upscale` subcommand's options and output: super-resolution of one image with an
EfficientViT-SR model (`evit_hf.predict.upscale_image`, tiled for large images). `M` defaults to the
checkpoint embedded in the package (`evit_hf.sr_utils.embedded_sr_checkpoint()`); until the SR training run
has produced it, the command fails with a message asking for `--model`. `M` may also be a released model
(`efficientvit-sr-light-x2`, the same shipped checkpoint), a saved folder, a Hub id, or `random:sr-light-x4`
(random weights: a warning says so; an untrained model returns the bicubic upsampling), resolved by
`evit_hf.resolve`. `--compare` also writes the bicubic upsampling and the
model's output side by side, with labels. Transparent images are composited on white.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from . import add_command, add_device, add_image_io, load_image, save_image

SUMMARY = "Upscale an image with an EfficientViT super-resolution model."
DESCRIPTION = "Super-resolution of IMAGE (x2, x3 or x4, as the model); writes the upscaled PNG."


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..models.efficientvit.modeling_efficientvit_sr import DEFAULT_TILE_OVERLAP, DEFAULT_TILE_SIZE

    parser = add_command(subparsers, "upscale", run, SUMMARY, DESCRIPTION)
    add_image_io(parser, "released model (efficientvit-sr-light-x2), saved folder, Hub id, or random:PRESET "
                 "(random:sr-light-x3, random:sr-light-x4, random:sr-ffhq-x4: random weights); default: the "
                 "checkpoint embedded in evit-hf", None, model_required=False)
    parser.add_argument(
        "--scale", type=int, choices=(2, 3, 4), default=None,
        help="expected upscaling factor (checked against the model; with a family name such as random:sr-light it "
        "picks sr-light-x<scale>)",
    )
    parser.add_argument(
        "--tile-size", type=int, default=DEFAULT_TILE_SIZE,
        help=f"upscale images larger than this (input pixels) in overlapping tiles, bounding memory; 0 = one "
        f"pass (default {DEFAULT_TILE_SIZE})",
    )
    parser.add_argument("--tile-overlap", type=int, default=DEFAULT_TILE_OVERLAP,
                        help=f"overlap of neighbouring tiles in input pixels (default {DEFAULT_TILE_OVERLAP})")
    parser.add_argument("--compare", default=None, help="also write bicubic vs model side by side to this file")
    add_device(parser)


def run(args: argparse.Namespace) -> int:
    from ..models.efficientvit.modeling_efficientvit_sr import check_tile_arguments
    from ..predict import bicubic_comparison, upscale_image
    from ..resolve import load_model
    from ..sr_utils import EMBEDDED_SR_NAME

    if args.tile_size < 0:
        raise ValueError(f"--tile-size must be >= 0 (0 = no tiling), got {args.tile_size}.")
    if args.tile_size:
        check_tile_arguments(args.tile_size, args.tile_overlap)
    image = load_image(args.image, mode=None)  # alpha kept: the processor composites it on white
    model, processor, _ = load_model(args.model, "image-to-image", scale=args.scale)
    start = time.perf_counter()
    result = upscale_image(image, model, processor, args.tile_size, args.tile_overlap, args.device)
    elapsed = time.perf_counter() - start
    out = save_image(result, args.out)
    scale = model.config.upscale
    print(f"wrote {out} ({result.width}x{result.height}, x{scale} of {image.width}x{image.height}) in {elapsed:.2f} s")
    if args.compare:
        name = Path(args.model or EMBEDDED_SR_NAME).name
        canvas = bicubic_comparison(image, result, processor, scale, name)
        compare = save_image(canvas, args.compare)
        print(f"wrote {compare} (bicubic | model, {canvas.width}x{canvas.height})")
    return 0
