"""EfficientViT-SAM latency against transformers' SAM ViT-B, measured in the same run (`evit-hf bench sam`).

This module owns the SAM benchmark: `run()` returns rows and `format_table()` renders them. Rows of kind
`encoder`: image-encoder latency (batch 1, fp32, eval, `torch.inference_mode`) of each EfficientViT-SAM
variant at its own resolution (L: 512, XL: 1024) and of SAM ViT-B (`reference.peers.sam_vit_b_model`) at 1024,
random weights, its `get_image_embeddings`; `speedup_vs_vitb` is ViT-B ms / ours ms; params and encoder GMACs
(counted on the meta device). Rows of kind `prompt`: prompt to mask (one point with multimask output, one box)
from precomputed embeddings. Row of kind `amg`: one run of `predict.SamAutomaticMaskGenerator` on a
`points_per_side` grid (random weights keep few masks, so NMS / RLE work is lighter than with real weights).
ViT-B on a 2-core CPU takes tens of seconds per call: every timing does one warm-up call and then at least
one timed call, more while `budget_s` lasts.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..predict import SamAutomaticMaskGenerator
from ..predict.sam import default_processor
from ..progress import track
from ..reference.peers import sam_vit_b_model
from ..resolve import preset_model
from .core import count_parameters, gmacs, markdown_table, time_callable

DEFAULT_PRESETS = ("sam-l0", "sam-l1", "sam-l2", "sam-xl0", "sam-xl1")
REFERENCE = "SAM ViT-B (transformers)"


def _time(fn: Callable[[], object], budget_s: float) -> dict[str, float]:
    with torch.inference_mode():
        return time_callable(fn, warmup=1, budget_s=budget_s, min_runs=1)


def _encode(model: torch.nn.Module, pixels: torch.Tensor, store: dict) -> torch.Tensor:
    store["embeddings"] = model.get_image_embeddings(pixels)
    return store["embeddings"]


def _prompt_rows(name: str, model: torch.nn.Module, embeddings: torch.Tensor, budget_s: float) -> list[dict]:
    """Point and box prompt -> masks latency from precomputed embeddings (prompt frame 1024)."""
    point = torch.tensor([[[[512.0, 384.0]]]])
    label = torch.ones(1, 1, 1, dtype=torch.long)
    box = torch.tensor([[[200.0, 150.0, 700.0, 600.0]]])
    cases = {
        "1 point (multimask)": lambda: model(
            image_embeddings=embeddings, input_points=point, input_labels=label, multimask_output=True
        ),
        "1 box": lambda: model(image_embeddings=embeddings, input_boxes=box, multimask_output=False),
    }
    return [{"kind": "prompt", "model": name, "prompt": prompt, **_time(fn, budget_s)} for prompt, fn in cases.items()]


def _amg_row(preset: str, model: torch.nn.Module, points_per_side: int) -> dict:
    """One timed run of automatic mask generation on a 512x512 natural image."""
    from PIL import Image

    try:
        from skimage.data import astronaut

        image = Image.fromarray(astronaut())
    except ImportError:
        image = Image.new("RGB", (512, 512), (120, 90, 60))
    result = SamAutomaticMaskGenerator(model, default_processor(model), points_per_side).generate(image)
    return {
        "kind": "amg",
        "model": f"EfficientViT-SAM-{preset.removeprefix('sam-').upper()}",
        "grid": f"{points_per_side}x{points_per_side}",
        "image": f"{image.width}x{image.height}",
        "masks": len(result.masks),
        "median_ms": result.embedding_ms + result.mask_ms,
        "runs": 1,
    }


def run(
    presets: list[str] | tuple[str, ...] | None = None,
    budget_s: float = 5.0,
    reference: bool = True,
    prompt_preset: str | None = None,
    amg_points_per_side: int | None = 32,
) -> list[dict]:
    """Benchmark rows (see the module docstring); `reference=False` skips ViT-B, `amg_points_per_side=None` AMG.

    `prompt_preset` (default: the first preset) is the variant whose prompt-to-mask latency is measured; AMG
    runs on `sam-l0` when it is among the presets, else on the first one.
    """
    from ..models.efficientvit import SAM_PRESETS

    presets = list(presets or DEFAULT_PRESETS)
    unknown = [p for p in presets if p not in SAM_PRESETS]
    if unknown:
        raise ValueError(f"unknown SAM preset(s) {unknown}; choose from {sorted(SAM_PRESETS)}.")
    prompt_preset = prompt_preset or presets[0]
    amg_preset = "sam-l0" if "sam-l0" in presets else presets[0]
    rows: list[dict] = []
    prompt_rows: list[dict] = []
    amg_rows: list[dict] = []
    store: dict[str, torch.Tensor] = {}  # the last image embeddings, reused for the prompt rows
    torch.manual_seed(0)
    if reference:
        sam = sam_vit_b_model()
        pixels = torch.randn(1, 3, 1024, 1024)
        rows.append({
            "kind": "encoder",
            "model": REFERENCE,
            "resolution": 1024,
            "params_m": count_parameters(sam.vision_encoder) / 1e6,
            "gmacs": gmacs(sam.vision_encoder, (1, 3, 1024, 1024)),
            **_time(lambda: _encode(sam, pixels, store), budget_s),
        })
        prompt_rows += _prompt_rows(REFERENCE, sam, store["embeddings"], budget_s)
        del sam
    for preset in track(presets, "bench sam", unit="model"):
        model = preset_model(preset)
        resolution = model.config.encoder_image_size
        pixels = torch.randn(1, 3, resolution, resolution)
        name = f"EfficientViT-SAM-{preset.removeprefix('sam-').upper()}"
        rows.append({
            "kind": "encoder",
            "model": name,
            "resolution": resolution,
            "params_m": count_parameters(model.vision_encoder) / 1e6,
            "gmacs": gmacs(model.vision_encoder, (1, 3, resolution, resolution)),
            **_time(lambda m=model, x=pixels: _encode(m, x, store), budget_s),
        })
        if preset == prompt_preset:
            prompt_rows += _prompt_rows(name, model, store["embeddings"], budget_s)
        if preset == amg_preset and amg_points_per_side:
            amg_rows.append(_amg_row(preset, model, amg_points_per_side))
    if reference:
        vitb_ms = rows[0]["median_ms"]
        for row in rows:
            row["speedup_vs_vitb"] = vitb_ms / row["median_ms"]
    return rows + prompt_rows + amg_rows


def format_table(rows: list[dict]) -> str:
    """Markdown tables: image encoders (with the ViT-B ratio), prompt-to-mask latency, automatic masks."""
    parts = []
    encoder = [r for r in rows if r.get("kind", "encoder") == "encoder"]
    if encoder:
        parts.append(markdown_table(encoder, [
            ("model", "image encoder"), ("resolution", "input"), ("params_m", "params (M)"), ("gmacs", "GMACs"),
            ("median_ms", "median ms"), ("min_ms", "min ms"), ("runs", "runs"),
            ("speedup_vs_vitb", "speed-up vs ViT-B"),
        ]))
    prompt = [r for r in rows if r.get("kind") == "prompt"]
    if prompt:
        parts.append(markdown_table(prompt, [
            ("model", "prompt -> masks (precomputed embeddings)"), ("prompt", "prompt"), ("median_ms", "median ms"),
            ("min_ms", "min ms"), ("runs", "runs"),
        ]))
    amg = [r for r in rows if r.get("kind") == "amg"]
    if amg:
        parts.append(markdown_table(amg, [
            ("model", "automatic masks (pipeline)"), ("grid", "grid"), ("image", "image"), ("masks", "masks kept"),
            ("median_ms", "ms (one run)"),
        ]))
    return "\n\n".join(parts)
