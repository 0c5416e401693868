"""The x2 super-resolution checkpoint shipped in the package: present, small, and better than bicubic."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from evit_hf.sr_utils import embedded_sr_checkpoint, has_embedded_sr_checkpoint

pytestmark = pytest.mark.skipif(not has_embedded_sr_checkpoint(), reason="the embedded SR checkpoint is absent")


def test_checkpoint_is_small_safetensors():
    folder = embedded_sr_checkpoint()
    weights = folder / "model.safetensors"
    assert weights.stat().st_size < 5e6
    assert not list(folder.glob("*.bin")) and not list(folder.glob("*.pt"))


@pytest.mark.parametrize("photo", ["astronaut", "coffee", "chelsea"])
def test_beats_bicubic_on_held_out_photographs(photo):
    """Each held-out photograph (never trained on) halved with bicubic and upscaled back: >= 0.5 dB PSNR-Y gain."""
    from evit_hf.data.photos import HELD_OUT_PHOTOS, TRAIN_PHOTOS, load_skimage_photo
    from evit_hf.metrics.super_resolution import psnr_y
    from evit_hf.models.efficientvit.pipeline_efficientvit_sr import SuperResolutionPipeline
    from evit_hf.resolve import load_model

    assert photo in HELD_OUT_PHOTOS and photo not in TRAIN_PHOTOS
    original = load_skimage_photo(photo)
    original = original.crop((0, 0, original.width // 2 * 2, original.height // 2 * 2))
    small = original.resize((original.width // 2, original.height // 2), Image.BICUBIC)
    model, processor, _ = load_model(None, "image-to-image")
    ours = SuperResolutionPipeline(model=model, image_processor=processor)(small)
    bicubic = small.resize(original.size, Image.BICUBIC)
    gain = psnr_y(ours, original, 2) - psnr_y(bicubic, original, 2)
    assert gain >= 0.5, gain


def test_upscale_command_uses_it_by_default(tmp_path, capsys):
    from evit_hf.cli import main

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(tmp_path / "in.png")
    assert main(["upscale", str(tmp_path / "in.png"), "--out", str(tmp_path / "out.png"),
                 "--compare", str(tmp_path / "cmp.png")]) == 0
    assert Image.open(tmp_path / "out.png").size == (120, 80)
    assert (tmp_path / "cmp.png").is_file()
