"""Super-resolution evaluation: PSNR / SSIM on the Y channel with a border crop of `scale` pixels.

Owns the benchmark folder layouts (paired `HR/` + `LR_bicubic/X{s}/` or `LR/` folders as BSD100 / Set5 /
DIV2K ship, an explicit LR folder, or HR images only, downscaled bicubically on the fly) and whole-image or
tiled inference. Scoring is `evit_hf.training.metrics.SuperResolutionMetrics` (the model and bicubic
upscaling, via `metrics.super_resolution.psnr_y` / `ssim_y`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from ..models.efficientvit.modeling_efficientvit_sr import check_tile_arguments, tiled_upscale
from ..progress import track
from ..training.metrics import SuperResolutionMetrics
from ..training.transforms import image_processor_class, rgb_image, super_resolution_eval_transform, unit_pixels
from .runner import EvalResult

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def find_pairs(data: str | Path, lr: str | Path | None, scale: int) -> list[tuple[Path, Path | None]]:
    """(high-resolution, low-resolution or None) image paths.

    `data` is a folder of HR images, or holds an `HR/` folder; the LR folder is `lr`, else the first of
    `LR_bicubic/X{scale}`, `LR/X{scale}`, `LR_bicubic`, `LR` next to the HR images, else none (bicubic
    downscaling). LR files match HR files by name, optionally with an `x{scale}` suffix (`0801x2.png`).
    """
    root = Path(data)
    if not root.is_dir():
        raise ValueError(f"--data {str(root)!r} is not a folder of images.")
    hr_dir = root / "HR" if (root / "HR").is_dir() else root
    if lr is None:
        candidates = (f"LR_bicubic/X{scale}", f"LR/X{scale}", "LR_bicubic", "LR")
        lr = next((root / c for c in candidates if (root / c).is_dir() and _images(root / c)), None)
    elif not Path(lr).is_dir():
        raise ValueError(f"--lr {str(lr)!r} is not a folder.")
    high = _images(hr_dir)
    if not high:
        raise ValueError(f"{str(hr_dir)!r} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
    if lr is None:
        return [(path, None) for path in high]
    low = {p.stem.lower().removesuffix(f"x{scale}"): p for p in _images(Path(lr))}
    missing = [p.name for p in high if p.stem.lower() not in low]
    if missing:
        raise ValueError(f"No low-resolution image in {str(lr)!r} for {missing[:3]} (expected the same name, "
                         f"optionally with an x{scale} suffix).")
    return [(path, low[path.stem.lower()]) for path in high]


def load_pair(high: Path, low: Path | None, scale: int, processor=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(LR (1, 3, h, w), HR (1, 3, h*s, w*s)) in [0, 1] from the model's `EfficientViTSRImageProcessor` (default:
    the default one); the HR image is cropped to the LR size times scale."""
    processor = processor or image_processor_class("EfficientViTSRImageProcessor")()
    with Image.open(high) as image:
        hr_image = rgb_image(image, processor)
    if low is None:
        lr_array, hr_array = super_resolution_eval_transform(hr_image, scale=scale, processor=processor)
    else:
        with Image.open(low) as image:
            lr_image = rgb_image(image, processor)
        width, height = lr_image.width * scale, lr_image.height * scale
        if width > hr_image.width or height > hr_image.height:
            raise ValueError(f"{low.name} ({lr_image.width}x{lr_image.height}) times {scale} is larger than "
                             f"{high.name} ({hr_image.width}x{hr_image.height}): wrong --scale?")
        hr_image = hr_image.crop((0, 0, width, height))
        lr_array, hr_array = unit_pixels(lr_image, processor), unit_pixels(hr_image, processor)
    return torch.from_numpy(lr_array)[None], torch.from_numpy(hr_array)[None]


def evaluate_super_resolution(model_name: str, data: str, *, lr: str | None = None, scale: int | None = None,
                              tile_size: int = 0, tile_overlap: int = 32, max_samples: int | None = None,
                              device: str = "cpu", onnx: str | None = None) -> EvalResult:
    """Mean PSNR-Y / SSIM-Y (border crop = scale) of `model_name` (with `onnx`: of that exported file of it, in
    ONNX Runtime) and of bicubic upscaling on `data`."""
    from ..resolve import load_model

    if tile_size:
        check_tile_arguments(tile_size, tile_overlap)
    model, processor, _ = load_model(model_name, "image-to-image", scale=scale)
    if onnx is not None:
        from .onnx_model import OnnxRuntimeModel

        model = OnnxRuntimeModel(onnx, model.config, "reconstruction", device)
    model = model.eval().to(device)
    model_scale = int(model.config.upscale)
    if scale is not None and scale != model_scale:
        raise ValueError(f"--scale {scale} differs from the model's factor x{model_scale}.")
    pairs = find_pairs(data, lr, model_scale)[:max_samples]
    metrics = SuperResolutionMetrics(model_scale)

    def upscale(pixels: torch.Tensor) -> torch.Tensor:
        return model(pixel_values=pixels).reconstruction

    for high, low in track(pairs, "eval sr"):
        low_res, high_res = load_pair(high, low, model_scale, processor)
        with torch.inference_mode():
            pixels = low_res.to(model.device)
            output = tiled_upscale(upscale, pixels, model_scale, tile_size, tile_overlap) if tile_size \
                else upscale(pixels)
        metrics.update(output.float().cpu(), low_res, high_res)
    settings = {"scale": model_scale, "lr": lr, "tile_size": tile_size, "paired": any(low for _, low in pairs),
                "onnx": onnx}
    return EvalResult("sr", model_name, data, metrics.compute(), metrics.table(), settings=settings)


__all__ = ["IMAGE_SUFFIXES", "evaluate_super_resolution", "find_pairs", "load_pair"]
