"""EfficientViT-SAM as users load it: a converted checkpoint in an offline Hub cache, with evit-hf installed.
Loading with trust_remote_code without evit-hf is tests/test_contract.py's SAM case."""

from __future__ import annotations

import pytest
import torch

from conftest import make_offline_hub_repo, offline_env, run_python


@pytest.fixture(scope="module")
def sam_hub_cache(tmp_path_factory, original_fixture):
    """org/efficientvit-sam-l0 in an offline Hub cache, converted by `evit-hf convert` from the original layout."""
    root = tmp_path_factory.mktemp("hf_home")
    fixture = original_fixture("sam-l0")
    make_offline_hub_repo(root, "org/efficientvit-sam-l0", "sam-l0", fixture.state_dict)
    return root, fixture


def test_sam_from_offline_hub_cache(sam_hub_cache, tmp_path):
    root, fixture = sam_hub_cache
    torch.save(fixture.image, tmp_path / "image.pt")
    torch.save(fixture.outputs["embeddings"], tmp_path / "embeddings.pt")
    out = run_python(f"""
        import sys
        sys.meta_path.pop(0)  # a user with evit-hf installed
        import torch, evit_hf
        from transformers import AutoImageProcessor, AutoModel
        model = AutoModel.from_pretrained("org/efficientvit-sam-l0").eval()
        processor = AutoImageProcessor.from_pretrained("org/efficientvit-sam-l0")
        assert type(processor).__name__ == "EfficientViTSamImageProcessor", type(processor)
        with torch.inference_mode():
            embeddings = model.get_image_embeddings(torch.load({str(tmp_path / 'image.pt')!r}))
        ref = torch.load({str(tmp_path / 'embeddings.pt')!r})
        diff = (embeddings[:, ::4, ::4, ::4] - ref).abs().max().item()
        assert diff < 1e-4, diff
        print("SHAPE", tuple(embeddings.shape))
    """, env=offline_env(root))
    assert "SHAPE (1, 256, 64, 64)" in out
