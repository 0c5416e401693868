"""`evit_hf.resolve`: presets (random weights, said loudly), saved folders, the embedded SR checkpoint, clear errors
for names that point nowhere, and `locate` (where a name points, without loading it)."""

from __future__ import annotations

import pytest
import torch

from evit_hf.models.efficientvit import (
    EfficientViTForImageClassification,
    EfficientViTForImageSuperResolution,
    EfficientViTForSemanticSegmentation,
    EfficientViTImageProcessor,
    EfficientViTModel,
    EfficientViTSegImageProcessor,
    EfficientViTSRImageProcessor,
)
from evit_hf.resolve import RandomWeightsWarning, load_model, locate, preset_model
from evit_hf.sr_utils import has_embedded_sr_checkpoint
from test_segmentation import tiny_config

OFFLINE = lambda: False  # noqa: E731 - the Hub is never asked
needs_processors = pytest.mark.skipif(EfficientViTImageProcessor is None, reason="image processors: transformers >= 5")


@needs_processors
def test_preset_has_random_weights_and_says_so():
    with pytest.warns(RandomWeightsWarning, match="'b0' is a preset name: the model has random weights"):
        model, processor, task = load_model("b0")
    assert isinstance(model, EfficientViTForImageClassification) and not model.training
    assert task == "image-classification" and isinstance(processor, EfficientViTImageProcessor)
    with pytest.warns(RandomWeightsWarning):
        backbone, _, task = load_model("b0", "feature-extraction", seed=0)
    assert type(backbone) is EfficientViTModel and task == "feature-extraction"
    # with a seed, the deterministic reference weights: the same on every load
    first, second = preset_model("b0", seed=3).state_dict(), preset_model("b0", seed=3).state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)
    with pytest.raises(ValueError, match=r"Preset 'b0' \(image-classification\) cannot load as task 'mask-generation'"):
        load_model("b0", "mask-generation")
    with pytest.raises(ValueError, match="Unknown task 'detection'"):
        load_model("b0", "detection")


@needs_processors
def test_folder_keeps_its_processor_and_infers_its_task(tmp_path):
    model = EfficientViTForSemanticSegmentation(tiny_config())
    model.save_pretrained(tmp_path / "bare")
    loaded, processor, task = load_model(tmp_path / "bare")  # no processor saved: the family default
    assert task == "semantic-segmentation" and isinstance(loaded, EfficientViTForSemanticSegmentation)
    assert isinstance(processor, EfficientViTSegImageProcessor)
    assert processor.to_dict() == EfficientViTSegImageProcessor.for_dataset("cityscapes").to_dict()
    own = EfficientViTSegImageProcessor.for_dataset("ade20k", size={"shortest_edge": 96})
    model.save_pretrained(tmp_path / "full")
    own.save_pretrained(tmp_path / "full")
    _, processor, _ = load_model(str(tmp_path / "full"), "semantic-segmentation")
    assert processor.to_dict() == own.to_dict()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    with pytest.raises(ValueError, match="holds a EfficientViTConfig, which cannot load as task 'image-to-image'"):
        load_model(tmp_path / "bare", "image-to-image")


@needs_processors
def test_super_resolution_default_scale_and_family_names():
    if has_embedded_sr_checkpoint():
        model, processor, task = load_model(None, "image-to-image")  # the checkpoint shipped in the package
        assert isinstance(model, EfficientViTForImageSuperResolution) and model.config.upscale == 2
        assert isinstance(processor, EfficientViTSRImageProcessor) and task == "image-to-image"
        with pytest.raises(ValueError, match="upscales x2, not x4"):
            load_model(None, "image-to-image", scale=4)
    with pytest.warns(RandomWeightsWarning, match="bicubic"):
        model, _, _ = load_model("sr-light", "image-to-image", scale=3)  # a family name picks the factor
    assert model.config.upscale == 3
    with pytest.raises(ValueError, match="Unknown SR preset 'sr-huge-x2'"):
        load_model("sr-huge-x2", "image-to-image")
    with pytest.raises(ValueError, match="no model given"):
        load_model(None, "semantic-segmentation")


def test_names_that_point_nowhere(tmp_path):
    with pytest.raises(ValueError, match="'b9' is not a preset, a folder or a Hub id; presets: b0"):
        load_model("b9")
    with pytest.raises(ValueError, match="Unknown SAM preset 'sam-xxl'"):
        load_model("sam-xxl", "mask-generation")
    with pytest.raises(ValueError, match="cannot load model"):
        load_model(str(tmp_path / "missing"), "mask-generation")


def test_locate(tmp_path):
    EfficientViTForSemanticSegmentation(tiny_config()).save_pretrained(tmp_path / "model")
    (tmp_path / "empty").mkdir()
    kinds = {
        "sam-l0": "preset", str(tmp_path / "model"): "folder", str(tmp_path / "empty"): "not-a-model-folder",
        "no-such-thing": "not-a-name", "evit-hf/x": "hub-offline", "bad..id/x": "invalid-hub-id",
    }
    for name, kind in kinds.items():
        location = locate(name, "mask-generation" if name == "sam-l0" else "semantic-segmentation", OFFLINE)
        assert location.kind == kind, name
        assert location.available == (kind in ("preset", "folder"))
    assert locate("sam-l0", "semantic-segmentation", OFFLINE).kind == "not-a-name"  # presets of another task
    assert locate("evit-hf/x", "semantic-segmentation", lambda: True).kind == "hub"
    embedded = locate(None, "image-to-image", OFFLINE)
    assert embedded.kind == ("embedded" if has_embedded_sr_checkpoint() else "embedded-missing")
