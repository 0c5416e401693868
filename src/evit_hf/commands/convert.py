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
    parser.add_argument("--resolution", type=int, default=None,
                        help="classifiers: the checkpoint's evaluation resolution (processor and config; default 224)")
    parser.set_defaults(func=run)


def convert_to_folder(
    variant: str, checkpoint: Path, out: Path, timm: bool = False, resolution: int | None = None
) -> Path:
    """Convert `checkpoint` of `variant` and save it with its processor and code; returns the folder.

    `resolution` (classifiers only) is the resolution the checkpoint was evaluated at: it sets the
    processor's resize / crop and `config.image_size`.
    """
    from ..convert import from_original, from_timm, get_variant, load_checkpoint
    from ..hub_utils import save_pretrained_with_code

    spec = get_variant(variant)
    if resolution is not None and not variant.startswith("cls-"):
        raise ValueError(f"--resolution applies to classification variants only, not {variant!r}.")
    state_dict = load_checkpoint(checkpoint)
    model = (from_timm if timm else from_original)(state_dict, variant)
    if resolution is not None:
        from ..models.efficientvit import EfficientViTImageProcessor

        model.config.image_size = resolution
        processor = EfficientViTImageProcessor.for_variant(variant, resolution=resolution)
    else:
        processor = spec.build_processor() if spec.build_processor else None
    return save_pretrained_with_code(model, out, image_processor=processor)


def run(args: argparse.Namespace) -> int:
    out = convert_to_folder(args.variant, args.checkpoint, args.out, args.timm, args.resolution)
    print(f"Wrote {args.variant} to {out}")
    return 0
