"""PSNR and SSIM on the Y channel, as super-resolution papers report them (Set5, BSD100, FFHQ tables).

Conventions (those of the SwinIR / BasicSR evaluation code):

- inputs are uint8 RGB images (numpy (H, W, 3) arrays or PIL images; (H, W) / (H, W, 1) grayscale counts as
  R = G = B);
- luma of ITU-R BT.601 in the 16-235 range, not rounded:
  Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 for R, G, B in 0-255, computed in float64;
- `crop_border` pixels (the upscaling factor, by convention) are removed from every side first;
- PSNR with a peak of 255 (identical images give `inf`);
- SSIM of Wang et al. (2004): an 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255,
  averaged over the positions where the window fits inside the image ("valid" filtering).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

_BT601 = np.array([65.481, 128.553, 24.966]) / 255.0
_SSIM_WINDOW = 11
_SSIM_SIGMA = 1.5


def _as_uint8_rgb(image: Any, name: str) -> np.ndarray:
    if hasattr(image, "getbands"):  # PIL image
        image = np.asarray(image.convert("RGB"))
    if not isinstance(image, np.ndarray):
        raise ValueError(f"`{name}` must be a uint8 numpy array or a PIL image, got {type(image).__name__}.")
    if image.dtype != np.uint8:
        raise ValueError(
            f"`{name}` must hold uint8 pixels (0-255), got {image.dtype}; round and clip float images first, "
            f"e.g. `(x.clip(0, 1) * 255).round().astype(np.uint8)`."
        )
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"`{name}` must be (H, W, 3) RGB or (H, W) grayscale, got shape {image.shape}.")
    return image


def rgb_to_y(image: Any) -> np.ndarray:
    """The BT.601 luma (float64, 16-235 range, not rounded) of a uint8 RGB array or PIL image."""
    rgb = _as_uint8_rgb(image, "image").astype(np.float64)
    return 16.0 + rgb @ _BT601


def _prepare(sr: Any, hr: Any, crop_border: int) -> tuple[np.ndarray, np.ndarray]:
    sr_y, hr_y = rgb_to_y(_as_uint8_rgb(sr, "sr")), rgb_to_y(_as_uint8_rgb(hr, "hr"))
    if sr_y.shape != hr_y.shape:
        raise ValueError(f"`sr` and `hr` sizes differ: {sr_y.shape[::-1]} vs {hr_y.shape[::-1]} (width, height).")
    if isinstance(crop_border, bool) or int(crop_border) != crop_border or crop_border < 0:
        raise ValueError(f"`crop_border` must be a non-negative integer, got {crop_border!r}.")
    crop_border = int(crop_border)
    if 2 * crop_border >= min(sr_y.shape):
        raise ValueError(f"`crop_border` {crop_border} leaves nothing of a {sr_y.shape[1]}x{sr_y.shape[0]} image.")
    if crop_border:
        sr_y = sr_y[crop_border:-crop_border, crop_border:-crop_border]
        hr_y = hr_y[crop_border:-crop_border, crop_border:-crop_border]
    return sr_y, hr_y


def psnr_y(sr: Any, hr: Any, crop_border: int = 0) -> float:
    """PSNR (dB, peak 255) between the Y channels of `sr` and `hr` after removing `crop_border` pixels per side.

    Identical images give `math.inf`.
    """
    sr_y, hr_y = _prepare(sr, hr, crop_border)
    mse = float(np.mean((sr_y - hr_y) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(255.0**2 / mse)


def _gaussian_window(size: int = _SSIM_WINDOW, sigma: float = _SSIM_SIGMA) -> np.ndarray:
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2
    window = np.exp(-(offsets**2) / (2 * sigma**2))
    return window / window.sum()


def _filter_valid(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Separable 2D filtering with `window`, only where the window fits (output shrinks by len - 1)."""
    from numpy.lib.stride_tricks import sliding_window_view

    rows = sliding_window_view(image, len(window), axis=1) @ window
    return sliding_window_view(rows, len(window), axis=0) @ window


def ssim_y(sr: Any, hr: Any, crop_border: int = 0) -> float:
    """Mean SSIM between the Y channels of `sr` and `hr` after removing `crop_border` pixels per side.

    The standard Gaussian-window SSIM (11x11, sigma 1.5, data range 255); the cropped images must be at least
    11x11 pixels.
    """
    sr_y, hr_y = _prepare(sr, hr, crop_border)
    if min(sr_y.shape) < _SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs at least {_SSIM_WINDOW}x{_SSIM_WINDOW} pixels after cropping, got "
            f"{sr_y.shape[1]}x{sr_y.shape[0]}."
        )
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    window = _gaussian_window()
    mu_x, mu_y = _filter_valid(sr_y, window), _filter_valid(hr_y, window)
    var_x = _filter_valid(sr_y * sr_y, window) - mu_x**2
    var_y = _filter_valid(hr_y * hr_y, window) - mu_y**2
    cov = _filter_valid(sr_y * hr_y, window) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(ssim_map.mean())


__all__ = ["psnr_y", "ssim_y", "rgb_to_y"]
