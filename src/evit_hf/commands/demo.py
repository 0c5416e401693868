"""`evit-hf demo`: the model zoo measured on this machine, then a short segmentation training run, offline.

1. The zoo: parameters, MACs and measured latency of every backbone preset (random weights).
2. Training: a B0-sized EfficientViT-Seg model trained from scratch on the built-in synthetic dataset (the
   same trainer as `accelerate launch training/seg.py`), with the held-out mIoU it reaches.
3. The trained model segments a held-out image into an overlay picture.
4. The shipped x2 super-resolution checkpoint upscales a held-out photograph, next to bicubic.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_command, save_image

SUMMARY = "Model zoo speeds, a short segmentation training run, an overlay and an upscaled photo (offline)."


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "demo", run, SUMMARY)
    parser.add_argument("--presets", nargs="*", help="presets to show (default: all backbones)")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--budget", type=float, default=1.5, help="seconds of timing per model")
    parser.add_argument("--out", default="evit-hf-demo", help="folder for the trained model and the overlay")
    parser.add_argument("--train-epochs", type=int, default=3,
                        help="epochs over the synthetic dataset (3: about 2.5 minutes on 2 CPU cores; 0: skip)")
    parser.add_argument("--train-steps", type=int, default=None, help="stop training after this many steps")


def show_zoo(args: argparse.Namespace) -> None:
    from ..bench.core import environment
    from ..bench.zoo import format_zoo, zoo_rows

    print("EfficientViT model zoo (random weights; latency = batch 1, fp32, eval, torch.inference_mode)")
    env = environment()
    print("setting: " + ", ".join(f"{k}={v}" for k, v in env.items()))
    rows = zoo_rows(args.presets, resolution=args.resolution, budget_s=args.budget)
    print(format_zoo(rows))


RECORD = "train-seg-synthetic.json"  # the demo's training figures: docs/results/ holds the published run


def train_and_segment(out: Path, epochs: int, max_steps: int | None = None) -> dict:
    """Train on the synthetic dataset, record the figures (`out/train-seg-synthetic.json`), then write the overlay
    of a held-out image; returns the final evaluation."""
    import torch
    from datasets import load_dataset

    from ..predict import segment_image
    from ..predict.drawing import draw_segmentation
    from ..release.render import train_seg_table
    from ..resolve import load_model
    from ..training.data import synthetic_segmentation_dir
    from ..training.segmentation import SegmentationArguments, SegmentationTask
    from ..training.trainer import Trainer

    print(f"\nTraining EfficientViT-Seg B0 from scratch on the synthetic dataset ({epochs} epochs) ...", flush=True)
    # The defaults are the synthetic recipe (configs/train/seg-synthetic.yaml).
    args = SegmentationArguments(output_dir=str(out / "seg-synthetic"), num_epochs=epochs, max_steps=max_steps,
                                 checkpoint_every_epoch=False)
    trainer = Trainer(SegmentationTask(args), args)
    results = trainer.train()
    record = write_training_record(out / RECORD, trainer.state.evaluations, results, args, torch.get_num_threads())
    model, processor, _ = load_model(args.output_dir, "semantic-segmentation")
    held_out = load_dataset(str(synthetic_segmentation_dir()), split="validation", streaming=True)
    example = next(iter(held_out.skip(3)))
    segmentation = segment_image(example["image"], model, processor)
    overlay = draw_segmentation(example["image"].resize((256, 256)), _upscale(segmentation, 256),
                                model.config.id2label)
    overlay_path = save_image(overlay, out / "overlay.png")
    final = record.rows[-1]
    print(f"\nHeld-out IoU (%) after each epoch; {_threads(final['torch_threads'])}, seed {final['seed']}:\n\n"
          f"{train_seg_table(record)}\n\nHeld-out mIoU {final['mean_iou']:.2f}% after {final['train_s']} s of training "
          f"({final['steps']} steps); model in {args.output_dir}; overlay of a held-out image: {overlay_path}; the "
          f"figures: {out / RECORD} (copied to docs/results/, `evit-hf docs render` shows them in the docs)")
    return results


def write_training_record(path: Path, evaluations: list[dict], results: dict, args, threads: int):
    """The demo's training figures as a results file (`evit_hf.release.results`): one row per evaluation (epoch,
    steps, mIoU and per-class IoU in %, rounded as the trainer prints them), the last with the training time,
    the torch thread count and the seed. Copied to docs/results/, `evit-hf docs render` puts it in the docs."""
    from datetime import date

    from ..bench.core import machine
    from ..release.results import read_results, write_results

    def percent(value: float) -> float:
        return round(100 * value, 2)

    rows = [{"epoch": record["epoch"], "steps": record["step"], "mean_iou": percent(record["eval/mean_iou"]),
             "pixel_accuracy": percent(record["eval/pixel_accuracy"]),
             "per_class_iou": {key.split("/", 2)[2]: percent(value) for key, value in record.items()
                               if key.startswith("eval/per_class_iou/")}}
            for record in evaluations]
    rows[-1].update(train_s=round(results["train_seconds"]), torch_threads=threads, seed=args.seed)
    command = f"evit-hf demo --train-epochs {args.num_epochs}" + (
        f" --train-steps {args.max_steps}" if args.max_steps is not None else "")
    setting = (f"fp32, {_threads(threads)} (the figures are bitwise repeatable at a fixed thread count, not "
               f"across counts), seed {args.seed}; a B0-sized seg model from scratch, batch {args.batch_size}, "
               f"{args.crop_size[0]}x{args.crop_size[1]} crops, AdamW {args.learning_rate:g}; IoU in % on the "
               "held-out split after each epoch; training time includes the evaluations")
    written = write_results(path, rows, title="Segmentation training on the built-in synthetic set (`evit-hf demo`)",
                            command=command, date=date.today().isoformat(), machine=machine(), setting=setting)
    return read_results(written)


def _threads(count: int) -> str:
    return f"{count} torch thread{'s' if count != 1 else ''}"


def upscale_held_out(out: Path, photo: str = "chelsea") -> dict[str, float] | None:
    """The shipped x2 SR checkpoint on a held-out photograph, against bicubic: PSNR-Y and a side-by-side image.

    The photograph is halved with bicubic downscaling (the degradation the model was trained for), upscaled
    back both ways and compared with the original (border crop 2).
    """
    from PIL import Image

    from ..data.photos import load_skimage_photo
    from ..metrics.super_resolution import psnr_y
    from ..predict import upscale_image
    from ..predict.drawing import side_by_side
    from ..resolve import load_model
    from ..sr_utils import has_embedded_sr_checkpoint

    if not has_embedded_sr_checkpoint():
        print("\nSkipping super-resolution: the embedded x2 checkpoint is not installed.")
        return None
    original = load_skimage_photo(photo)
    original = original.crop((0, 0, original.width - original.width % 2, original.height - original.height % 2))
    small = original.resize((original.width // 2, original.height // 2), Image.BICUBIC)
    model, processor, _ = load_model(None, "image-to-image")
    ours = upscale_image(small, model, processor)
    bicubic = small.resize(original.size, Image.BICUBIC)
    scores = {"bicubic": psnr_y(bicubic, original, 2), "efficientvit-sr-x2": psnr_y(ours, original, 2)}
    path = save_image(side_by_side(bicubic, ours, f"bicubic x2: {scores['bicubic']:.2f} dB",
                                   f"EfficientViT-SR x2 (shipped): {scores['efficientvit-sr-x2']:.2f} dB"),
                      out / "sr_side_by_side.png")
    print(f"\nSuper-resolution x2 of the held-out photograph {photo!r} (PSNR-Y vs the original): bicubic "
          f"{scores['bicubic']:.2f} dB, EfficientViT-SR {scores['efficientvit-sr-x2']:.2f} dB "
          f"({scores['efficientvit-sr-x2'] - scores['bicubic']:+.2f} dB); side by side: {path}")
    return scores


def _upscale(segmentation, size: int):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.fromarray(segmentation.astype(np.uint8)).resize((size, size), Image.NEAREST))


def run(args: argparse.Namespace) -> int:
    import torch

    show_zoo(args)
    if args.train_epochs > 0:
        train_and_segment(Path(args.out), args.train_epochs, args.train_steps)
    upscale_held_out(Path(args.out))
    print(f"\nConvert an original checkpoint: evit-hf convert --variant cls-b1 --checkpoint efficientvit_b1_r224.pt "
          f"--out efficientvit-b1-r224   (torch {torch.__version__})")
    return 0
