"""Loading as users do: Auto classes, trust_remote_code without evit-hf, an offline Hub cache, pipelines."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_offline_hub_repo, offline_env, randomize_weights, run_python
from evit_hf import EfficientViTConfig, EfficientViTForImageClassification
from evit_hf.hub_utils import save_pretrained_with_code
from evit_hf.models.efficientvit.image_processing_efficientvit import EfficientViTImageProcessor


def photo() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    torch.manual_seed(0)
    config = EfficientViTConfig(widths=[8, 16, 16, 32, 32], depths=[1, 1, 1, 1, 1], attention_head_dim=8,
                                head_widths=[32, 48], id2label={0: "cat", 1: "dog", 2: "bird"})
    model = randomize_weights(EfficientViTForImageClassification(config)).eval()
    folder = tmp_path_factory.mktemp("tiny")
    save_pretrained_with_code(model, folder, EfficientViTImageProcessor.for_variant("b1", resolution=64))
    return folder, model


def test_folder_contents_and_round_trip(tiny_folder):
    from transformers import AutoImageProcessor, AutoModel, AutoModelForImageClassification

    folder, model = tiny_folder
    files = set(os.listdir(folder))
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "configuration_efficientvit.py",
            "modeling_efficientvit.py", "image_processing_efficientvit.py"} <= files
    assert not any(f.endswith((".bin", ".pt", ".pth")) for f in files)
    auto_map = json.loads((folder / "config.json").read_text())["auto_map"]
    assert auto_map["AutoModelForImageClassification"] == "modeling_efficientvit.EfficientViTForImageClassification"
    reloaded = AutoModelForImageClassification.from_pretrained(folder).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        logits = model(x).logits
        assert logits.abs().max() > 0.1
        assert torch.allclose(reloaded(x).logits, logits, atol=1e-6)
    assert type(AutoModel.from_pretrained(folder)).__name__ == "EfficientViTModel"
    assert isinstance(AutoImageProcessor.from_pretrained(folder), EfficientViTImageProcessor)


def test_plain_save_pretrained_carries_code(tiny_folder, tmp_path):
    _, model = tiny_folder
    model.save_pretrained(tmp_path)
    files = set(os.listdir(tmp_path))
    assert {"model.safetensors", "modeling_efficientvit.py", "configuration_efficientvit.py"} <= files
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert auto_map["AutoConfig"] == "configuration_efficientvit.EfficientViTConfig"
    assert auto_map["AutoBackbone"] == "modeling_efficientvit.EfficientViTBackbone"


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory, original_fixture):
    """An offline Hub cache holding org/efficientvit-b1-r224, converted from the original-layout fixture."""
    root = tmp_path_factory.mktemp("hf_home")
    fixture = original_fixture("cls-b1")
    make_offline_hub_repo(root, "org/efficientvit-b1-r224", "cls-b1", fixture.state_dict)
    return root, fixture


def test_offline_hub_cache_auto_model_and_pipeline(hub_cache, tmp_path):
    root, fixture = hub_cache
    torch.save(fixture.image, tmp_path / "image.pt")
    torch.save(fixture.outputs["logits"], tmp_path / "logits.pt")
    photo().save(tmp_path / "astronaut.png")
    out = run_python(f"""
        import sys
        sys.meta_path.pop(0)  # this test uses the installed package, as a user with evit-hf does
        import torch, evit_hf
        from transformers import AutoModelForImageClassification, pipeline
        model = AutoModelForImageClassification.from_pretrained("org/efficientvit-b1-r224").eval()
        with torch.inference_mode():
            diff = (model(torch.load({str(tmp_path / 'image.pt')!r})).logits
                    - torch.load({str(tmp_path / 'logits.pt')!r})).abs().max().item()
        assert diff < 1e-4, diff
        classifier = pipeline("image-classification", model="org/efficientvit-b1-r224")
        result = classifier({str(tmp_path / 'astronaut.png')!r}, top_k=5)
        assert len(result) == 5 and all(isinstance(r["label"], str) for r in result)
        scores = [r["score"] for r in result]
        assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0001
        print("LABEL", result[0]["label"])
    """, env=offline_env(root))
    label = out.split("LABEL", 1)[1].strip()
    from evit_hf.data import imagenet_labels

    assert label in imagenet_labels()


def test_classification_processor_matches_original_recipe():
    image = photo().resize((300, 200))
    processor = EfficientViTImageProcessor.for_variant("b1", resolution=224)
    ours = processor(image, return_tensors="pt").pixel_values[0]
    # the original: Resize(ceil(224 / 0.95) = 236, BICUBIC) on the short side, CenterCrop(224), ToTensor, Normalize
    w, h = image.size
    resized = image.resize((int(236 * w / h), 236), Image.BICUBIC)
    left, top = (resized.width - 224) // 2, (resized.height - 224) // 2
    crop = np.asarray(resized.crop((left, top, left + 224, top + 224)), dtype=np.float32) / 255.0
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    expected = torch.from_numpy(((crop - mean) / std).transpose(2, 0, 1)).float()
    assert ours.shape == (3, 224, 224)
    assert (ours - expected).abs().max() < 1e-5
    assert EfficientViTImageProcessor.for_variant("l2", resolution=384).size.shortest_edge == 384
    with pytest.raises(ValueError, match="Unknown classification variant"):
        EfficientViTImageProcessor.for_variant("b7")


def test_processor_converts_grayscale_and_rgba():
    processor = EfficientViTImageProcessor()
    image = photo()
    for mode in ("L", "RGBA", "P"):
        assert processor(image.convert(mode), return_tensors="pt").pixel_values.shape == (1, 3, 224, 224)
