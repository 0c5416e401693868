"""`evit-hf` subcommands: each module exposes `register(subparsers)` and only adapts arguments to the library
(`evit_hf.resolve`, `evit_hf.predict`, `evit_hf.convert`, `export`, `bench`, `evaluation`, `release`) and
prints. What they share lives here: declaring a subcommand with its common options, reading and writing
images."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def add_command(subparsers: argparse._SubParsersAction, name: str, run: Callable[[argparse.Namespace], int],
                summary: str, description: str | None = None) -> argparse.ArgumentParser:
    """A subcommand `name` that calls `run(args)`; `summary` is its line in `evit-hf --help`."""
    parser = subparsers.add_parser(name, help=summary, description=description or summary)
    parser.set_defaults(func=run)
    return parser


def add_image_io(parser: argparse.ArgumentParser, model_help: str, out_default: str | None,
                 model_required: bool = True) -> None:
    """The options of a command that reads one image with a model and writes a picture: IMAGE, --model, --out."""
    parser.add_argument("image", help="input image file")
    parser.add_argument("--model", required=model_required, default=None, help=model_help)
    if out_default is None:
        parser.add_argument("--out", required=True, help="output image file (e.g. out.png)")
    else:
        parser.add_argument("--out", default=out_default, help=f"output image (default: {out_default})")


def add_alpha(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--alpha", type=float, default=0.5, help=f"opacity of the {what} (0-1)")


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")


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


def save_image(image, path: str | Path) -> Path:
    """Write `image` to `path` (parent folders created); returns the path. The file appears only once complete
    (written beside it, then renamed), so an interrupted command never leaves a truncated image under the name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        image.save(partial, format=_image_format(path))
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def _image_format(path: Path) -> str:
    """The PIL format of `path`'s extension (what `image.save(path)` would pick); a clear error for an unknown
    one."""
    from PIL import Image

    Image.init()
    extension = path.suffix.lower()
    if extension not in Image.EXTENSION:
        raise ValueError(f"cannot write {str(path)!r}: unknown image extension {extension or '(none)'!r}; use "
                         ".png, .jpg, .webp, ...")
    return Image.EXTENSION[extension]
