"""`evit-hf segment IMAGE --model M --out overlay.png`: one image's semantic segmentation as a colour overlay.

This module owns the `segment` subcommand's options and output. `M` is a released model
(`efficientvit-seg-b1-cityscapes` or `seg-b1-cityscapes`: the authors' checkpoint, downloaded and converted
once), a saved folder, a Hub id, or `random:seg-b1-cityscapes` (random weights, with a warning; to try the
command offline), resolved by `evit_hf.resolve`. The output (`evit_hf.predict.draw_segmentation`) is the
image alpha-blended with one colour per class, with a legend of the classes present (largest first, with their
pixel share) on the right.
"""

from __future__ import annotations

import argparse

from . import add_alpha, add_command, add_device, add_image_io, load_image, save_image

SUMMARY = "Segment an image and write a colour overlay with a legend."
DESCRIPTION = "Semantic segmentation of IMAGE with an EfficientViT-Seg model; writes an overlay PNG."


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "segment", run, SUMMARY, DESCRIPTION)
    add_image_io(parser, "released model (efficientvit-seg-b1-cityscapes, seg-l2-ade20k, ...; `evit-hf models`), "
                 "saved folder, Hub id, or random:PRESET (random weights)", "overlay.png")
    add_alpha(parser, "class colours")
    parser.add_argument("--short-side", type=int, default=None,
                        help="resize the short side to this (long side to a multiple of 32) instead of the "
                        "processor's own size; smaller is faster")
    add_device(parser)


def run(args: argparse.Namespace) -> int:
    from ..predict import segment_image, set_short_side
    from ..predict.drawing import class_shares, draw_segmentation
    from ..resolve import load_model

    image = load_image(args.image)
    model, processor, _ = load_model(args.model, "semantic-segmentation")
    set_short_side(processor, args.short_side)
    model.to(args.device)
    segmentation = segment_image(image, model, processor)
    canvas = draw_segmentation(image, segmentation, model.config.id2label, args.alpha)
    out = save_image(canvas, args.out)
    largest = [share.label for share in class_shares(segmentation, model.config.id2label)]
    shown = ", ".join(largest[:10]) + (f", ... ({len(largest) - 10} more)" if len(largest) > 10 else "")
    print(f"wrote {out} ({canvas.width}x{canvas.height}); {len(largest)} classes present, largest first: {shown}")
    return 0
