"""The transformers contract of every model family, end to end, as users load the models.

Each family (classification, backbone, Cityscapes-style segmentation, SAM, super-resolution, and segmentation
with each non-default token mixer) is a tiny random model with its image processor. In process: its forward
returns the output dataclass, `return_dict=False` returns the same fields as a tuple, and a safetensors folder
(`save_pretrained_with_code`) reloads through the Auto classes to identical outputs. Then the folders go into an
offline Hub cache and are loaded by repo id with `trust_remote_code=True` in ONE fresh interpreter where
`import evit_hf` fails (the `remote` fixture runs tests/contract_remote.py once): the model, its image
processor, its pipeline and the model card's remote-code snippet, each compared numerically with the in-process
model. That script also reports whether evit_hf was importable and where every loaded class came from; each
family's case asserts its own part of the results.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import evit_hf  # noqa: F401  (registers the Auto classes and the super-resolution pipeline)
from conftest import hub_snapshot_dir, offline_env, randomize_weights, run_python
from contract_remote import flatten, model_inputs, pipeline_output

pytestmark = pytest.mark.skipif(
    evit_hf.EfficientViTImageProcessor is None, reason="the image processors and pipelines need transformers >= 5"
)

# Distinctive class names: a model that lost its config (or a pipeline that invented labels) cannot match them.
LABELS = {0: "quokka", 1: "theremin", 2: "zebra crossing", 3: "axolotl", 4: "sextant"}
PHOTO_SIZE = (120, 90)  # (width, height) of the photograph every family is run on
TOLERANCE = 1e-5  # the same code on the same weights: only summation-order differences (~2e-7) are allowed


def photo() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.chelsea()).resize(PHOTO_SIZE, Image.BICUBIC)


def tiny_config(**overrides):
    """A narrow 5-stage B-style network with a classification and a segmentation head."""
    from evit_hf import EfficientViTConfig

    kwargs = dict(
        widths=[8, 8, 16, 16, 32], depths=[1, 1, 1, 1, 1], block_types=["ds", "mb", "mb", "att", "att"],
        expand_ratios=[1, 2, 2, 2, 2], downsample_expand_ratios=[1, 2, 2, 2, 2],
        fewer_norm=[False, False, False, True, True], attention_head_dim=8, head_widths=[32, 48],
        segmentation_head_width=16, segmentation_head_depth=1, segmentation_final_expand=2, id2label=LABELS,
    )
    return EfficientViTConfig(**{**kwargs, **overrides})


def classification():
    from evit_hf import EfficientViTForImageClassification, EfficientViTImageProcessor

    return (EfficientViTForImageClassification(tiny_config()),
            EfficientViTImageProcessor.for_resolution(64, crop_pct=0.95))


def backbone():
    from evit_hf import EfficientViTBackbone, EfficientViTImageProcessor

    return (EfficientViTBackbone(tiny_config(out_features=["stage2", "stage4"])),
            EfficientViTImageProcessor.for_resolution(64))


def segmentation(token_mixer: str = "lite_mla"):
    from evit_hf import EfficientViTForSemanticSegmentation, EfficientViTSegImageProcessor

    return (EfficientViTForSemanticSegmentation(tiny_config(token_mixer=token_mixer)),
            EfficientViTSegImageProcessor.for_dataset("cityscapes", size={"height": 64, "width": 96}))


def sam():
    from evit_hf import EfficientViTSamConfig, EfficientViTSamImageProcessor, EfficientViTSamModel

    vision = dict(
        widths=[8, 16, 32, 64], depths=[1, 1, 1, 1], block_types=["res", "fmb", "mb", "att"],
        expand_ratios=[1, 2, 2, 2], downsample_expand_ratios=[1, 2, 2, 2], fewer_norm=[False, False, True, True],
        attention_head_dim=8, attention_scales=[3], image_size=128, neck_in_features=["stage3", "stage2"],
        neck_hidden_size=32, neck_depth=1, neck_output_size=8,
    )
    config = EfficientViTSamConfig(
        vision_config=vision, prompt_encoder_config={"hidden_size": 32, "image_size": 128, "patch_size": 16},
        mask_decoder_config={"hidden_size": 32, "mlp_dim": 64, "num_attention_heads": 2, "iou_head_hidden_dim": 32},
    )
    return EfficientViTSamModel(config), EfficientViTSamImageProcessor.for_config(config)


def super_resolution():
    from evit_hf import EfficientViTForImageSuperResolution, EfficientViTSRConfig, EfficientViTSRImageProcessor

    config = EfficientViTSRConfig(upscale=2, hidden_size=16, num_blocks=1, attention_head_dim=8)
    return EfficientViTForImageSuperResolution(config), EfficientViTSRImageProcessor()


@dataclass(frozen=True)
class Family:
    """One model family: how to build it, which Auto class and pipeline serve it, which card snippet shows it."""

    name: str
    build: Callable[[], tuple[Any, Any]]  # (model, image processor)
    auto_class: str
    task: str
    output_fields: tuple[str, ...]  # the output dataclass's tensors
    card: str | None = None  # release family (`evit_hf.release.templates.SNIPPET_REMOTE`) of its model card
    prompts: dict = field(default_factory=dict)  # processor keyword arguments besides the image
    pipeline_call: dict = field(default_factory=dict)  # pipeline call keyword arguments
    pipeline_init: dict = field(default_factory=dict)  # pipeline(...) keyword arguments


FAMILIES = [
    Family("classification", classification, "AutoModelForImageClassification", "image-classification",
           ("logits",), card="cls", pipeline_call={"top_k": 5}),
    Family("backbone", backbone, "AutoBackbone", "image-feature-extraction", ("feature_maps",)),
    Family("segmentation", segmentation, "AutoModelForSemanticSegmentation", "image-segmentation", ("logits",),
           card="seg"),
    Family("sam", sam, "AutoModelForMaskGeneration", "mask-generation", ("iou_scores", "pred_masks"), card="sam",
           prompts={"input_points": [[[60.0, 45.0]]], "input_labels": [[1]]},
           pipeline_init={"points_per_batch": 8},
           pipeline_call={"points_per_crop": 2, "pred_iou_thresh": -1e9, "stability_score_thresh": -1e9}),
    Family("super-resolution", super_resolution, "AutoModelForImageToImage", "image-super-resolution",
           ("reconstruction",), card="sr", pipeline_call={"tile_size": 16, "tile_overlap": 4}),
    *(Family(f"token-mixer-{mixer}", lambda mixer=mixer: segmentation(mixer), "AutoModelForSemanticSegmentation",
             "image-segmentation", ("logits",)) for mixer in ("softmax", "hyena", "retention")),
]
BY_NAME = {family.name: family for family in FAMILIES}


def pipeline_expectation(family: Family, model, processor, folder: Path, image: Image.Image) -> tuple[dict, list]:
    """What the family's pipeline must return, as `pipeline_output` writes it: from the in-process model's
    outputs where the pipeline only post-processes them, else from the in-process pipeline."""
    from transformers import AutoModel, pipeline

    inputs = model_inputs(processor, image, {})
    with torch.inference_mode():
        if family.task == "image-classification":
            probabilities = model(**inputs).logits.float().softmax(-1)[0]
            scores, ids = probabilities.topk(family.pipeline_call["top_k"])
            return {"pipeline.scores": scores}, [model.config.id2label[int(i)] for i in ids]
        if family.task == "image-feature-extraction":  # the pipeline loads AutoModel from the folder
            features = AutoModel.from_pretrained(folder).eval()(**inputs).last_hidden_state
            return {"pipeline.features": features}, []
        if family.task == "image-segmentation":
            outputs = model(**inputs)
            label_map = processor.post_process_semantic_segmentation(outputs, target_sizes=[image.size[::-1]])[0]
            ids = sorted(int(i) for i in label_map.unique())
            masks = torch.stack([label_map == i for i in ids]).float()
            return {"pipeline.masks": masks}, [model.config.id2label[i] for i in ids]
    extra = {}
    if family.task == "mask-generation":
        # Where evit-hf is not installed, a remote-code folder brings its model and processors but not evit-hf's
        # pipeline class (`evit_hf.predict.pipeline`, low-resolution filtering): the user runs transformers' own
        # MaskGenerationPipeline, so that is the expectation here. evit-hf's generator is held to the reference
        # generator's masks in tests/test_mask_generation.py.
        from transformers import MaskGenerationPipeline

        extra["pipeline_class"] = MaskGenerationPipeline
    runner = pipeline(family.task, model=model, image_processor=processor, **family.pipeline_init, **extra)
    return pipeline_output(family.task, runner(image, **family.pipeline_call))


@dataclass
class Built:
    """A family's in-process model, processor and inputs, its saved folder (a Hub repo) and pipeline labels."""

    model: Any
    processor: Any
    inputs: dict[str, torch.Tensor]
    folder: Path
    pipeline_labels: list[str]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("contract")
    photo().save(root / "photo.png")
    photo().convert("RGB").save(root / "photo.jpg")  # what the card snippets open
    return root


@pytest.fixture(scope="module")
def built(workspace) -> dict[str, Built]:
    """Every family built, run and saved into an offline Hub cache under `workspace/hf_home`; the expected
    outputs (model, processor, pipeline) written as safetensors for the remote-code interpreter."""
    from safetensors.torch import save_file

    from evit_hf.hub_utils import save_pretrained_with_code
    from evit_hf.release.templates import SNIPPET_REMOTE

    image = Image.open(workspace / "photo.png")
    families, spec = {}, []
    for seed, family in enumerate(FAMILIES):
        torch.manual_seed(seed)
        model, processor = family.build()
        model = randomize_weights(model.eval(), seed)
        if family.task == "image-super-resolution":  # a mild residual over bicubic: no clamped, saturated output
            last = [m for m in model.modules() if getattr(m, "weight", None) is not None][-1]
            with torch.no_grad():
                last.weight.mul_(0.05)
        repo_id = f"contract/{family.name}"
        folder = save_pretrained_with_code(model, hub_snapshot_dir(workspace / "hf_home", repo_id), processor)
        inputs = model_inputs(processor, image, family.prompts)
        with torch.inference_mode():
            outputs = model(**inputs)
        expected, labels = pipeline_expectation(family, model, processor, folder, image)
        families[family.name] = Built(model, processor, inputs, folder, labels)
        for name in family.output_fields:
            expected.update(flatten(f"output.{name}", outputs[name]))
        save_file({**flatten("inputs", inputs), **expected}, str(workspace / f"{family.name}.safetensors"))
        spec.append({
            "name": family.name, "repo_id": repo_id, "auto_class": family.auto_class, "task": family.task,
            "prompts": family.prompts, "pipeline_init": family.pipeline_init, "pipeline_call": family.pipeline_call,
            "output_fields": list(family.output_fields),
            "card": SNIPPET_REMOTE[family.card].substitute(repo_id=repo_id) if family.card else None,
        })
    (workspace / "spec.json").write_text(json.dumps(spec, indent=1))
    return families


@pytest.fixture(scope="module")
def remote(built, workspace) -> dict:
    """results.json of tests/contract_remote.py, run once for every family in an interpreter without evit_hf."""
    script = Path(__file__).with_name("contract_remote.py")
    run_python(f"import runpy, sys\nsys.argv = ['contract_remote.py', {str(workspace)!r}]\n"
               f"runpy.run_path({str(script)!r}, run_name='__main__')\n", env=offline_env(workspace / "hf_home"))
    return json.loads((workspace / "results.json").read_text())


def assert_same(actual, expected, tolerance: float = 0.0) -> None:
    """Tensors, or (nested) tuples of them, of the same structure and shapes, equal within `tolerance`."""
    if isinstance(expected, torch.Tensor):
        assert isinstance(actual, torch.Tensor) and actual.shape == expected.shape
        assert (actual.double() - expected.double()).abs().max() <= tolerance
        return
    assert isinstance(actual, tuple | list) and len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert_same(a, e, tolerance)


def auto_from_pretrained(auto_class: str, path, **kwargs):
    """`transformers.<auto_class>.from_pretrained(path)`. transformers 5's `AutoBackbone.from_pretrained` first
    asks the Hub whether `path` is a repo (to route timm names), which fails for folders and offline: the
    backbone class is resolved as `AutoBackbone.from_config` resolves it, then loaded."""
    import transformers

    if auto_class != "AutoBackbone":
        return getattr(transformers, auto_class).from_pretrained(path, **kwargs)
    config = transformers.AutoConfig.from_pretrained(path, **kwargs)
    return type(transformers.AutoBackbone.from_config(config, **kwargs)).from_pretrained(path)


@pytest.mark.parametrize("name", list(BY_NAME))
def test_forward_tuple_output_and_safetensors_round_trip(built, name):
    import transformers
    from transformers.utils import ModelOutput

    family, case = BY_NAME[name], built[name]
    with torch.inference_mode():
        outputs = case.model(**case.inputs)
        as_tuple = case.model(**case.inputs, return_dict=False)
    assert isinstance(outputs, ModelOutput)
    for field_name in family.output_fields:
        assert field_name in outputs.keys(), (field_name, list(outputs.keys()))
        tensors = flatten(field_name, outputs[field_name]).values()
        assert all(torch.isfinite(t).all() for t in tensors) and max(t.abs().max() for t in tensors) > 0.01
    assert isinstance(as_tuple, tuple)
    assert_same(as_tuple, outputs.to_tuple())

    files = {p.name for p in case.folder.iterdir()}
    assert {"model.safetensors", "config.json", "preprocessor_config.json"} <= files
    assert not any(f.endswith((".bin", ".pt", ".pth", ".pkl")) for f in files)
    # The folder is self-contained: every module its code imports (`from .x import y`) is in it.
    for code in case.folder.glob("*.py"):
        for module in re.findall(r"^\s*from \.(\w+) import", code.read_text(), re.M):
            assert f"{module}.py" in files, (code.name, module)
    processor_config = json.loads((case.folder / "preprocessor_config.json").read_text())
    assert processor_config["auto_map"]["AutoImageProcessor"].endswith(type(case.processor).__name__)

    reloaded = auto_from_pretrained(family.auto_class, case.folder).eval()
    assert type(reloaded) is type(case.model)
    reloaded_state = reloaded.state_dict()
    assert all(torch.equal(reloaded_state[k], v) for k, v in case.model.state_dict().items())
    with torch.inference_mode():
        again = reloaded(**case.inputs)
    for field_name in family.output_fields:  # equal weights; the kernels may sum in another order
        assert_same(again[field_name], outputs[field_name], TOLERANCE)
    processor = transformers.AutoImageProcessor.from_pretrained(case.folder)
    assert type(processor) is type(case.processor)
    image = photo()
    np.testing.assert_array_equal(processor(image)["pixel_values"][0], case.processor(image)["pixel_values"][0])


def test_remote_interpreter_cannot_import_evit_hf(remote):
    """Without this the remote-code cases below would prove nothing: evit_hf is importable here, not there."""
    assert evit_hf.__file__  # importable in this process
    assert remote["evit_hf_import_error"] and "blocked" in remote["evit_hf_import_error"]
    assert remote["evit_hf_modules"] == []


@pytest.mark.parametrize("name", list(BY_NAME))
def test_trust_remote_code_without_evit_hf(built, remote, name):
    import transformers

    family, case, report = BY_NAME[name], built[name], remote[name]
    assert "error" not in report, report.get("error")
    # every class the user got is the repo's code (transformers_modules), the same classes as evit_hf's
    for key in ("config", "model", "processor", "auto_model", "pipeline_model"):
        assert report[key].startswith("transformers_modules."), (key, report[key])
    assert report["model"].endswith("." + type(case.model).__name__)
    assert report["processor"].endswith("." + type(case.processor).__name__)
    auto_model = transformers.AutoModel.from_pretrained(case.folder)
    assert report["auto_model"].endswith("." + type(auto_model).__name__)
    assert report["module_names"] == sorted({type(m).__name__ for m in case.model.modules()})
    assert report["token_mixer"] == getattr(case.model.config, "token_mixer", None)
    # numerically the in-process model: the processor's inputs, the model's outputs, the pipeline's result
    assert report["input_diff"] and max(report["input_diff"].values()) == 0, report["input_diff"]
    assert report["output_diff"] and max(report["output_diff"].values()) <= TOLERANCE, report["output_diff"]
    assert report["pipeline_diff"] and max(report["pipeline_diff"].values()) <= TOLERANCE, report["pipeline_diff"]
    assert report["pipeline_labels"] == case.pipeline_labels
    if family.task == "image-super-resolution":  # a pipeline transformers does not ship: the repo's own
        assert report["pipeline"].startswith("transformers_modules.")
        assert report["pipeline"].endswith(".SuperResolutionPipeline")
    if family.card:  # the model card's remote-code snippet runs as published
        assert report["card_model"].startswith("transformers_modules."), report["card_model"]
        if family.task == "image-super-resolution":
            upscale = case.model.config.upscale
            assert f"({PHOTO_SIZE[0] * upscale}, {PHOTO_SIZE[1] * upscale})" in report["card_printed"]


def test_non_default_token_mixers_are_really_other_mixers(built):
    """The token-mixer families run other module classes than the default LiteMLA segmentation model."""
    default = {type(m).__name__ for m in built["segmentation"].model.modules()}
    others = [{type(m).__name__ for m in built[name].model.modules()} - default
              for name in BY_NAME if name.startswith("token-mixer-")]
    assert all(others) and len({frozenset(o) for o in others}) == len(others)
