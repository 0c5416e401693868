"""`evit-hf eval TASK --model M --data D`: the paper's evaluation protocols on any dataset.

Tasks: `seg` (mIoU, per-class IoU), `cls` (top-1/top-5), `sam` (COCO mask AP from box prompts, mIoU per
number of clicks) and `sr` (PSNR/SSIM on Y). Each prints a results table and writes JSON (`--out`).
`seg`, `cls` and `sr` take `--onnx FILE` to score an `evit-hf export` file (fp32 or INT8) of the model in
ONNX Runtime under the same protocol. The work is done by `evit_hf.evaluation`; this module only maps options
to it.
"""

from __future__ import annotations

import argparse

from . import add_command, add_device

TASKS = ("seg", "cls", "sam", "sr")
SUMMARY = "Evaluate a model with the paper's protocol (seg, cls, sam, sr); prints a table, writes JSON."
DESCRIPTION = ("Evaluate a released model, a saved folder or a Hub id on a dataset (Hub id, local folder or parquet "
               "files) with the original evaluation protocol.")
# `evit-hf eval` task -> the resolver's task (the model name is checked against it before any data is read).
MODEL_TASKS = {"seg": "semantic-segmentation", "cls": "image-classification", "sam": "mask-generation",
               "sr": "image-to-image"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "eval", run, SUMMARY, DESCRIPTION)
    tasks = parser.add_subparsers(dest="task", required=True)

    def task_parser(name: str, help_text: str, data_help: str, onnx: bool = True) -> argparse.ArgumentParser:
        sub = add_command(tasks, name, run, help_text)
        sub.add_argument("--model", required=True,
                         help="released model (`evit-hf models`), saved folder or Hub id (from_pretrained)")
        sub.add_argument("--data", required=True, help=data_help)
        sub.add_argument("--out", default="results.json", help="results JSON (default: results.json)")
        sub.add_argument("--max-samples", type=int, default=None, help="evaluate only the first N images")
        add_device(sub)
        if onnx:
            sub.add_argument("--onnx", default=None, metavar="FILE",
                             help="score this `evit-hf export` file of --model (e.g. its *_int8.onnx) in ONNX "
                             "Runtime instead of the PyTorch model, with the same preprocessing and metric")
        return sub

    dataset_help = "Hub dataset id, local folder or parquet file/glob"
    seg = task_parser("seg", "Semantic segmentation: mIoU and per-class IoU.", dataset_help)
    _split_and_columns(seg, label_column="annotation")
    seg.add_argument("--reduce-labels", action="store_true",
                     help="label 0 is 'other' (ignored), the rest shift down by one (ADE20K)")
    seg.add_argument("--cityscapes-label-ids", action="store_true",
                     help="labels are Cityscapes labelIds (*_gtFine_labelIds.png): map them to the 19 trainIds")
    seg.add_argument("--short-side", type=int, default=None,
                     help="resize the short side to this, the long side to a multiple of 32 (ADE20K: 512); "
                     "default: full resolution (Cityscapes)")
    seg.add_argument("--ignore-index", type=int, default=255, help="label value that is not scored (255)")
    seg.add_argument("--max-pixels", type=int, default=None,
                     help="sliding-window inference for (resized) images with more pixels than this")
    seg.add_argument("--window", type=int, default=1024, help="sliding window side (multiple of 32)")
    seg.add_argument("--stride", type=int, default=768, help="sliding window stride")

    cls = task_parser("cls", "Image classification: top-1 / top-5 accuracy.", dataset_help)
    _split_and_columns(cls, label_column="label")
    cls.add_argument("--image-size", type=int, default=224, help="evaluation resolution (224)")
    cls.add_argument("--crop-pct", type=float, default=1.0,
                     help="center-crop ratio: 0.95 for B1, 1.0 for B2/B3/L (the original's)")
    cls.add_argument("--batch-size", type=int, default=32)

    sam = task_parser("sam", "Zero-shot instance segmentation with SAM prompts: COCO mask AP and click mIoU.",
                      "COCO instances JSON (with --images), or an SA-1B-format dataset (annotations column)",
                      onnx=False)
    sam.add_argument("--images", default=None, help="image folder of a COCO JSON (file_name is relative to it)")
    sam.add_argument("--split", default="validation", help="split of an SA-1B-format dataset (validation)")
    sam.add_argument("--detections", default=None,
                     help="COCO results JSON of a detector (image_id, bbox XYWH, score, category_id): its boxes "
                     "are the prompts; default: ground-truth boxes")
    sam.add_argument("--points", type=int, nargs="*", default=None, metavar="N",
                     help="also run the interactive protocol and report mIoU after N clicks (no N: 1 3 5)")
    sam.add_argument("--max-dets", type=int, default=None,
                     help="detections scored per image (default: 100 for COCO, 300 for LVIS ground truth)")

    sr = task_parser("sr", "Super-resolution: PSNR / SSIM on Y with a border crop of the scale.",
                     "folder of high-resolution images (or one with HR/ and LR*/ sub-folders)")
    sr.add_argument("--lr", default=None, help="folder of the matching low-resolution inputs; default: "
                    "an LR*/ (or LR*/X{scale}/) sub-folder of --data if present, else bicubic downscaling")
    sr.add_argument("--scale", type=int, default=None, help="upscaling factor (default: the model's)")
    sr.add_argument("--tile-size", type=int, default=0, help="tiled inference tile side (0: whole image)")
    sr.add_argument("--tile-overlap", type=int, default=32, help="tile overlap in pixels")


def _split_and_columns(parser: argparse.ArgumentParser, label_column: str) -> None:
    parser.add_argument("--split", default="validation", help="dataset split (validation)")
    parser.add_argument("--image-column", default="image", help="image column (image)")
    parser.add_argument("--label-column", default=label_column, help=f"label column ({label_column})")


def evaluate(args: argparse.Namespace):
    """The `EvalResult` of the parsed `evit-hf eval` options."""
    common = {"max_samples": args.max_samples, "device": args.device}
    if args.task == "seg":
        from ..evaluation.segmentation import SegmentationSettings, evaluate_segmentation

        settings = SegmentationSettings(short_side=args.short_side, reduce_labels=args.reduce_labels,
                                        cityscapes_label_ids=args.cityscapes_label_ids,
                                        ignore_index=args.ignore_index, max_pixels=args.max_pixels,
                                        window=args.window, stride=args.stride)
        return evaluate_segmentation(args.model, args.data, split=args.split, image_column=args.image_column,
                                     label_column=args.label_column, settings=settings, onnx=args.onnx, **common)
    if args.task == "cls":
        from ..evaluation.classification import evaluate_classification

        return evaluate_classification(args.model, args.data, split=args.split, image_column=args.image_column,
                                       label_column=args.label_column, image_size=args.image_size,
                                       crop_pct=args.crop_pct, batch_size=args.batch_size, onnx=args.onnx,
                                       **common)
    if args.task == "sam":
        from ..evaluation.sam import evaluate_sam

        return evaluate_sam(args.model, args.data, images=args.images, split=args.split,
                            detections=args.detections,
                            clicks=[1, 3, 5] if args.points == [] else args.points, max_dets=args.max_dets, **common)
    from ..evaluation.super_resolution import evaluate_super_resolution

    return evaluate_super_resolution(args.model, args.data, lr=args.lr, scale=args.scale, tile_size=args.tile_size,
                                     tile_overlap=args.tile_overlap, onnx=args.onnx, **common)


def run(args: argparse.Namespace) -> int:
    from ..evaluation import write_results
    from ..resolve import find_source

    find_source(args.model, MODEL_TASKS[args.task])  # a wrong name fails before the dataset is read
    result = evaluate(args)
    print(f"{result.task}: {result.model} on {result.data}")
    print(result.table)
    print(f"wrote {write_results(result, args.out)}")
    return 0
