"""Super-resolution as users load it from the Hub: a repo id in an offline Hub cache with evit-hf installed
(registered Auto classes and pipeline). Loading it with `trust_remote_code=True` where evit-hf is not importable
is tests/test_contract.py's super-resolution case."""

from __future__ import annotations

import importlib.util

import pytest

from conftest import offline_env, run_python

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("transformers.image_processing_backends") is None,
    reason="the SR image processor and pipeline need transformers >= 5",
)

REPO_ID = "org/efficientvit-sr-tiny-x3"


@pytest.fixture(scope="module")
def sr_hub_cache(tmp_path_factory):
    """`REPO_ID` in an offline Hub cache: a tiny random x3 model saved with `save_pretrained_with_code`."""
    import torch

    from conftest import randomize_weights
    from evit_hf import EfficientViTForImageSuperResolution, EfficientViTSRConfig
    from evit_hf.hub_utils import save_pretrained_with_code

    root = tmp_path_factory.mktemp("hf_home")
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = root / "hub" / ("models--" + REPO_ID.replace("/", "--"))
    torch.manual_seed(0)
    config = EfficientViTSRConfig(upscale=3, hidden_size=16, num_blocks=1, attention_head_dim=8)
    model = randomize_weights(EfficientViTForImageSuperResolution(config)).eval()
    with torch.no_grad():
        model.upsampler.proj.weight.mul_(0.02)
    save_pretrained_with_code(model, repo / "snapshots" / revision)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    return root


def _image(path) -> str:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (20, 28, 3), dtype=np.uint8)).save(path)
    return str(path)


def test_pipeline_from_offline_hub_id_with_evit_hf(sr_hub_cache, tmp_path):
    import numpy as np
    from PIL import Image
    from transformers import AutoModelForImageToImage

    from evit_hf import SuperResolutionPipeline

    image = _image(tmp_path / "in.png")
    out = str(tmp_path / "upscaled.npy")
    printed = run_python(f"""
        import sys; sys.meta_path.pop(0)  # a user with evit-hf installed
        import evit_hf
        import numpy as np
        from transformers import pipeline
        upscaler = pipeline("image-super-resolution", model={REPO_ID!r})
        result = upscaler({image!r})
        np.save({out!r}, np.asarray(result))
        print("OK", type(result).__name__, type(upscaler).__module__, type(upscaler.model).__module__)
    """, env=offline_env(sr_hub_cache)).split()
    assert printed[:2] == ["OK", "Image"]
    # evit-hf's registered pipeline and model, not the repo's code
    assert printed[2].startswith("evit_hf.") and printed[3].startswith("evit_hf."), printed
    upscaled = np.load(out)
    assert upscaled.shape == (60, 84, 3)
    folder = next((sr_hub_cache / "hub").glob("models--*/snapshots/*"))
    model = AutoModelForImageToImage.from_pretrained(folder).eval()
    expected = SuperResolutionPipeline(model=model, image_processor=None)(Image.open(image))
    assert np.abs(upscaled.astype(int) - np.asarray(expected).astype(int)).max() <= 1  # uint8 rounding of ~1e-7
