"""Token-mixer training comparison: the same segmentation recipe trained once per mixer, as a markdown table.

This module owns `python -m evit_hf.bench.mixer_training`: `run()` trains the synthetic-segmentation recipe
(`configs/train/seg-synthetic.yaml`, which equals `SegmentationArguments`' defaults: a B0-sized model from
scratch, 128x128 crops, batch 8, AdamW 2e-3, 3 epochs) once per token mixer and seed with the same data,
steps and schedule, each in a fresh process (`training/seg.py`'s entry point with `--token_mixer`), and reads
back the held-out mIoU and the training time; `format_table()` renders the runs and a per-mixer summary.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .core import markdown_table, measured_setting

_ENTRY = "import sys; from evit_hf.training.segmentation import main; sys.exit(main(sys.argv[1:]))"


def _mixers() -> tuple[str, ...]:
    from ..models.efficientvit.configuration_efficientvit import TOKEN_MIXERS

    return TOKEN_MIXERS


def train_one(mixer: str, output_dir: Path, overrides: Sequence[str] = (), timeout_s: float = 3600) -> dict[str, Any]:
    """Train one mixer in a fresh process (recipe defaults plus `overrides`, `--field value` strings) and return
    its row: `mixer`, `params_m`, `steps`, `train_s` (the trainer's clock: training and per-epoch evaluation),
    `wall_s` (the whole process), `mean_iou`, `pixel_accuracy` and `per_class_iou`."""
    import subprocess

    output_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-c", _ENTRY, "--token_mixer", mixer, "--output_dir", str(output_dir),
               "--checkpoint_every_epoch", "false", "--progress", "false", *overrides]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    wall = time.perf_counter() - started
    (output_dir / "train.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return {"mixer": mixer, "wall_s": wall, "note": f"failed (exit {result.returncode}): {tail[:200]}"}
    results = json.loads((output_dir / "eval_results.json").read_text())
    from ..models.efficientvit import EfficientViTConfig, EfficientViTForSemanticSegmentation

    config = EfficientViTConfig.from_pretrained(output_dir)
    with torch.device("meta"):
        params = sum(p.numel() for p in EfficientViTForSemanticSegmentation(config).parameters())
    return {
        "mixer": mixer, "token_mixer": config.token_mixer, "params_m": params / 1e6, "steps": results["global_step"],
        "train_s": results["train_seconds"], "wall_s": wall, "mean_iou": 100 * results["mean_iou"],
        "pixel_accuracy": 100 * results["pixel_accuracy"],
        "per_class_iou": {k: 100 * v for k, v in results.get("per_class_iou", {}).items()},
    }


def run(mixers: Sequence[str] | None = None, output_dir: str | Path = "outputs/mixer-training",
        overrides: Sequence[str] = (), seeds: Sequence[int] = (0,), progress: bool = True) -> list[dict]:
    """Train every mixer (default: all four) once per seed with the same budget; one row per run (see
    `train_one`, plus `seed`), in `output_dir/<mixer>-seed<seed>`.

    `overrides` are extra `training/seg.py` arguments applied to every run (e.g. `["--num_epochs", "2"]`);
    the runs are sequential, each alone in its process. The seed sets the initialisation, the data order and
    the augmentation alike.
    """
    mixers = list(mixers) if mixers is not None else list(_mixers())
    unknown = [m for m in mixers if m not in _mixers()]
    if unknown:
        raise ValueError(f"Unknown token mixers {unknown}; expected some of {list(_mixers())}.")
    rows = []
    for seed in seeds:
        for mixer in mixers:
            row = train_one(mixer, Path(output_dir) / f"{mixer}-seed{seed}", [*overrides, "--seed", str(seed)])
            row["seed"] = seed
            if progress:
                shown = row.get("note") or (f"mIoU {row['mean_iou']:.1f}% in {row['train_s']:.0f} s "
                                            f"({row['steps']} steps)")
                print(f"{mixer} (seed {seed}): {shown}", file=sys.stderr, flush=True)
            rows.append(row)
    return rows


def summary_rows(rows: list[dict]) -> list[dict]:
    """One row per mixer over its seeds: mean training time, each seed's mIoU and their mean."""
    by_mixer: dict[str, list[dict]] = {}
    for row in rows:
        if "mean_iou" in row:
            by_mixer.setdefault(row["mixer"], []).append(row)
    summary = []
    for mixer, runs in by_mixer.items():
        ious = [run["mean_iou"] for run in runs]
        summary.append({
            "mixer": mixer, "params_m": runs[0]["params_m"], "steps": runs[0]["steps"], "runs": len(runs),
            "train_s": sum(run["train_s"] for run in runs) / len(runs),
            "seed_ious": " / ".join(f"{iou:.1f}" for iou in ious), "mean_iou": sum(ious) / len(ious),
        })
    return summary


COLUMNS = [("mixer", "mixer"), ("seed", "seed"), ("params_m", "params M"), ("steps", "steps"),
           ("train_s", "training time s"), ("mean_iou", "held-out mIoU %"), ("pixel_accuracy", "pixel acc. %"),
           ("note", "note")]
SUMMARY_COLUMNS = [("mixer", "mixer"), ("params_m", "params M"), ("steps", "steps"), ("runs", "seeds"),
                   ("train_s", "mean training time s"), ("seed_ious", "mIoU % per seed"),
                   ("mean_iou", "mean mIoU %")]


def format_table(rows: list[dict]) -> str:
    """The per-mixer summary over seeds, every run (with per-class IoU columns) as markdown, and the setting."""
    classes = list(dict.fromkeys(name for row in rows for name in row.get("per_class_iou", {})))
    flat = [{**row, **{f"iou/{name}": row.get("per_class_iou", {}).get(name) for name in classes}} for row in rows]
    columns = COLUMNS[:-1] + [(f"iou/{name}", name) for name in classes] + COLUMNS[-1:]
    setting = measured_setting([{"threads": torch.get_num_threads()}])
    return (markdown_table(summary_rows(rows), SUMMARY_COLUMNS) + "\n\n" + markdown_table(flat, columns)
            + "\n\nSame recipe, data, steps and schedule for every mixer, and the same seeds (initialisation, data "
            "order, augmentation); synthetic segmentation set: 2000 training / 200 held-out 128x128 images; IoU in "
            "% on the held-out split. training time: the trainer's clock, per-epoch evaluation included."
            f"\nsetting: {setting}")


def main(argv: list[str] | None = None) -> int:  # python -m evit_hf.bench.mixer_training [--out table.md]
    import argparse

    parser = argparse.ArgumentParser(description="Train the synthetic segmentation recipe once per token mixer.")
    parser.add_argument("--mixers", nargs="*")
    parser.add_argument("--output-dir", default="outputs/mixer-training")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0], help="one run per mixer and seed")
    parser.add_argument("--out", help="also write the markdown table here")
    parser.add_argument("--json", help="also write the rows as JSON here")
    args, overrides = parser.parse_known_args(argv)
    rows = run(args.mixers, args.output_dir, overrides, seeds=args.seeds)
    table = format_table(rows)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["run", "train_one", "format_table", "summary_rows"]
