"""`evit-hf convert`: an original (or timm) checkpoint -> a Hub-ready folder (`evit_hf.convert.folder`).

Without `--checkpoint`, the authors' released file of the variant (with `--timm`: timm's mirror) is downloaded,
converted and verified through the cache of released models (`evit_hf.hub`), and its folder copied to `--out`.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from . import add_command

SUMMARY = "Convert an original EfficientViT checkpoint into a Hub-ready folder."
DESCRIPTION = (
    "Reads a .pt (weights_only) or .safetensors checkpoint in the original mit-han-lab layout (or timm's with "
    "--timm) and writes safetensors weights, config.json, the processor config and the model code (for "
    "trust_remote_code=True). Without --checkpoint, the authors' released checkpoint of the variant is "
    "downloaded from the Hub."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "convert", run, SUMMARY, DESCRIPTION)
    parser.add_argument("--variant", required=True, help="e.g. cls-b1, seg-l2-cityscapes, sam-xl1")
    parser.add_argument("--checkpoint", type=Path,
                        help="original checkpoint file (default: download the authors' released checkpoint)")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--timm", action="store_true", help="the checkpoint uses timm's efficientvit_mit layout "
                        "(without --checkpoint: download timm's mirror)")
    parser.add_argument("--resolution", type=int, default=None,
                        help="classifiers: the checkpoint's evaluation resolution (processor and config; default 224)")


def _released_folder(args: argparse.Namespace) -> Path:
    """The cached folder of the released checkpoint of `--variant` (downloaded and converted once)."""
    from ..hub import prepare
    from ..hub.catalog import released_for_target
    from ..release.catalog import get_target

    if args.variant.startswith("sr-"):
        raise ValueError(f"{args.variant} has no original checkpoint to convert (the SR checkpoint ships in evit-hf: "
                         f"`evit-hf release --variant sr-light-x2` writes its folder).")
    return prepare(released_for_target(get_target(args.variant, args.resolution), timm=args.timm))


def run(args: argparse.Namespace) -> int:
    if args.checkpoint is None:
        if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
            raise ValueError(f"--out {str(args.out)!r} exists and is not an empty folder.")
        folder = _released_folder(args)
        shutil.copytree(folder, args.out, dirs_exist_ok=True)
        print(f"Wrote {args.variant} (the authors' released checkpoint, from {folder}) to {args.out}")
        return 0
    from ..convert.folder import convert_to_folder

    out = convert_to_folder(args.variant, args.checkpoint, args.out, args.timm, args.resolution)
    print(f"Wrote {args.variant} to {out}")
    return 0
