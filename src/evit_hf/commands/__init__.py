"""`evit-hf` subcommands: each module exposes `register(subparsers)`; shared input helpers live here."""

from __future__ import annotations

from pathlib import Path


def load_image(path: str, mode: str | None = "RGB"):
    """The image as PIL in `mode` (`None` keeps the file's mode, alpha included); a clear `ValueError` when it
    is missing or unreadable."""
    from PIL import Image

    image_path = Path(path)
    if not image_path.is_file():
        raise ValueError(f"image {str(image_path)!r} does not exist.")
    try:
        image = Image.open(image_path)
        image.load()
    except OSError as err:
        raise ValueError(f"cannot read {str(image_path)!r} as an image: {err}") from err
    return image.convert(mode) if mode is not None else image
