"""`evit-hf make-dataset KIND --out DIR`: write a built-in synthetic dataset so training works offline.

Each kind maps to a writer in `evit_hf.data` and a line telling how to train on the result: `synthetic-seg`
(shapes semantic segmentation, parquet shards + `id2label.json`), `synthetic-sa1b` (the same kind of scenes as
SA-1B-format instance masks, COCO RLE, for EfficientViT-SAM) and `skimage-photos` (real photographs for
super-resolution). The size options apply to the synthetic kinds.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from . import add_command

SUMMARY = "Write a built-in synthetic dataset (parquet shards) for offline training."


def _write_synthetic(writer: Callable[..., Path], kind: str, args: argparse.Namespace,
                     default_counts: tuple[int, int]) -> Path:
    """Run a synthetic writer with the size options (or the kind's default counts) and list what it wrote."""
    counts = {"train": args.num_train or default_counts[0], "validation": args.num_validation or default_counts[1]}
    out = writer(args.out, num_train=counts["train"], num_validation=counts["validation"],
                 image_size=args.image_size, num_shards=args.num_shards, seed=args.seed,
                 progress=not args.no_progress)
    print(f"wrote {kind} dataset to {out} ({args.image_size}x{args.image_size} images, seed {args.seed}):")
    for split, count in counts.items():
        shards = sorted((out / "data").glob(f"{split}-*.parquet"))
        size_mb = sum(path.stat().st_size for path in shards) / 1e6
        print(f"  {split}: {count} samples in {len(shards)} shard(s), {size_mb:.1f} MB")
        for path in shards:
            print(f"    {path}")
    return out


def _make_synthetic_sa1b(args: argparse.Namespace) -> int:
    from ..data.sa1b import write_synthetic_sa1b

    out = _write_synthetic(write_synthetic_sa1b, "synthetic-sa1b", args, (1000, 100))
    print(f"  {out / 'README.md'}")
    print(f"train on it with:\n  accelerate launch training/sam.py --stage finetune --dataset {out}")
    return 0


def _make_synthetic_seg(args: argparse.Namespace) -> int:
    from ..data.synthetic import SYNTHETIC_SEG_LABELS, write_synthetic_segmentation

    out = _write_synthetic(write_synthetic_segmentation, "synthetic-seg", args, (2000, 200))
    print(f"  {out / 'id2label.json'}: {len(SYNTHETIC_SEG_LABELS)} classes: {', '.join(SYNTHETIC_SEG_LABELS)}")
    print(f"  {out / 'README.md'}")
    print(f"train on it with:\n  accelerate launch training/seg.py --dataset {out}")
    return 0


def _make_skimage_photos(args: argparse.Namespace) -> int:
    from ..data.photos import HELD_OUT_PHOTOS, TRAIN_PHOTOS, write_skimage_photos

    out = write_skimage_photos(args.out)
    print(f"wrote skimage-photos dataset to {out}: train {len(TRAIN_PHOTOS)} photographs, validation (held out) "
          f"{len(HELD_OUT_PHOTOS)}: {', '.join(HELD_OUT_PHOTOS)}")
    print(f"train on it with:\n  accelerate launch training/sr.py --dataset {out}")
    return 0


# kind -> (help, maker); a maker writes the dataset from the parsed arguments and prints what it wrote.
KINDS: dict[str, tuple[str, Callable[[argparse.Namespace], int]]] = {
    "synthetic-seg": (
        "shapes on textured backgrounds, 5 classes (background, disk, rectangle, triangle, ring)",
        _make_synthetic_seg,
    ),
    "synthetic-sa1b": (
        "the same kind of scenes as SA-1B-format instance masks (COCO RLE), for EfficientViT-SAM training",
        _make_synthetic_sa1b,
    ),
    "skimage-photos": (
        "the real photographs scikit-image ships (13 train, 3 held out), for super-resolution",
        _make_skimage_photos,
    ),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    kinds_help = "; ".join(f"{name}: {help_text}" for name, (help_text, _) in KINDS.items())
    description = f"Write a built-in synthetic dataset in the Hugging Face datasets layout. Kinds: {kinds_help}."
    parser = add_command(subparsers, "make-dataset", run, SUMMARY, description)
    parser.add_argument("kind", choices=list(KINDS), help="which dataset to write")
    parser.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    parser.add_argument("--num-train", type=int, default=None,
                        help="training samples (default: 2000 for synthetic-seg, 1000 for synthetic-sa1b)")
    parser.add_argument("--num-validation", type=int, default=None,
                        help="validation samples (default: 200 for synthetic-seg, 100 for synthetic-sa1b)")
    parser.add_argument("--image-size", type=int, default=128, help="image side in pixels, >= 32 (default: 128)")
    parser.add_argument("--num-shards", type=int, default=4, help="training parquet shards (default: 4)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--no-progress", action="store_true", help="do not show a progress bar")


def run(args: argparse.Namespace) -> int:
    _, make = KINDS[args.kind]
    return make(args)
