"""What the web demo keeps between requests, without Gradio: its configuration, lazily loaded models, the
uploaded images and the SAM image-embedding cache.

This module owns `AppConfig` (which models, size limits), `model_status` (can a model be loaded here, checked
at start-up without loading it, `evit_hf.resolve.find_source`, which downloads and converts a released model the
first time; told in the page's words), `LazyModel` (loads with
`evit_hf.resolve.load_model` on first use, remembers a failure as a readable message instead of retrying a
50-second offline download on every click), `open_image` (EXIF orientation, readable errors, downscaling of
images above the limits with a notice), `SamEngine` (`evit_hf.predict.SamPredictor` behind the page: the encoder
runs once per image, embeddings are cached by image content, every click only runs the prompt encoder and mask
decoder) and `DemoState`, the one object the handlers share.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..predict import GeneratedMasks, SamAutomaticMaskGenerator, SamImageEmbedding, SamPredictor, set_short_side
from ..resolve import RANDOM_PREFIX, ModelSource, find_source, hub_reachable, load_model

SAM_FLAG, SEG_FLAG, SR_FLAG = "--sam-model", "--seg-model", "--sr-model"
# The environment variables `app.py` (the Space entry) reads; `evit-hf app` takes the flags above.
SAM_ENV, SEG_ENV, SR_ENV = "EVIT_HF_SAM_MODEL", "EVIT_HF_SEG_MODELS", "EVIT_HF_SR_MODEL"
EMBEDDED_SR = "embedded"  # --sr-model value meaning the x2 checkpoint shipped in the package (the default)

MAX_SIDE = 4096
MAX_MEGAPIXELS = 16.0
MAX_ASPECT = 16.0  # longer side / shorter side: thinner images vanish at the models' input sizes
SR_MAX_MEGAPIXELS = 0.1  # x2 of 0.1 MP (316x316) is ~60 GMACs: about 14 s on one CPU core, in one pass


class InputError(ValueError):
    """Bad input from the page (no image, unreadable file, click outside the image): its message is shown as is."""


class ModelUnavailable(RuntimeError):
    """A model cannot be loaded here; the message says what is missing and which flag to pass instead."""


def default_models() -> tuple[str, tuple[str, ...]]:
    """The released models the demo uses by default (the authors' checkpoints, downloaded and converted once):
    (SAM, segmentation models)."""
    return "efficientvit-sam-l0", ("efficientvit-seg-b1-cityscapes", "efficientvit-seg-b1-ade20k")


def split_names(values: list[str] | tuple[str, ...] | str | None) -> tuple[str, ...]:
    """Model names from repeated flags and/or comma lists, stripped, duplicates dropped (order kept)."""
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    names = [name.strip() for value in values for name in value.split(",")]
    return tuple(dict.fromkeys(name for name in names if name))


@dataclass
class AppConfig:
    """Which models the demo serves and how large an input it accepts."""

    sam_model: str = ""
    seg_models: tuple[str, ...] = ()
    sr_model: str | None = None  # None: the x2 checkpoint embedded in the package
    seg_short_side: int | None = None
    max_side: int = MAX_SIDE
    max_megapixels: float = MAX_MEGAPIXELS
    sr_max_megapixels: float = SR_MAX_MEGAPIXELS
    embedding_cache_size: int = 8

    def __post_init__(self) -> None:
        default_sam, default_seg = default_models()
        self.sam_model = self.sam_model or default_sam
        self.seg_models = split_names(self.seg_models) or default_seg
        if self.sr_model in ("", EMBEDDED_SR):
            self.sr_model = None
        if self.max_side < 64 or self.max_megapixels <= 0 or self.sr_max_megapixels <= 0:
            raise ValueError("the image size limits must be positive (max side >= 64 pixels).")
        if self.seg_short_side is not None and self.seg_short_side < 32:
            raise ValueError(f"--seg-short-side must be at least 32, got {self.seg_short_side}.")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> AppConfig:
        """The configuration of a Space (`app.py`): `EVIT_HF_SAM_MODEL`, `EVIT_HF_SEG_MODELS` (comma list),
        `EVIT_HF_SR_MODEL`; unset means the defaults."""
        environ = os.environ if environ is None else environ
        return cls(
            sam_model=environ.get(SAM_ENV, ""),
            seg_models=split_names(environ.get(SEG_ENV)),
            sr_model=environ.get(SR_ENV) or None,
        )


# ------------------------------------------------------------------------------------------- model status
@dataclass(frozen=True)
class ModelStatus:
    """Whether a model can be loaded here, found without loading it."""

    kind: str         # "sam", "seg" or "sr"
    name: str         # what the user passed (a released model, folder, Hub id, random:PRESET; "" for the default
                      # SR checkpoint)
    available: bool
    note: str         # one line for the page and the terminal
    problem: str = ""  # why it cannot be loaded, in the resolver's words ("" when it can)

    @property
    def label(self) -> str:
        return self.name or "embedded x2 checkpoint"


_KIND_WORDS = {"sam": "SAM", "seg": "segmentation", "sr": "super-resolution"}
_KIND_FLAGS = {"sam": SAM_FLAG, "seg": SEG_FLAG, "sr": SR_FLAG}
_EXAMPLE_RELEASED = {"sam": "efficientvit-sam-l0", "seg": "efficientvit-seg-b1-cityscapes",
                     "sr": "efficientvit-sr-light-x2"}
_EXAMPLE_PRESETS = {"sam": "sam-l0", "seg": "seg-b1-cityscapes", "sr": "sr-light-x4"}
_EXAMPLE_FOLDERS = {"sam": "./efficientvit-sam-l0", "seg": "./efficientvit-seg-b1-cityscapes",
                    "sr": "./efficientvit-sr-light-x2"}


def how_to_fix(kind: str) -> str:
    """What to pass instead of a model that cannot be loaded."""
    flag = _KIND_FLAGS[kind]
    return (
        f"Pass a released model (`evit-hf app {flag} {_EXAMPLE_RELEASED[kind]}`, downloaded once; `evit-hf models` "
        f"lists them), a local folder written by `evit-hf convert` (`{flag} {_EXAMPLE_FOLDERS[kind]}`), a Hub id "
        f"that is in the local cache, or `{flag} {RANDOM_PREFIX}{_EXAMPLE_PRESETS[kind]}` (random weights: the tab "
        f"works but its output is meaningless)."
    )


_KIND_TASKS = {"sam": "mask-generation", "seg": "semantic-segmentation", "sr": "image-to-image"}


def _describe(kind: str, name: str, source: ModelSource) -> str:
    """What a loadable model is, in the page's words."""
    if source.kind == "random":
        return (f"`{RANDOM_PREFIX}{source.location}` with RANDOM weights: the {_KIND_WORDS[kind]} output is "
                f"meaningless (pass a released model such as `{_KIND_FLAGS[kind]} {_EXAMPLE_RELEASED[kind]}` for "
                f"trained weights)")
    if source.released is not None:
        if source.released.source is None:
            return "the x2 checkpoint shipped in evit-hf (trained weights)"
        return f"released model `{source.released.name}` (the authors' checkpoint, converted in {source.location})"
    if source.kind == "folder":
        return f"local folder `{name}`"
    return f"Hub model `{name}` ({'in the local cache' if source.offline else 'from the Hub'})"


def model_status(kind: str, name: str | None, online: Callable[[], bool] = hub_reachable) -> ModelStatus:
    """Whether `name` (a released model, a folder, a Hub id, `random:PRESET`; None: the shipped SR checkpoint) can
    be loaded here. A released model is downloaded and converted now, the first time (not loaded)."""
    label = "" if name is None else str(name)
    try:
        source = find_source(name, _KIND_TASKS[kind], online=online)
    except ValueError as err:
        return ModelStatus(kind, label, False, f"{err} {how_to_fix(kind)}", problem=str(err))
    return ModelStatus(kind, label, True, _describe(kind, label, source))


# -------------------------------------------------------------------------------------------- lazy models
class LazyModel:
    """A (model, processor) pair loaded on first `get()`; a failure is kept as a `ModelUnavailable` message."""

    def __init__(self, kind: str, name: str | None, loader: Callable[[], tuple[Any, Any]],
                 status: ModelStatus | None = None) -> None:
        self.kind, self.name, self.status = kind, name, status
        self._loader = loader
        self._value: tuple[Any, Any] | None = None
        self._error: str | None = None
        self._reported = False
        self._lock = threading.Lock()
        self.load_ms: float | None = None

    @property
    def loaded(self) -> bool:
        return self._value is not None

    def get(self) -> tuple[Any, Any]:
        """(model, processor), loading them the first time; `ModelUnavailable` when they cannot be loaded."""
        with self._lock:
            if self._value is not None:
                return self._value
            if self._error is None and self.status is not None and not self.status.available:
                self._error = self.status.note
            if self._error is None:
                start = time.perf_counter()
                try:
                    with warnings.catch_warnings():  # preset warnings: the page says so already
                        warnings.simplefilter("ignore", UserWarning)
                        self._value = self._loader()
                except Exception as err:  # noqa: BLE001 - any load failure becomes a message in the page
                    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                    self._error = (f"the {_KIND_WORDS[self.kind]} model `{self.name or 'embedded'}` could not be "
                                   f"loaded ({reason}). {how_to_fix(self.kind)}")
                else:
                    self.load_ms = (time.perf_counter() - start) * 1e3
                    return self._value
            if not self._reported:  # the terminal hears it once, the page on every use
                self._reported = True
                print(f"evit-hf app: {self._error}", file=sys.stderr)
            raise ModelUnavailable(self._error)


def _loader(kind: str, name: str | None, seg_short_side: int | None = None) -> Callable[[], tuple[Any, Any]]:
    """Loads (model, processor) of `kind` with the resolver; segmentation at `seg_short_side` when given."""
    def load():
        model, processor, _ = load_model(name, _KIND_TASKS[kind])
        if kind == "seg":
            set_short_side(processor, seg_short_side)
        return model, processor

    return load


# ---------------------------------------------------------------------------------------------- images
@dataclass
class LoadedImage:
    """An uploaded image as the models see it: downscaled to the limits, with the factor from the page's pixels."""

    image: Any                      # PIL image (RGB, or with alpha for super-resolution)
    original_size: tuple[int, int]  # (width, height) as uploaded (EXIF orientation applied)
    notice: str = ""                # why and how it was downscaled ("" if it was not)
    key: str = ""                   # content hash (the embedding cache key)

    @property
    def scale(self) -> tuple[float, float]:
        """(x, y) factors from the uploaded image's pixels to `image`'s pixels."""
        return self.image.width / self.original_size[0], self.image.height / self.original_size[1]


def image_key(image) -> str:
    """A content hash of a PIL image (mode, size and pixels)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{image.mode}:{image.width}x{image.height}:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def fit_size(width: int, height: int, max_side: int, max_megapixels: float) -> tuple[int, int]:
    """The largest (width, height) with the same aspect ratio within `max_side` and `max_megapixels`."""
    scale = min(1.0, max_side / max(width, height), (max_megapixels * 1e6 / (width * height)) ** 0.5)
    if scale >= 1.0:
        return width, height
    return max(1, int(width * scale)), max(1, int(height * scale))


def open_image(image, max_side: int = MAX_SIDE, max_megapixels: float = MAX_MEGAPIXELS,
               mode: str | None = "RGB") -> LoadedImage:
    """The page's image (a file path or a PIL image) in `mode` (None keeps alpha), EXIF-rotated like the browser
    shows it, downscaled when it is larger than the limits; `InputError` when there is none or it is unreadable."""
    from PIL import Image, ImageOps

    if image is None or (isinstance(image, str) and not image):
        raise InputError("No image: upload an image first.")
    if isinstance(image, (str, os.PathLike)):
        try:
            with Image.open(image) as opened:
                file_size = opened.size
                rotated = opened.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # EXIF orientations that swap w / h
                opened.draft("RGB", fit_size(*file_size, max_side, max_megapixels))  # JPEG: decode smaller
                opened.load()
                image = ImageOps.exif_transpose(opened)
        except Image.DecompressionBombError as err:
            raise InputError(f"The image is far too large to open safely ({err}). Upload an image of at most "
                             f"{max_megapixels:g} megapixels.") from None
        except (OSError, ValueError, SyntaxError) as err:
            reason = str(err).replace(str(image), Path(image).name)  # not the server's temporary path
            raise InputError(f"The file could not be read as an image ({reason}).") from None
        original = file_size[::-1] if rotated else file_size  # the size the browser shows
    elif hasattr(image, "size") and hasattr(image, "mode"):
        original = image.size
    else:
        raise InputError(f"Expected an image, got {type(image).__name__}.")
    if image.width < 1 or image.height < 1:
        raise InputError("The image is empty (0 pixels).")
    if max(original) / min(original) > MAX_ASPECT:
        raise InputError(f"The image is {original[0]}x{original[1]}: too thin for the models (this demo takes "
                         f"aspect ratios up to {MAX_ASPECT:g}:1). Crop it first.")
    if mode is not None and image.mode != mode:
        image = image.convert(mode)
    elif mode is None and image.mode not in ("RGB", "RGBA", "L", "LA", "I;16", "I"):
        image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
    target = fit_size(*original, max_side, max_megapixels)
    notice = ""
    if target != original or image.size != target:
        if image.size != target:
            image = image.resize(target, Image.Resampling.LANCZOS)
        notice = (f"The image is {original[0]}x{original[1]} ({original[0] * original[1] / 1e6:.1f} MP), above this "
                  f"demo's limit of {max_side} pixels per side and {max_megapixels:g} MP: it was downscaled to "
                  f"{target[0]}x{target[1]}.")
    return LoadedImage(image, original, notice)


# ----------------------------------------------------------------------------------------------- SAM
@dataclass
class CachedEmbedding:
    """One image's SAM embedding (with what computing it cost: `embedding.encode_ms`)."""

    key: str
    embedding: SamImageEmbedding


class SamEngine:
    """EfficientViT-SAM behind the demo: one encoder run per image (cached by content), decoder per click."""

    def __init__(self, model: LazyModel, cache_size: int = 8) -> None:
        self.model = model
        self.cache_size = max(1, cache_size)
        self._cache: OrderedDict[str, CachedEmbedding] = OrderedDict()
        self._lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self.encoder_runs = 0

    def _predictor(self) -> SamPredictor:
        """A predictor of the model (cheap; one per request, so that concurrent clicks never share an image)."""
        return SamPredictor(*self.model.get())

    def embedding(self, loaded: LoadedImage) -> tuple[CachedEmbedding, bool]:
        """The image's embedding and whether it came from the cache (else the encoder ran now)."""
        key = loaded.key or image_key(loaded.image)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key], True
        predictor = self._predictor()
        with self._encode_lock:  # two events for the same new image (upload, click) encode it once
            with self._lock:
                if key in self._cache:
                    return self._cache[key], True
            entry = CachedEmbedding(key, predictor.set_image(loaded.image))
            with self._lock:
                self.encoder_runs += 1
                self._cache[key] = entry
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return entry, False

    def decode(self, entry: CachedEmbedding, points: list | None = None, labels: list | None = None,
               box: list | None = None) -> tuple[np.ndarray, float, float]:
        """(mask (H, W) bool, predicted IoU, decoder ms) of the best mask of the prompts on a cached embedding."""
        predictor = self._predictor()
        predictor.set_embedding(entry.embedding)
        start = time.perf_counter()
        mask, score = predictor.predict(points or None, labels or None, box).best()
        return mask.numpy(), float(score), (time.perf_counter() - start) * 1e3

    def everything(self, loaded: LoadedImage, points_per_side: int, pred_iou_thresh: float,
                   stability_score_thresh: float) -> tuple[GeneratedMasks, CachedEmbedding, bool]:
        """Automatic mask generation on a grid, on the image's cached embedding (computed now if it is not
        cached): (masks, the embedding entry, whether it came from the cache)."""
        entry, cached = self.embedding(loaded)
        generator = SamAutomaticMaskGenerator(*self.model.get(), points_per_side, pred_iou_thresh,
                                              stability_score_thresh)
        return generator.generate(loaded.image, embedding=entry.embedding), entry, cached


# ------------------------------------------------------------------------------------------------ state
@dataclass
class DemoState:
    """Everything the handlers share: the configuration, the models (lazy), the SAM engine, recent uploads."""

    config: AppConfig
    sam: SamEngine
    seg: dict[str, LazyModel]
    sr: LazyModel
    statuses: list[ModelStatus] = field(default_factory=list)
    _images: OrderedDict = field(default_factory=OrderedDict)
    _images_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def create(cls, config: AppConfig, online: Callable[[], bool] = hub_reachable) -> DemoState:
        """Check every model's availability (nothing is loaded yet) and set up the lazy loaders."""
        sam_status = model_status("sam", config.sam_model, online)
        seg_statuses = {name: model_status("seg", name, online) for name in config.seg_models}
        sr_status = model_status("sr", config.sr_model, online)
        return cls(
            config=config,
            sam=SamEngine(LazyModel("sam", config.sam_model, _loader("sam", config.sam_model), sam_status),
                          config.embedding_cache_size),
            seg={name: LazyModel("seg", name, _loader("seg", name, config.seg_short_side), status)
                 for name, status in seg_statuses.items()},
            sr=LazyModel("sr", config.sr_model, _loader("sr", config.sr_model), sr_status),
            statuses=[sam_status, *seg_statuses.values(), sr_status],
        )

    def status_of(self, kind: str) -> list[ModelStatus]:
        return [status for status in self.statuses if status.kind == kind]

    def load_image(self, image, for_sr: bool = False) -> LoadedImage:
        """`open_image` with this demo's limits; file uploads are remembered (the clicks reuse them)."""
        config = self.config
        limits = (config.max_side, config.sr_max_megapixels if for_sr else config.max_megapixels)
        mode = None if for_sr else "RGB"
        cache_key = (str(image), limits, mode) if isinstance(image, (str, os.PathLike)) else None
        if cache_key is not None:
            with self._images_lock:
                if cache_key in self._images:
                    self._images.move_to_end(cache_key)
                    return self._images[cache_key]
        loaded = open_image(image, *limits, mode=mode)
        loaded.key = image_key(loaded.image)
        if cache_key is not None:
            with self._images_lock:
                self._images[cache_key] = loaded
                while len(self._images) > 4:  # up to 16 MP each
                    self._images.popitem(last=False)
        return loaded
