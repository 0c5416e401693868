"""Real photographs available offline: the images scikit-image ships, written as a `datasets` parquet folder.

Super-resolution needs natural images, and scikit-image installs a handful of real photographs (and
greyscale photos and textures) with the package, no download needed. `write_skimage_photos` writes them
as a train split and a held-out validation split (three colour photographs never used for training).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from .parquet import card_front_matter, png_bytes, require

# name in skimage.data -> what it is. Greyscale ones are stored as RGB (R = G = B).
TRAIN_PHOTOS: dict[str, str] = {
    "rocket": "a rocket on the launch pad (colour)",
    "motorcycle_left": "a motorcycle, left stereo view (colour)",
    "motorcycle_right": "a motorcycle, right stereo view (colour)",
    "hubble_deep_field": "Hubble deep field (colour)",
    "immunohistochemistry": "stained tissue microscopy (colour)",
    "retina": "retina fundus photograph (colour)",
    "camera": "the cameraman (greyscale)",
    "moon": "the lunar surface (greyscale)",
    "coins": "Greek coins (greyscale)",
    "brick": "brick wall texture (greyscale)",
    "grass": "grass texture (greyscale)",
    "gravel": "gravel texture (greyscale)",
    "cell": "cell microscopy (greyscale)",
}
HELD_OUT_PHOTOS: dict[str, str] = {
    "astronaut": "astronaut Eileen Collins (colour)",
    "coffee": "a cup of coffee (colour)",
    "chelsea": "Chelsea the cat (colour)",
}


def load_skimage_photo(name: str) -> Image.Image:
    """One scikit-image photograph as an RGB PIL image."""
    data = require("skimage.data", "The photographs come with scikit-image: pip install scikit-image.")
    if name not in TRAIN_PHOTOS and name not in HELD_OUT_PHOTOS:
        raise ValueError(f"Unknown photograph {name!r}; known: {sorted(TRAIN_PHOTOS) + sorted(HELD_OUT_PHOTOS)}.")
    if name.startswith("motorcycle_"):  # the two views of one stereo pair
        array = np.asarray(data.stereo_motorcycle()[0 if name.endswith("left") else 1])
    else:
        array = np.asarray(getattr(data, name)())
    if array.dtype != np.uint8:
        array = np.clip(array * (255.0 if array.max() <= 1.0 else 1.0), 0, 255).round().astype(np.uint8)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    return Image.fromarray(array[..., :3])


def write_skimage_photos(out_dir: str | Path) -> Path:
    """Write `out_dir/data/{train,validation}-00000-of-00001.parquet` (`id`, `image`) and a dataset card."""
    import datasets

    out_dir = Path(out_dir)
    (out_dir / "data").mkdir(parents=True, exist_ok=True)
    features = datasets.Features({"id": datasets.Value("string"), "image": datasets.Image()})
    for split, photos in (("train", TRAIN_PHOTOS), ("validation", HELD_OUT_PHOTOS)):
        images = [{"bytes": png_bytes(load_skimage_photo(name)), "path": None} for name in photos]
        rows = {"id": list(photos), "image": images}
        datasets.Dataset.from_dict(rows, features=features).to_parquet(
            str(out_dir / "data" / f"{split}-00000-of-00001.parquet"))
    listing = "\n".join(f"- `{name}`: {what}" for name, what in TRAIN_PHOTOS.items())
    held_out = "\n".join(f"- `{name}`: {what}" for name, what in HELD_OUT_PHOTOS.items())
    (out_dir / "README.md").write_text(
        card_front_matter() + "# scikit-image photographs\n\nThe real photographs scikit-image ships with the "
        "package (see `skimage.data` for their sources and licences), for offline super-resolution training.\n\n"
        f"Train ({len(TRAIN_PHOTOS)}):\n{listing}\n\nValidation, held out ({len(HELD_OUT_PHOTOS)}):\n{held_out}\n"
    )
    (out_dir / "photos.json").write_text(json.dumps({"train": list(TRAIN_PHOTOS),
                                                    "validation": list(HELD_OUT_PHOTOS)}, indent=2) + "\n")
    return out_dir


__all__ = ["HELD_OUT_PHOTOS", "TRAIN_PHOTOS", "load_skimage_photo", "write_skimage_photos"]
