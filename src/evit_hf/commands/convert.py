"""`evit-hf convert`: an original (or timm) checkpoint -> a Hub-ready folder."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert", help="Convert an original EfficientViT checkpoint into a Hub-ready folder.",
        description="Reads a .pt (weights_only) or .safetensors checkpoint in the original mit-han-lab layout "
                    "(or timm's with --timm) and writes safetensors weights, config.json, the processor "
                    "config and the model code (for trust_remote_code=True).",
    )
    parser.add_argument("--variant", required=True, help="e.g. cls-b1, seg-l2-cityscapes, sam-xl1")
    parser.add_argument("--checkpoint", required=True, type=Path, help="original checkpoint file")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--timm", action="store_true", help="the checkpoint uses timm's efficientvit_mit layout")
    parser.set_defaults(func=run)


def convert_to_folder(variant: str, checkpoint: Path, out: Path, timm: bool = False) -> Path:
    from ..convert import from_original, from_timm, get_variant, load_checkpoint
    from ..hub_utils import save_pretrained_with_code

    spec = get_variant(variant)
    state_dict = load_checkpoint(checkpoint)
    model = (from_timm if timm else from_original)(state_dict, variant)
    processor = spec.build_processor() if spec.build_processor else None
    return save_pretrained_with_code(model, out, image_processor=processor)


def run(args: argparse.Namespace) -> int:
    out = convert_to_folder(args.variant, args.checkpoint, args.out, args.timm)
    print(f"Wrote {args.variant} to {out}")
    return 0
