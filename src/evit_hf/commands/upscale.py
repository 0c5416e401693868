"""`evit-hf upscale IMAGE --out OUT.png [--model M] [--scale N] [--tile-size T] [--compare SIDE.png]`.

This module owns the `upscale` subcommand: super-resolution of one image with an EfficientViT-SR model
through the `image-super-resolution` pipeline (tiled for large images). `M` defaults to the checkpoint
embedded in the package (`evit_hf.sr_utils.embedded_sr_checkpoint()`); until the SR training run has
produced it, the command fails with a message asking for `--model`. `M` may also be a saved folder, a Hub id,
or a preset name such as `sr-light-x2` (random weights: a warning says so; an untrained model returns the
bicubic upsampling). `--compare` also writes the bicubic upsampling and the model's output side by side,
with labels. Transparent images are composited on white.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from . import load_image


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..models.efficientvit.modeling_efficientvit_sr import DEFAULT_TILE_OVERLAP, DEFAULT_TILE_SIZE

    parser = subparsers.add_parser(
        "upscale",
        help="Upscale an image with an EfficientViT super-resolution model.",
        description="Super-resolution of IMAGE (x2, x3 or x4, as the model); writes the upscaled PNG.",
    )
    parser.add_argument("image", help="input image file")
    parser.add_argument("--out", required=True, help="output image file (e.g. out.png)")
    parser.add_argument(
        "--model",
        default=None,
        help="saved folder, Hub id, or preset name (sr-light-x2, sr-light-x3, sr-light-x4, sr-ffhq-x4: random "
        "weights); default: the checkpoint embedded in evit-hf",
    )
    parser.add_argument(
        "--scale",
        type=int,
        choices=(2, 3, 4),
        default=None,
        help="expected upscaling factor (checked against the model; with a preset family such as sr-light it "
        "picks sr-light-x<scale>)",
    )
    parser.add_argument(
        "--tile-size",
        type=int,
        default=DEFAULT_TILE_SIZE,
        help=f"upscale images larger than this (input pixels) in overlapping tiles, bounding memory; 0 = one "
        f"pass (default {DEFAULT_TILE_SIZE})",
    )
    parser.add_argument(
        "--tile-overlap",
        type=int,
        default=DEFAULT_TILE_OVERLAP,
        help=f"overlap of neighbouring tiles in input pixels (default {DEFAULT_TILE_OVERLAP})",
    )
    parser.add_argument("--compare", default=None, help="also write bicubic vs model side by side to this file")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.set_defaults(func=run)


def side_by_side(bicubic, upscaled, left_label: str, right_label: str):
    """The two images next to each other on white, each with its label above it (drawn with PIL)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    header, gap = 24, 8
    canvas = Image.new("RGB", (bicubic.width + gap + upscaled.width, header + max(bicubic.height, upscaled.height)),
                       (255, 255, 255))
    canvas.paste(bicubic.convert("RGB"), (0, header))
    canvas.paste(upscaled.convert("RGB"), (bicubic.width + gap, header))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 5), left_label, fill=(0, 0, 0), font=font)
    draw.text((bicubic.width + gap + 4, 5), right_label, fill=(0, 0, 0), font=font)
    return canvas


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    from ..models.efficientvit.modeling_efficientvit_sr import check_tile_arguments
    from ..models.efficientvit.pipeline_efficientvit_sr import SuperResolutionPipeline
    from ..sr_utils import EMBEDDED_SR_NAME, load_sr_model

    if args.tile_size < 0:
        raise ValueError(f"--tile-size must be >= 0 (0 = no tiling), got {args.tile_size}.")
    if args.tile_size:
        check_tile_arguments(args.tile_size, args.tile_overlap)
    image = load_image(args.image, mode=None)  # alpha kept: the processor composites it on white
    model, processor = load_sr_model(args.model, scale=args.scale)
    upscaler = SuperResolutionPipeline(model=model, image_processor=processor, device=args.device)
    start = time.perf_counter()
    result = upscaler(image, tile_size=args.tile_size or None, tile_overlap=args.tile_overlap)
    elapsed = time.perf_counter() - start
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.save(out)
    scale = model.config.upscale
    print(f"wrote {out} ({result.width}x{result.height}, x{scale} of {image.width}x{image.height}) in {elapsed:.2f} s")
    if args.compare:
        rgb = processor.post_process_super_resolution(processor(image, return_tensors="pt")["pixel_values"])[0]
        bicubic = rgb.resize(result.size, Image.BICUBIC)
        name = args.model or EMBEDDED_SR_NAME
        canvas = side_by_side(bicubic, result, f"bicubic x{scale}", f"EfficientViT-SR x{scale} ({Path(name).name})")
        compare = Path(args.compare)
        compare.parent.mkdir(parents=True, exist_ok=True)
        canvas.save(compare)
        print(f"wrote {compare} (bicubic | model, {canvas.width}x{canvas.height})")
    return 0
