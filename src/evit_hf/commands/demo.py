"""`evit-hf demo`: the model zoo on this machine (parameters, MACs, measured latency), offline."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="Show the model zoo measured on this machine (offline).")
    parser.add_argument("--presets", nargs="*", help="presets to show (default: all backbones)")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--budget", type=float, default=1.5, help="seconds of timing per model")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..bench.core import environment
    from ..bench.zoo import format_zoo, zoo_rows

    print("EfficientViT model zoo (random weights; latency = batch 1, fp32, eval, torch.inference_mode)")
    env = environment()
    print("setting: " + ", ".join(f"{k}={v}" for k, v in env.items()))
    rows = zoo_rows(args.presets, resolution=args.resolution, budget_s=args.budget)
    print(format_zoo(rows))
    print(f"\nConvert an original checkpoint: evit-hf convert --variant cls-b1 --checkpoint efficientvit_b1_r224.pt "
          f"--out efficientvit-b1-r224   (torch {torch.__version__})")
    return 0
