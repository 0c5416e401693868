"""`evit_hf.resolve`: `random:` presets (random weights, said loudly), saved folders, the embedded SR checkpoint,
one-line errors for names that point nowhere, and `find_source` (where a name points, without loading it). Released
models by name, from offline Hub caches laid out as the authors' repos: tests/test_released.py."""

from __future__ import annotations

import re

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
from evit_hf.resolve import RandomWeightsWarning, find_source, load_model, preset_model
from evit_hf.sr_utils import has_embedded_sr_checkpoint
from test_segmentation import tiny_config

OFFLINE = lambda: False  # noqa: E731 - the Hub is never asked
needs_processors = pytest.mark.skipif(EfficientViTImageProcessor is None, reason="image processors: transformers >= 5")


@needs_processors
def test_preset_has_random_weights_and_says_so():
    with pytest.warns(RandomWeightsWarning, match="random:b0 has random weights"):
        model, processor, task = load_model("random:b0")
    assert isinstance(model, EfficientViTForImageClassification) and not model.training
    assert task == "image-classification" and isinstance(processor, EfficientViTImageProcessor)
    with pytest.warns(RandomWeightsWarning):
        backbone, _, task = load_model("random:b0", "feature-extraction", seed=0)
    assert type(backbone) is EfficientViTModel and task == "feature-extraction"
    # with a seed, the deterministic reference weights: the same on every load
    first, second = preset_model("b0", seed=3).state_dict(), preset_model("b0", seed=3).state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)
    with pytest.raises(ValueError, match=r"Preset 'b0' \(image-classification\) cannot load as task 'mask-generation'"):
        load_model("random:b0", "mask-generation")
    with pytest.raises(ValueError, match="Unknown task 'detection'"):
        load_model("random:b0", "detection")
    # a preset without released weights asks for the explicit opt-in instead of loading random weights
    with pytest.raises(ValueError, match=r"'l0' has no released weights; pass 'random:l0'"):
        load_model("l0")


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
        model, _, _ = load_model("random:sr-light", "image-to-image", scale=3)  # a family name picks the factor
    assert model.config.upscale == 3
    with pytest.raises(ValueError, match="'sr-light-x3' has no released weights; pass 'random:sr-light-x3'"):
        load_model("sr-light", "image-to-image", scale=3)
    with pytest.raises(ValueError, match="Unknown SR preset 'sr-huge-x2'"):
        load_model("random:sr-huge-x2", "image-to-image")
    with pytest.raises(ValueError, match="no model given"):
        load_model(None, "semantic-segmentation")


def test_names_that_point_nowhere(tmp_path):
    with pytest.raises(ValueError, match=r"'b9' is not a released model, a folder or a Hub id \(org/name\); did you "
                                         r"mean 'b3', 'b2', 'b1'\?"):
        load_model("b9")
    with pytest.raises(ValueError, match="Unknown SAM preset 'sam-xxl'"):
        load_model("random:sam-xxl", "mask-generation")
    with pytest.raises(ValueError, match="does not exist"):
        load_model(str(tmp_path / "missing"), "mask-generation")
    with pytest.raises(ValueError, match="efficientvit-sam-l0 is a model for mask-generation, not semantic-seg"):
        load_model("sam-l0", "semantic-segmentation")  # fails before anything is downloaded


def test_find_source(tmp_path):
    EfficientViTForSemanticSegmentation(tiny_config()).save_pretrained(tmp_path / "model")
    (tmp_path / "empty").mkdir()
    task = "semantic-segmentation"
    assert find_source("random:seg-b1-cityscapes", task, online=OFFLINE).kind == "random"
    assert find_source(str(tmp_path / "model"), task, online=OFFLINE).kind == "folder"
    assert find_source("evit-hf/x", task, online=lambda: True).kind == "hub"  # online: loaded from the Hub
    problems = {
        str(tmp_path / "empty"): "is not a saved model folder (no config.json)",
        "no-such-thing": "'no-such-thing' is not a released model, a folder or a Hub id",
        "evit-hf/efficientvit-seg-b1-ade20k": "not in the local Hugging Face cache and the Hub cannot be asked "
                                              "(offline: ",
        "bad..id/x": "is not a valid Hub id",
        "random:sam-l0": "Preset 'sam-l0' (mask-generation) cannot load as task 'semantic-segmentation'",
        "random:seg-b9-cityscapes": "Unknown segmentation preset 'seg-b9-cityscapes'",
    }
    for name, message in problems.items():
        with pytest.raises(ValueError, match=re.escape(message)) as error:
            find_source(name, task, online=OFFLINE)
        assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="The released model 'efficientvit-seg-b1-ade20k' loads by that name"):
        find_source("evit-hf/efficientvit-seg-b1-ade20k", task, online=OFFLINE)
    if has_embedded_sr_checkpoint():  # the default super-resolution model is the released x2 checkpoint
        embedded = find_source(None, "image-to-image", online=OFFLINE)
        assert embedded.kind == "folder" and embedded.released.name == "efficientvit-sr-light-x2"
        assert find_source("sr-light-x2", "image-to-image", online=OFFLINE).location == embedded.location
