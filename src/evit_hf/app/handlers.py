"""The web demo's event handlers as plain Python functions (no Gradio): image and prompts in, `Reply` out.

This module owns what each button and click does: SAM (upload -> embedding once, positive / negative point
and two-click box prompts, undo, clear, segment everything), semantic segmentation (overlay with legend) and
super-resolution (bicubic vs model side by side). Bad input (no image, an unreadable file, a click outside
the image, a model that cannot be loaded) never raises: the `Reply` carries a readable message and
`error=True`; `ui.py` shows it in the page. Clicks arrive in the pixels of the image as the page shows it (the
uploaded image, or the output overlay with `on_output=True`) and are mapped to the model's copy, which is
downscaled when the upload is above the size limits.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..predict import INTERACTIVE_POINTS_PER_SIDE, bicubic_comparison, segment_image, upscale_image
from ..predict.drawing import (
    PROMPT_COLOUR,
    class_shares,
    distinct_colour,
    draw_box_corner,
    draw_masks,
    draw_prompts,
    draw_segmentation,
)
from .state import DemoState, InputError, LoadedImage, ModelUnavailable

POSITIVE, NEGATIVE, BOX = "Positive point", "Negative point", "Box corner"
MODES = (POSITIVE, NEGATIVE, BOX)
MAX_POINTS_PER_SIDE = 64


@dataclass
class SamPrompts:
    """The prompts of the image on the page (kept per browser session in a `gr.State`)."""

    points: list[list[float]] = field(default_factory=list)  # model-image pixels
    labels: list[int] = field(default_factory=list)          # 1 positive, 0 negative
    box: list[float] | None = None                          # x0, y0, x1, y1
    corner: list[float] | None = None                       # the first corner of a box being drawn
    history: list[str] = field(default_factory=list)         # "point" / "box" / "corner", for undo
    image_key: str = ""                                     # which image they belong to

    @property
    def empty(self) -> bool:
        return not self.points and self.box is None

    def for_image(self, key: str) -> SamPrompts:
        """These prompts, or fresh ones when the image changed."""
        return self if key == self.image_key else SamPrompts(image_key=key)


@dataclass
class Reply:
    """What a handler gives the page: an image (or None), a Markdown message, and whether it is an error."""

    image: Any
    message: str
    error: bool = False
    prompts: SamPrompts | None = None  # SAM only: the prompts after this event


def _error(message: str, image: Any = None, prompts: SamPrompts | None = None) -> Reply:
    return Reply(image, message, True, prompts)


def _ms(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _with_notice(message: str, loaded: LoadedImage) -> str:
    return f"{message}\n\n{loaded.notice}" if loaded.notice else message


# ------------------------------------------------------------------------------------------------- SAM
def sam_upload(state: DemoState, image) -> Reply:
    """A new image: compute its embedding now (once), show it, reset the prompts."""
    if image is None:
        return Reply(None, "Upload an image, then click on an object.", prompts=SamPrompts())
    try:
        loaded = state.load_image(image)
        entry, cached = state.sam.embedding(loaded)
    except (InputError, ModelUnavailable, ValueError) as err:
        return _error(str(err), prompts=SamPrompts())
    how = "reused from the cache" if cached else "computed once for this image and reused for every click"
    message = (f"Image embedding: **{_ms(entry.embedding.encode_ms)}** ({how}). "
               f"Click on an object: green = positive point, red = negative point, or two opposite corners of a box.")
    return Reply(loaded.image, _with_notice(message, loaded), prompts=SamPrompts(image_key=loaded.key))


def _page_to_model(loaded: LoadedImage, xy, on_output: bool) -> list[float]:
    """A click (page pixels) in the model image's pixels; `InputError` when it is outside the image."""
    try:
        x, y = (float(v) for v in xy)
    except (TypeError, ValueError):
        raise InputError(f"A click needs (x, y) pixel coordinates, got {xy!r}.") from None
    width, height = (loaded.image.width, loaded.image.height) if on_output else loaded.original_size
    if not (0 <= x < width and 0 <= y < height) or not (np.isfinite(x) and np.isfinite(y)):
        raise InputError(f"The click at ({x:g}, {y:g}) is outside the {width}x{height} image: click on the image.")
    if on_output:
        return [x, y]
    scale_x, scale_y = loaded.scale
    return [x * scale_x, y * scale_y]


def _sam_overlay(state: DemoState, loaded: LoadedImage, prompts: SamPrompts) -> tuple[Any, str]:
    """The image with the mask of the current prompts and the prompts drawn; the message with the latencies."""
    entry, cached = state.sam.embedding(loaded)
    mask, score, decode_ms = state.sam.decode(entry, prompts.points, prompts.labels, prompts.box)
    overlay = draw_prompts(draw_masks(loaded.image, [mask], [PROMPT_COLOUR], 0.5),
                           prompts.points, prompts.labels, prompts.box)
    _draw_corner(overlay, prompts.corner)
    encode_ms = _ms(entry.embedding.encode_ms)
    embedding = (f"image embedding **{encode_ms}** (cached: computed once for this image)" if cached
                 else f"image embedding **{encode_ms}** (computed now, reused for the next clicks)")
    counts = f"{prompts.labels.count(1)} positive, {prompts.labels.count(0)} negative point(s)"
    counts += ", 1 box" if prompts.box is not None else ""
    message = (f"Mask decoder: **{_ms(decode_ms)}** per click · {embedding}. Predicted IoU {score:.3f}; the mask "
               f"covers {100 * mask.mean():.1f}% of the image ({counts}).")
    return overlay, message


def _draw_corner(overlay, corner: list[float] | None) -> None:
    """The pending first corner of a box, if any."""
    if corner is not None:
        draw_box_corner(overlay, corner)


def _sam_render(state: DemoState, loaded: LoadedImage, prompts: SamPrompts, note: str = "") -> Reply:
    """The page after the prompts changed: the mask (or the plain image when there are no prompts yet)."""
    if prompts.empty:
        image = loaded.image.copy()
        _draw_corner(image, prompts.corner)
        text = note or "No prompts: click on an object."
        return Reply(image, _with_notice(text, loaded), prompts=prompts)
    overlay, message = _sam_overlay(state, loaded, prompts)
    return Reply(overlay, _with_notice(f"{note} {message}".strip(), loaded), prompts=prompts)


def sam_click(state: DemoState, image, prompts: SamPrompts | None, mode: str, xy, on_output: bool = False) -> Reply:
    """A click at `xy` in `mode` (positive point, negative point, box corner); the mask of all prompts so far.

    `prompts` is not modified: the reply carries the new prompts (the old ones on an error)."""
    before = prompts or SamPrompts()
    prompts = copy.deepcopy(before)
    try:
        loaded = state.load_image(image)
        prompts = prompts.for_image(loaded.key)
        point = _page_to_model(loaded, xy, on_output)
        if mode not in MODES:
            raise InputError(f"Unknown prompt mode {mode!r}: pick one of {', '.join(MODES)}.")
        note = ""
        if mode == BOX and prompts.corner is None:
            prompts.corner = point
            prompts.history.append("corner")
            note = f"Box: first corner at ({point[0]:.0f}, {point[1]:.0f}); click the opposite corner."
        elif mode == BOX:
            (x0, y0), (x1, y1) = prompts.corner, point
            if prompts.box is not None:
                prompts.history.remove("box")  # one box per mask: the new one replaces it
            prompts.box = [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]
            prompts.corner = None
            prompts.history[prompts.history.index("corner")] = "box"
            note = f"Box ({prompts.box[0]:.0f}, {prompts.box[1]:.0f}) - ({prompts.box[2]:.0f}, {prompts.box[3]:.0f})."
        else:
            prompts.points.append(point)
            prompts.labels.append(1 if mode == POSITIVE else 0)
            prompts.history.append("point")
            note = f"{mode} at ({point[0]:.0f}, {point[1]:.0f})."
        return _sam_render(state, loaded, prompts, note)
    except (InputError, ModelUnavailable, ValueError) as err:
        return _error(str(err), prompts=before)


def sam_undo(state: DemoState, image, prompts: SamPrompts | None) -> Reply:
    """Remove the last prompt (point, box, or a box's pending first corner); `prompts` is not modified."""
    before = prompts or SamPrompts()
    prompts = copy.deepcopy(before)
    try:
        loaded = state.load_image(image)
        prompts = prompts.for_image(loaded.key)
        if not prompts.history:
            return _sam_render(state, loaded, prompts, "Nothing to undo.")
        last = prompts.history.pop()
        if last == "corner":
            prompts.corner = None
        elif last == "box":
            prompts.box = None
        else:
            prompts.points.pop()
            prompts.labels.pop()
        return _sam_render(state, loaded, prompts)
    except (InputError, ModelUnavailable, ValueError) as err:
        return _error(str(err), prompts=before)


def sam_clear(state: DemoState, image, prompts: SamPrompts | None = None) -> Reply:
    """Drop every prompt of the image."""
    if image is None:
        return Reply(None, "Upload an image, then click on an object.", prompts=SamPrompts())
    try:
        loaded = state.load_image(image)
    except InputError as err:
        return _error(str(err), prompts=SamPrompts())
    return _sam_render(state, loaded, SamPrompts(image_key=loaded.key), "Prompts cleared: click on an object.")


def sam_everything(state: DemoState, image, points_per_side: int = INTERACTIVE_POINTS_PER_SIDE,
                   pred_iou_thresh: float = 0.88, stability_score_thresh: float = 0.95) -> Reply:
    """Automatic mask generation on a `points_per_side` grid (the same default as `evit-hf sam --everything`)
    on the image's cached embedding; every mask in its own colour, the time it took in the message."""
    try:
        loaded = state.load_image(image)
        points_per_side = int(points_per_side)
        if not 1 <= points_per_side <= MAX_POINTS_PER_SIDE:
            raise InputError(f"Points per side must be between 1 and {MAX_POINTS_PER_SIDE}, got {points_per_side}.")
        result, entry, cached = state.sam.everything(loaded, points_per_side, float(pred_iou_thresh),
                                                     float(stability_score_thresh))
    except (InputError, ModelUnavailable, ValueError) as err:
        return _error(str(err))
    masks = result.masks
    overlay = draw_masks(loaded.image, masks, [distinct_colour(i) for i in range(len(masks))], 0.5)
    embedding = "cached" if cached else f"computed now: {_ms(entry.embedding.encode_ms)}"
    message = (f"Segment everything: **{len(masks)} masks** from a {points_per_side}x{points_per_side} point grid "
               f"in **{_ms(result.mask_ms)}** (mask decoder {_ms(result.decoder_ms)} for {result.num_prompts} "
               f"prompts, filtering and NMS {_ms(result.postprocess_ms)}); image embedding {embedding}.")
    if not masks:
        message += (f" No mask passed the quality thresholds (predicted IoU > {pred_iou_thresh:g}, stability > "
                    f"{stability_score_thresh:g}); lower them in the settings.")
    return Reply(overlay, _with_notice(message, loaded))


# -------------------------------------------------------------------------------------- segmentation
def seg_run(state: DemoState, image, model_name: str | None = None) -> Reply:
    """The colour overlay of the image's semantic segmentation with a legend of the classes present."""
    names = list(state.seg)
    model_name = model_name or (names[0] if names else None)
    try:
        if model_name not in state.seg:
            raise InputError(f"Unknown model {model_name!r}: pick one of {', '.join(names)}.")
        loaded = state.load_image(image)
        model, processor = state.seg[model_name].get()
        start = time.perf_counter()
        segmentation = segment_image(loaded.image, model, processor)
        elapsed = (time.perf_counter() - start) * 1e3
    except (InputError, ModelUnavailable, ValueError) as err:
        return _error(str(err))
    canvas = draw_segmentation(loaded.image, segmentation, model.config.id2label, 0.5)
    shares = class_shares(segmentation, model.config.id2label)
    largest = ", ".join(f"{share.label} {100 * share.share:.1f}%" for share in shares[:5])
    message = (f"`{model_name}`: **{_ms(elapsed)}** (preprocessing, model, upsampling to "
               f"{loaded.image.width}x{loaded.image.height}); {len(shares)} classes present, largest: {largest}.")
    return Reply(canvas, _with_notice(message, loaded))


# ---------------------------------------------------------------------------------- super-resolution
def sr_run(state: DemoState, image) -> Reply:
    """Bicubic and the model's upscaling side by side (the shipped x2 checkpoint by default)."""
    try:
        loaded = state.load_image(image, for_sr=True)
        model, processor = state.sr.get()
        start = time.perf_counter()
        # one pass: the size limit bounds memory, tiles would cost time
        result = upscale_image(loaded.image, model, processor)
        elapsed = (time.perf_counter() - start) * 1e3
    except (InputError, ModelUnavailable, ValueError) as err:
        return _error(str(err))
    scale = model.config.upscale
    name = state.config.sr_model or "shipped x2 checkpoint"
    canvas = bicubic_comparison(loaded.image, result, processor, scale, name)
    message = (f"`{name}`: **{_ms(elapsed)}** for x{scale} of {loaded.image.width}x{loaded.image.height} -> "
               f"{result.width}x{result.height} (bicubic left, model right).")
    return Reply(canvas, _with_notice(message, loaded))
