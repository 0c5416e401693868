"""Segmentation as users load it: `evit-hf convert` folders, an offline Hub cache, trust_remote_code."""

from __future__ import annotations

import pytest
import torch

from conftest import make_offline_hub_repo, offline_env, run_python


@pytest.fixture(scope="module")
def seg_hub_cache(tmp_path_factory, original_fixture):
    """org/efficientvit-seg-b0-cityscapes in an offline Hub cache, written by `evit-hf convert`."""
    root = tmp_path_factory.mktemp("hf_home")
    fixture = original_fixture("seg-b0-cityscapes")
    repo_id = "org/efficientvit-seg-b0-cityscapes"
    snapshot = make_offline_hub_repo(root, repo_id, "seg-b0-cityscapes", fixture.state_dict)
    return root, snapshot, fixture


def _astronaut(path) -> str:
    from PIL import Image
    from skimage import data

    Image.fromarray(data.astronaut()).resize((256, 200)).save(path)
    return str(path)


def test_pipeline_from_offline_hub_id(seg_hub_cache, tmp_path):
    root, _, fixture = seg_hub_cache
    torch.save(fixture.image, tmp_path / "image.pt")
    torch.save(fixture.outputs["logits"], tmp_path / "logits.pt")
    image = _astronaut(tmp_path / "astronaut.png")
    out = run_python(f"""
        import sys
        sys.meta_path.pop(0)  # a user with evit-hf installed
        import torch, evit_hf
        from transformers import AutoModelForSemanticSegmentation, pipeline
        repo = "org/efficientvit-seg-b0-cityscapes"
        model = AutoModelForSemanticSegmentation.from_pretrained(repo).eval()
        with torch.inference_mode():
            logits = model(torch.load({str(tmp_path / 'image.pt')!r})).logits
        assert (logits - torch.load({str(tmp_path / 'logits.pt')!r})).abs().max() < 1e-4
        result = pipeline("image-segmentation", model=repo)({image!r})
        labels = [r["label"] for r in result]
        assert len(labels) == len(set(labels)) >= 1
        assert all(r["mask"].size == (256, 200) for r in result)
        names = set(model.config.id2label.values())
        assert set(labels) <= names and "road" in names
        print("OK", len(result))
    """, env=offline_env(root))
    assert "OK" in out


def test_converted_folder_is_a_remote_code_folder(seg_hub_cache):
    """`evit-hf convert` writes what tests/test_contract.py loads with trust_remote_code (where evit-hf is not
    installed): safetensors weights, the model code with every module it imports, and both auto_maps."""
    import json
    import re

    from evit_hf import EfficientViTSegImageProcessor

    _, folder, _ = seg_hub_cache
    files = {p.name for p in folder.iterdir()}
    assert {"model.safetensors", "config.json", "preprocessor_config.json"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pth")) for name in files)
    for code in folder.glob("*.py"):
        for module in re.findall(r"^\s*from \.(\w+) import", code.read_text(), re.M):
            assert f"{module}.py" in files, (code.name, module)
    auto_map = json.loads((folder / "config.json").read_text())["auto_map"]
    module, name = auto_map["AutoModelForSemanticSegmentation"].split(".")
    assert f"{module}.py" in files and name == "EfficientViTForSemanticSegmentation"
    processor_map = json.loads((folder / "preprocessor_config.json").read_text())["auto_map"]
    module, name = processor_map["AutoImageProcessor"].split(".")
    assert f"{module}.py" in files and name == EfficientViTSegImageProcessor.__name__
