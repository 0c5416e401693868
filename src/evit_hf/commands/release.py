"""`evit-hf release`: original checkpoints -> Hub-ready repo folders with model cards (and `--push`).

Three modes: one checkpoint (`--variant V [--checkpoint X] --out DIR`; without `--checkpoint` the authors'
released file, downloaded and converted through `evit_hf.hub`), a folder of original checkpoints
(`--checkpoints-dir DIR --out ROOT`: one `ROOT/<repo name>/` each, the variant read from the file name), and
the cards of every release (`--cards-only --out hub_cards`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_command

SUMMARY = "Make Hub-ready repo folders (weights, config, processor, code, model card)."
DESCRIPTION = (
    "Convert original EfficientViT checkpoints into Hub repos named ORG/efficientvit-b1-r224, "
    "ORG/efficientvit-seg-l2-cityscapes, ORG/efficientvit-sam-xl1, ORG/efficientvit-sr-light-x2, each with a model "
    "card (README.md); --push uploads them. In --checkpoints-dir mode the variant comes from the file name, as the "
    "original authors name their files (efficientvit_b1_r224.pt, efficientvit_seg_l2_cityscapes.pt, "
    "efficientvit_sam_xl1.pt) or as the repo (efficientvit-b1-r224.pt)."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "release", run, SUMMARY, DESCRIPTION)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--variant", help="e.g. cls-b1, seg-l2-cityscapes, sam-xl1, sr-light-x2")
    mode.add_argument("--checkpoints-dir", type=Path, help="a folder of original checkpoints (batch mode)")
    mode.add_argument("--cards-only", action="store_true", help="write the model card of every release")
    parser.add_argument("--checkpoint", type=Path,
                        help="original checkpoint file (.pt / .safetensors; default: the authors' released file, "
                             "downloaded); super-resolution: a saved folder (default for sr-light-x2: the checkpoint "
                             "shipped in evit-hf)")
    parser.add_argument("--out", required=True, type=Path,
                        help="output folder (batch mode and --cards-only: one sub-folder per repo)")
    parser.add_argument("--resolution", type=int, help="classifiers: the checkpoint's resolution (default 224)")
    parser.add_argument("--org", help="Hub organisation or user (default: $EVIT_HF_ORG, else evit-hf)")
    parser.add_argument("--timm", action="store_true", help="the checkpoints use timm's efficientvit_mit layout")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")
    parser.add_argument("--recount", action="store_true",
                        help="--cards-only: count params / MACs again instead of reusing OUT/model_stats.json")
    parser.add_argument("--push", "--push-to-hub", dest="push", action="store_true",
                        help="upload each folder to ORG/<repo name> (huggingface_hub; token from HF_TOKEN or login)")
    parser.add_argument("--private", action="store_true", help="with --push: create private repos")
    parser.add_argument("--token", help="with --push: a Hub token (default: huggingface_hub's own lookup)")


def run(args: argparse.Namespace) -> int:
    from ..release import release_batch, release_checkpoint, resolve_org, write_cards

    org = resolve_org(args.org)
    if args.cards_only:
        if args.push or args.checkpoint:
            raise ValueError("--cards-only writes cards only: it takes neither --checkpoint nor --push.")
        written = write_cards(args.out, org, reuse_stats=not args.recount)
        print(f"Wrote {len(written)} model cards to {args.out}")
        return 0
    if args.checkpoints_dir is not None:
        if args.checkpoint or args.resolution:
            raise ValueError("--checkpoints-dir reads variants and resolutions from the file names: "
                             "drop --checkpoint / --resolution.")
        folders = release_batch(args.checkpoints_dir, args.out, org, args.timm, args.overwrite)
    else:
        folders = [release_checkpoint(args.variant, args.checkpoint, args.out, org, args.resolution, args.timm,
                                      args.overwrite)]
    for folder in folders:
        repo_id = f"{org}/{folder.name}" if args.checkpoints_dir is not None else _repo_id(args, org)
        print(f"Wrote {repo_id} to {folder}")
        if args.push:
            from ..release import push_folder

            print(f"Pushed {repo_id}: {push_folder(folder, repo_id, args.token, args.private)}")
    return 0


def _repo_id(args: argparse.Namespace, org: str) -> str:
    from ..release import get_target

    return get_target(args.variant, args.resolution).repo_id(org)
