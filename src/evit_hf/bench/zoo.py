"""The model zoo table of `evit-hf demo`: parameters, MACs and measured latency of every backbone preset."""

from __future__ import annotations

import torch

from ..models.efficientvit import PRESETS, EfficientViTConfig, EfficientViTForImageClassification, EfficientViTModel
from ..progress import track
from .core import count_macs, count_parameters, markdown_table, time_callable

# Presets with an original ImageNet classifier; the others (l0, xl0, xl1) exist as SAM backbones only.
CLASSIFIER_PRESETS = ("b0", "b1", "b2", "b3", "l1", "l2", "l3")


def zoo_rows(presets: list[str] | None = None, resolution: int = 224, budget_s: float = 1.5) -> list[dict]:
    rows = []
    presets = list(presets or PRESETS)
    for name in track(presets, "model zoo", unit="model"):
        config = EfficientViTConfig.from_preset(name, num_labels=1000)
        with torch.device("meta"):
            classifier = name in CLASSIFIER_PRESETS
            meta_model = (EfficientViTForImageClassification if classifier else EfficientViTModel)(config)
        params = count_parameters(meta_model)
        macs = count_macs(meta_model, (1, 3, resolution, resolution))
        model = (EfficientViTForImageClassification if classifier else EfficientViTModel)(config).eval()
        x = torch.randn(1, 3, resolution, resolution)
        with torch.inference_mode():
            timing = time_callable(lambda m=model, x=x: m(x), warmup=1, budget_s=budget_s, min_runs=3, max_runs=20)
        rows.append({
            "preset": name,
            "model": "classifier" if classifier else "backbone",
            "params_m": params / 1e6,
            "gmacs": macs / 1e9,
            "resolution": resolution,
            **timing,
        })
    return rows


def format_zoo(rows: list[dict]) -> str:
    return markdown_table(rows, [
        ("preset", "preset"), ("model", "model"), ("params_m", "params (M)"), ("gmacs", "GMACs"),
        ("resolution", "input"), ("median_ms", "median ms"), ("min_ms", "min ms"), ("runs", "runs"),
    ])
