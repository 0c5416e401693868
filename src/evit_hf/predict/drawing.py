"""Pictures of predictions, drawn with PIL: mask overlays, prompt marks, segmentation overlays, comparisons.

Owns the colours (`distinct_colour` per mask, `palette` per class: the Cityscapes benchmark colours for its 19
classes, golden-ratio hue steps otherwise), SAM overlays (`draw_masks`: each mask blended in its colour and
outlined by its `contour`; `draw_prompts`: foreground / background points and the box; `draw_box_corner`:
the first corner of a box being drawn), the semantic segmentation overlay with a legend of the classes present
(`draw_segmentation`, `class_shares`) and two images side by side with labels (`side_by_side`). Every
function returns a new image or draws on the one it is given; the same input gives the same pixels.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

PROMPT_COLOUR = (30, 144, 255)
POSITIVE_COLOUR = (0, 220, 0)
NEGATIVE_COLOUR = (230, 0, 0)
GOLDEN_RATIO_STEP = 0.618033988749895  # hue steps that keep neighbouring indices apart

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


def _golden_ratio_colour(index: int, saturation: float, odd_value: float) -> tuple[int, int, int]:
    """RGB of hue `index` golden-ratio steps round the wheel; odd indices darker (`odd_value`) than even (0.95)."""
    hue = (index * GOLDEN_RATIO_STEP) % 1.0
    value = 0.95 if index % 2 == 0 else odd_value
    return tuple(round(c * 255) for c in colorsys.hsv_to_rgb(hue, saturation, value))


def distinct_colour(index: int) -> tuple[int, int, int]:
    """A colour per mask index: golden-ratio hue steps, alternating brightness."""
    return _golden_ratio_colour(index, 0.8, 0.75)


def palette(id2label: dict[int, str]) -> np.ndarray:
    """(num_labels, 3) uint8 colours: the Cityscapes colours for its 19 classes, spread hues otherwise."""
    from ..models.efficientvit.configuration_efficientvit import CITYSCAPES_LABELS

    num_labels = len(id2label)
    if [id2label[i] for i in range(num_labels)] == list(CITYSCAPES_LABELS):
        return np.array(CITYSCAPES_PALETTE, dtype=np.uint8)
    return np.array([_golden_ratio_colour(i, 0.75, 0.7) for i in range(num_labels)], dtype=np.uint8).reshape(-1, 3)


def _check_alpha(alpha: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}.")


def _to_image(pixels: np.ndarray):
    from PIL import Image

    return Image.fromarray(pixels.round().clip(0, 255).astype(np.uint8))


# ----------------------------------------------------------------------------------------------------- SAM
def contour(mask: np.ndarray, width: int = 2) -> np.ndarray:
    """The inner boundary (`width` pixels) of a boolean mask."""
    eroded = mask.copy()
    for _ in range(width):
        padded = np.pad(eroded, 1, constant_values=False)
        eroded = (
            padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
        )
    return mask & ~eroded


def draw_masks(image, masks: list[np.ndarray], colours: list[tuple[int, int, int]], alpha: float = 0.5):
    """The image with each (H, W) bool mask blended in its colour (largest first, so small ones stay visible)
    and outlined."""
    _check_alpha(alpha)
    canvas = np.asarray(image.convert("RGB"), dtype=np.float32).copy()
    for i in sorted(range(len(masks)), key=lambda k: -int(masks[k].sum())):
        colour = np.array(colours[i], dtype=np.float32)
        canvas[masks[i]] = (1 - alpha) * canvas[masks[i]] + alpha * colour
        canvas[contour(masks[i])] = colour
    return _to_image(canvas)


def draw_prompts(overlay, points=None, labels=None, box=None):
    """Points (green foreground, red background) and the box drawn on the overlay, in place; returns it."""
    from PIL import ImageDraw

    draw = ImageDraw.Draw(overlay)
    radius = max(3, round(min(overlay.size) / 100))
    for (x, y), label in zip(points or [], labels or []):
        colour = POSITIVE_COLOUR if label == 1 else NEGATIVE_COLOUR
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour, outline=(255, 255, 255))
    if box is not None:
        draw.rectangle(list(box), outline=POSITIVE_COLOUR, width=max(2, radius // 2))
    return overlay


def draw_box_corner(overlay, corner) -> None:
    """The first corner (x, y) of a box being drawn, as a small cross on the overlay, in place."""
    from PIL import ImageDraw

    x, y = corner
    arm = max(4, round(min(overlay.size) / 60))
    draw = ImageDraw.Draw(overlay)
    draw.line([x - arm, y, x + arm, y], fill=POSITIVE_COLOUR, width=2)
    draw.line([x, y - arm, x, y + arm], fill=POSITIVE_COLOUR, width=2)


# ------------------------------------------------------------------------------------ semantic segmentation
@dataclass(frozen=True)
class ClassShare:
    """One class present in a segmentation and the share of the pixels it covers (0-1)."""

    class_id: int
    label: str
    share: float


def class_shares(segmentation: np.ndarray, id2label: dict[int, str]) -> list[ClassShare]:
    """The classes present in an (H, W) class map, largest first."""
    ids, counts = np.unique(segmentation, return_counts=True)
    return [ClassShare(int(ids[i]), id2label.get(int(ids[i]), str(ids[i])), counts[i] / segmentation.size)
            for i in np.argsort(-counts)]


def draw_segmentation(image, segmentation: np.ndarray, id2label: dict[int, str], alpha: float = 0.5,
                      max_legend: int = 24):
    """The image blended with the class colours, with a legend of the present classes on the right.

    The legend lists the `max_legend` largest classes (with their pixel share) and sums up the rest.
    """
    from PIL import Image, ImageDraw, ImageFont

    from ..models.efficientvit.image_processing_efficientvit_seg import _HIGH_BIT_MODES, _to_uint8

    _check_alpha(alpha)
    if image.mode in _HIGH_BIT_MODES:  # PIL's own RGB conversion clips 16-bit values
        image = Image.fromarray(_to_uint8(np.asarray(image)))
    colours = palette(id2label)
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    overlay = _to_image((1 - alpha) * rgb + alpha * colours[segmentation].astype(np.float32))

    shares = class_shares(segmentation, id2label)
    entries: list[tuple[int | None, str]] = [(s.class_id, f"{s.label}  {100 * s.share:.1f}%")
                                             for s in shares[:max_legend]]
    if len(shares) > max_legend:  # the rest in one line, so the legend stays readable
        rest = 100 * sum(s.share for s in shares[max_legend:])
        entries.append((None, f"+{len(shares) - max_legend} more classes  {rest:.1f}%"))
    font = ImageFont.load_default()
    row, swatch, pad = 20, 14, 8
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
            draw.rectangle([left, top, left + swatch, top + swatch], fill=tuple(int(c) for c in colours[class_id]),
                           outline=(0, 0, 0))
        draw.text((left + swatch + pad, top), text, fill=(0, 0, 0), font=font)
    return canvas


# ------------------------------------------------------------------------------------------------ comparison
def side_by_side(left, right, left_label: str, right_label: str):
    """The two images next to each other on white, each with its label above it."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    header, gap = 24, 8
    canvas = Image.new("RGB", (left.width + gap + right.width, header + max(left.height, right.height)),
                       (255, 255, 255))
    canvas.paste(left.convert("RGB"), (0, header))
    canvas.paste(right.convert("RGB"), (left.width + gap, header))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 5), left_label, fill=(0, 0, 0), font=font)
    draw.text((left.width + gap + 4, 5), right_label, fill=(0, 0, 0), font=font)
    return canvas


__all__ = [
    "CITYSCAPES_PALETTE",
    "NEGATIVE_COLOUR",
    "POSITIVE_COLOUR",
    "PROMPT_COLOUR",
    "ClassShare",
    "class_shares",
    "contour",
    "distinct_colour",
    "draw_box_corner",
    "draw_masks",
    "draw_prompts",
    "draw_segmentation",
    "palette",
    "side_by_side",
]
