"""EfficientViT-SAM as users load it: an offline Hub cache and trust_remote_code without evit-hf."""

from __future__ import annotations

import pytest
import torch

from conftest import make_offline_hub_repo, offline_env, run_python
from evit_hf.hub_utils import save_pretrained_with_code
from evit_hf.models.efficientvit.image_processing_efficientvit_sam import EfficientViTSamImageProcessor
from evit_hf.models.efficientvit.modeling_efficientvit_sam import EfficientViTSamModel
from test_sam import tiny_sam_config


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


def test_sam_trust_remote_code_without_evit_hf(tmp_path):
    torch.manual_seed(0)
    config = tiny_sam_config()
    model = EfficientViTSamModel(config).eval()
    save_pretrained_with_code(model, tmp_path, EfficientViTSamImageProcessor.for_config(config))
    pixels = torch.randn(1, 3, 128, 128)
    points = torch.tensor([[[[30.0, 40.0]]]])
    with torch.inference_mode():
        torch.save(model(pixels, input_points=points).pred_masks, tmp_path / "masks.pt")
    torch.save(pixels, tmp_path / "pixels.pt")
    out = run_python(f"""
        import numpy as np, torch
        from PIL import Image
        from transformers import AutoImageProcessor, AutoModel, AutoModelForMaskGeneration, pipeline
        folder = {str(tmp_path)!r}
        model = AutoModelForMaskGeneration.from_pretrained(folder, trust_remote_code=True).eval()
        assert "transformers_modules" in type(model).__module__
        assert type(AutoModel.from_pretrained(folder, trust_remote_code=True)).__name__ == "EfficientViTSamModel"
        with torch.inference_mode():
            masks = model(torch.load(folder + "/pixels.pt"), input_points=torch.tensor([[[[30.0, 40.0]]]])).pred_masks
        assert (masks - torch.load(folder + "/masks.pt")).abs().max() < 1e-6
        processor = AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)
        image = Image.fromarray((np.random.default_rng(0).random((90, 120, 3)) * 255).astype(np.uint8))
        result = pipeline("mask-generation", model=folder, trust_remote_code=True, points_per_batch=8)(
            image, points_per_crop=2, pred_iou_thresh=-1e9, stability_score_thresh=-1e9)
        print("MASKS", len(result["masks"]), result["masks"][0].shape)
    """)
    assert "MASKS" in out and "(90, 120)" in out
