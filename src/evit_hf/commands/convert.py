"""`evit-hf convert`: an original (or timm) checkpoint -> a Hub-ready folder (`evit_hf.convert.folder`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_command

SUMMARY = "Convert an original EfficientViT checkpoint into a Hub-ready folder."
DESCRIPTION = (
    "Reads a .pt (weights_only) or .safetensors checkpoint in the original mit-han-lab layout (or timm's with "
    "--timm) and writes safetensors weights, config.json, the processor config and the model code (for "
    "trust_remote_code=True)."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "convert", run, SUMMARY, DESCRIPTION)
    parser.add_argument("--variant", required=True, help="e.g. cls-b1, seg-l2-cityscapes, sam-xl1")
    parser.add_argument("--checkpoint", required=True, type=Path, help="original checkpoint file")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--timm", action="store_true", help="the checkpoint uses timm's efficientvit_mit layout")
    parser.add_argument("--resolution", type=int, default=None,
                        help="classifiers: the checkpoint's evaluation resolution (processor and config; default 224)")


def run(args: argparse.Namespace) -> int:
    from ..convert.folder import convert_to_folder

    out = convert_to_folder(args.variant, args.checkpoint, args.out, args.timm, args.resolution)
    print(f"Wrote {args.variant} to {out}")
    return 0
