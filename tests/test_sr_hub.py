"""Super-resolution as users load it from the Hub: a repo id in an offline Hub cache, with evit-hf installed
(registered Auto classes and pipeline) and with `trust_remote_code=True` where evit-hf is not importable."""

from __future__ import annotations

import importlib.util
import textwrap

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


def _upscale_code(image: str, out: str, installed: bool) -> str:
    """A user's script: evit-hf imported (registered pipeline) or not (`trust_remote_code=True`)."""
    prelude = "import sys; sys.meta_path.pop(0); import evit_hf\n" if installed else ""  # pop: unblock evit_hf
    extra = "" if installed else ", trust_remote_code=True"
    return prelude + textwrap.dedent(f"""
        import numpy as np
        from transformers import pipeline
        upscaler = pipeline("image-super-resolution", model={REPO_ID!r}{extra})
        result = upscaler({image!r})
        assert result.size == (84, 60), result.size
        np.save({out!r}, np.asarray(result))
        print("OK", type(result).__name__, type(upscaler).__module__, type(upscaler.model).__module__)
    """)


def test_pipeline_from_offline_hub_id_both_ways(sr_hub_cache, tmp_path):
    import numpy as np

    image = _image(tmp_path / "in.png")
    for installed in (True, False):
        out = str(tmp_path / f"{installed}.npy")
        printed = run_python(_upscale_code(image, out, installed), env=offline_env(sr_hub_cache)).split()
        assert printed[:2] == ["OK", "Image"]
        # installed: evit-hf's registered pipeline and model; otherwise the repo's code (transformers_modules)
        prefix = "evit_hf." if installed else "transformers_modules."
        assert printed[2].startswith(prefix) and printed[3].startswith(prefix), printed
    assert np.array_equal(np.load(tmp_path / "True.npy"), np.load(tmp_path / "False.npy"))
