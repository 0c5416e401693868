"""`evit-hf segment IMAGE --model M --out overlay.png`: one image's semantic segmentation as a colour overlay.

`M` is a saved folder or Hub id (`from_pretrained`), or a preset name such as `seg-b1-cityscapes`, which
builds the architecture with random weights (a warning says so; useful to try the command offline). The
output is the image alpha-blended with one colour per class, with a legend of the classes present (largest
first, with their pixel share) drawn to the right with PIL.
"""

from __future__ import annotations

import argparse
import colorsys
import warnings
from pathlib import Path

import numpy as np

from . import load_image

# The Cityscapes benchmark colours of the 19 trainIds (cityscapesScripts labels.py).
CITYSCAPES_PALETTE: tuple[tuple[int, int, int], ...] = (
    (128, 64, 128),
    (244, 35, 232),
    (70, 70, 70),
    (102, 102, 156),
    (190, 153, 153),
    (153, 153, 153),
    (250, 170, 30),
    (220, 220, 0),
    (107, 142, 35),
    (152, 251, 152),
    (70, 130, 180),
    (220, 20, 60),
    (255, 0, 0),
    (0, 0, 142),
    (0, 0, 70),
    (0, 60, 100),
    (0, 80, 100),
    (0, 0, 230),
    (119, 11, 32),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "segment",
        help="Segment an image and write a colour overlay with a legend.",
        description="Semantic segmentation of IMAGE with an EfficientViT-Seg model; writes an overlay PNG.",
    )
    parser.add_argument("image", help="input image file")
    parser.add_argument(
        "--model",
        required=True,
        help="saved folder, Hub id, or preset name (e.g. seg-b1-cityscapes: random weights)",
    )
    parser.add_argument("--out", default="overlay.png", help="output image (default: overlay.png)")
    parser.add_argument("--alpha", type=float, default=0.5, help="opacity of the class colours (0-1)")
    parser.add_argument(
        "--short-side",
        type=int,
        default=None,
        help="resize the short side to this (long side to a multiple of 32) instead of the "
        "processor's own size; smaller is faster",
    )
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.set_defaults(func=run)


def palette(id2label: dict[int, str]) -> np.ndarray:
    """(num_labels, 3) uint8 colours: the Cityscapes colours for its 19 classes, spread hues otherwise."""
    from ..models.efficientvit.configuration_efficientvit import CITYSCAPES_LABELS

    num_labels = len(id2label)
    if [id2label[i] for i in range(num_labels)] == list(CITYSCAPES_LABELS):
        return np.array(CITYSCAPES_PALETTE, dtype=np.uint8)
    colours = []
    for i in range(num_labels):
        hue = (i * 0.618033988749895) % 1.0  # golden-ratio steps keep neighbouring ids apart
        value = 0.95 if i % 2 == 0 else 0.7
        colours.append([round(c * 255) for c in colorsys.hsv_to_rgb(hue, 0.75, value)])
    return np.array(colours, dtype=np.uint8).reshape(-1, 3)


def load_model_and_processor(name: str, short_side: int | None = None):
    """(model, processor) for a folder / Hub id, or a preset name with random weights."""
    from .. import EfficientViTSegImageProcessor
    from ..models.efficientvit import (
        SEGMENTATION_PRESETS,
        EfficientViTConfig,
        EfficientViTForSemanticSegmentation,
    )

    if EfficientViTSegImageProcessor is None:
        raise RuntimeError("`evit-hf segment` needs transformers >= 5 (PIL image processors).")
    if name in SEGMENTATION_PRESETS:
        warnings.warn(
            f"{name!r} is a preset name: the model has random weights, so the overlay shows no real "
            f"classes. Pass a converted folder or Hub id for real predictions.",
            UserWarning,
            stacklevel=2,
        )
        model = EfficientViTForSemanticSegmentation(EfficientViTConfig.from_preset(name))
        processor = EfficientViTSegImageProcessor.for_dataset(name)
    else:
        from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

        model = AutoModelForSemanticSegmentation.from_pretrained(name)
        try:
            processor = AutoImageProcessor.from_pretrained(name)
        except (OSError, ValueError):
            processor = None
        if not isinstance(processor, EfficientViTSegImageProcessor):
            dataset = "ade20k" if model.config.num_labels == 150 else "cityscapes"
            processor = EfficientViTSegImageProcessor.for_dataset(dataset)
    if short_side is not None:
        if short_side < 32:
            raise ValueError(f"--short-side must be at least 32, got {short_side}.")
        from transformers.image_utils import SizeDict

        processor.size = SizeDict(shortest_edge=short_side)
    return model.eval(), processor


def segment_image(image, model, processor):
    """The (H, W) int64 class map of a PIL image at its own size."""
    import torch

    inputs = processor(image, return_tensors="pt").to(model.device)
    with torch.inference_mode():
        outputs = model(**inputs)
    (segmentation,) = processor.post_process_semantic_segmentation(outputs, target_sizes=[image.size[::-1]])
    return segmentation.cpu().numpy()


def draw_overlay(
    image, segmentation: np.ndarray, id2label: dict[int, str], alpha: float = 0.5, max_legend: int = 24
):
    """The image blended with the class colours, with a legend of the present classes on the right.

    The legend lists the `max_legend` largest classes (with their pixel share) and sums up the rest.
    """
    from PIL import Image, ImageDraw, ImageFont

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
    from ..models.efficientvit.image_processing_efficientvit_seg import _HIGH_BIT_MODES, _to_uint8

    if image.mode in _HIGH_BIT_MODES:  # PIL's own RGB conversion clips 16-bit values
        image = Image.fromarray(_to_uint8(np.asarray(image)))
    colours = palette(id2label)
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    blended = (1 - alpha) * rgb + alpha * colours[segmentation].astype(np.float32)
    overlay = Image.fromarray(blended.round().clip(0, 255).astype(np.uint8))

    ids, counts = np.unique(segmentation, return_counts=True)
    order = np.argsort(-counts)
    font = ImageFont.load_default()
    row, swatch, pad = 20, 14, 8
    entries: list[tuple[int | None, str]] = [
        (int(ids[i]), f"{id2label.get(int(ids[i]), str(ids[i]))}  {100 * counts[i] / segmentation.size:.1f}%")
        for i in order[:max_legend]
    ]
    if len(order) > max_legend:  # the rest in one line, so the legend stays readable
        rest = 100 * counts[order[max_legend:]].sum() / segmentation.size
        entries.append((None, f"+{len(order) - max_legend} more classes  {rest:.1f}%"))
    text_width = max(ImageDraw.Draw(overlay).textlength(text, font=font) for _, text in entries)
    legend_width = int(pad * 3 + swatch + text_width)
    height = max(overlay.height, pad * 2 + row * len(entries))
    canvas = Image.new("RGB", (overlay.width + legend_width, height), (255, 255, 255))
    canvas.paste(overlay, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for k, (class_id, text) in enumerate(entries):
        top = pad + k * row
        left = overlay.width + pad
        if class_id is not None:
            draw.rectangle(
                [left, top, left + swatch, top + swatch],
                fill=tuple(int(c) for c in colours[class_id]),
                outline=(0, 0, 0),
            )
        draw.text((left + swatch + pad, top), text, fill=(0, 0, 0), font=font)
    return canvas


def run(args: argparse.Namespace) -> int:
    image = load_image(args.image)
    model, processor = load_model_and_processor(args.model, args.short_side)
    model.to(args.device)
    segmentation = segment_image(image, model, processor)
    canvas = draw_overlay(image, segmentation, model.config.id2label, args.alpha)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    ids, counts = np.unique(segmentation, return_counts=True)
    largest = [model.config.id2label.get(int(i), str(i)) for i in ids[np.argsort(-counts)]]
    shown = ", ".join(largest[:10]) + (f", ... ({len(largest) - 10} more)" if len(largest) > 10 else "")
    print(f"wrote {out} ({canvas.width}x{canvas.height}); {len(largest)} classes present, largest first: {shown}")
    return 0
