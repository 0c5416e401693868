"""Issue 26: pipelines as fast as the model without hand tuning, with unchanged outputs.

The CPU defaults `import evit_hf` applies (and their opt-out), the cheaper segmentation post-processing
against the old one (bicubic upsampling, then `argmax`) on photographs, the super-resolution default tile size,
and `evit-hf bench pipeline`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

pytest.importorskip("transformers.image_processing_backends")
skimage_data = pytest.importorskip("skimage.data")

from evit_hf.bench import pipeline as bench_pipeline  # noqa: E402
from evit_hf.models.efficientvit.image_processing_efficientvit_seg import EfficientViTSegImageProcessor  # noqa: E402
from evit_hf.resolve import load_model  # noqa: E402

SRC = os.path.join(os.path.dirname(__file__), os.pardir, "src")


def _python(code: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "EVIT_HF_CPU_DEFAULTS")}
    environment.update(env, PYTHONPATH=os.path.abspath(SRC))
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True,
                            check=True, timeout=300)
    return result.stdout.strip().splitlines()[-1]


def test_import_applies_the_cpu_defaults_and_the_opt_out_switches_them_off():
    # A child reports what import applied, what libgomp saw (the variable while torch loaded) and what its own
    # children inherit afterwards (the user's environment, without the variable).
    code = ("import os, json, evit_hf; "
            "print(json.dumps([evit_hf.CPU_DEFAULTS, os.environ.get('GOMP_SPINCOUNT')]))")
    applied, inherited = json.loads(_python(code))
    assert applied == {"allocator": True, "spin": True} and inherited is None
    assert json.loads(_python(code, EVIT_HF_CPU_DEFAULTS="0")) == [{"allocator": False, "spin": False}, None]
    # torch first: OpenMP has read its environment, so only the allocator can still be tuned
    assert json.loads(_python("import torch, json, evit_hf; print(json.dumps(evit_hf.CPU_DEFAULTS))")) == {
        "allocator": True, "spin": False}
    # the user's own OpenMP settings win
    assert json.loads(_python(code, GOMP_SPINCOUNT="1000")) == [{"allocator": True, "spin": False}, "1000"]


def _old_semantic_segmentation(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The post-processing before issue 26: bicubic upsampling of all classes, then `argmax`."""
    scores = F.interpolate(logits.float(), size=size, mode="bicubic", align_corners=False)
    return scores[0].argmax(dim=0)


@pytest.mark.parametrize(("preset", "photo"), [("seg-b0-cityscapes", "astronaut"), ("seg-b1-ade20k", "coffee")])
def test_segmentation_labels_and_pipeline_masks_are_unchanged_on_photographs(preset, photo):
    from transformers import ImageSegmentationPipeline, pipeline

    from evit_hf.predict.segmentation_pipeline import EfficientViTImageSegmentationPipeline

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, processor, _ = load_model(f"random:{preset}", seed=0)
    processor = EfficientViTSegImageProcessor.for_short_side(128, do_reduce_labels=processor.do_reduce_labels)
    image = Image.fromarray(getattr(skimage_data, photo)())
    with torch.inference_mode():
        logits = model(**processor(image, return_tensors="pt")).logits
    size = (image.height, image.width)
    old = _old_semantic_segmentation(logits, size)
    assert len(old.unique()) > 1  # a map with class boundaries, not a constant
    (new,) = processor.post_process_semantic_segmentation(logits, target_sizes=[size])
    assert new.dtype == torch.int64 and torch.equal(new, old)
    # ties go to the first class, as argmax: two identical class maps
    tied = torch.cat([logits[:, :1], logits], dim=1)
    (new,) = processor.post_process_semantic_segmentation(tied, target_sizes=[size])
    assert torch.equal(new, _old_semantic_segmentation(tied, size))
    # the pipeline's masks: one per class present, exactly the old labels
    runner = pipeline("image-segmentation", model=model, image_processor=processor)
    assert isinstance(runner, EfficientViTImageSegmentationPipeline)  # evit-hf's post-processing is what ran
    segments = runner(image)
    stock = ImageSegmentationPipeline(model=model, image_processor=processor)(image)  # transformers' own
    assert [s["label"] for s in segments] == [s["label"] for s in stock]
    assert all(np.array_equal(np.asarray(a["mask"]), np.asarray(b["mask"])) for a, b in zip(segments, stock))
    labels = model.config.id2label
    assert sorted(s["label"] for s in segments) == sorted(labels[int(c)] for c in old.unique())
    for segment in segments:
        label_id = next(k for k, v in labels.items() if v == segment["label"])
        assert np.array_equal(np.asarray(segment["mask"]) == 255, (old == label_id).numpy())


@pytest.mark.parametrize("size", [(1024, 2048), (600, 800)])
def test_segmentation_preprocessing_equals_transformers_pil_processor(size):
    from transformers.models.segformer.image_processing_pil_segformer import SegformerImageProcessorPil

    ours = EfficientViTSegImageProcessor()
    stock = SegformerImageProcessorPil(size=ours.size, image_mean=ours.image_mean, image_std=ours.image_std,
                                       resample=ours.resample)
    image = Image.fromarray(skimage_data.astronaut()).resize(size[::-1])
    expected = stock(image, return_tensors="pt")["pixel_values"]
    assert torch.equal(ours(image, return_tensors="pt")["pixel_values"], expected)


@pytest.mark.parametrize(("shape", "size"), [((19, 32, 64), (256, 512)), ((7, 37, 53), (300, 421)),
                                             ((5, 16, 16), (16, 49)), ((3, 40, 50), (77, 33))])
def test_upsampled_argmax_equals_argmax_of_the_upsampled_scores(shape, size):
    from evit_hf.models.efficientvit.image_processing_efficientvit_seg import upsampled_argmax

    generator = torch.Generator().manual_seed(0)
    smooth = torch.randn(shape, generator=generator).cumsum(1).cumsum(2) / 5  # regions, as trained models give
    rough = torch.randn(shape, generator=generator)
    tied = smooth.clone()
    tied[1] = tied[0]
    for scores in (smooth, rough, tied, smooth.round()):
        reference = F.interpolate(scores[None], size=size, mode="bicubic", align_corners=False)[0].argmax(dim=0)
        # 1.0: never the all-classes fallback, so the windows' bounds and the exact candidates decide every pixel
        for share in (1 / 3, 1.0):
            assert torch.equal(upsampled_argmax(scores, size, fallback_share=share), reference)
    scores = smooth.clone()
    scores[0, 0, 0] = float("nan")
    reference = F.interpolate(scores[None], size=size, mode="bicubic", align_corners=False)[0].argmax(dim=0)
    assert torch.equal(upsampled_argmax(scores, size), reference)


def test_super_resolution_pipeline_runs_images_up_to_512_pixels_in_one_pass():
    from transformers import pipeline

    from evit_hf.models.efficientvit.modeling_efficientvit_sr import DEFAULT_TILE_SIZE

    assert DEFAULT_TILE_SIZE == 512
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, processor, _ = load_model("random:sr-light-x2", seed=0)
    image = Image.fromarray(skimage_data.chelsea()[:272, :300])  # larger than the old 256-pixel tiles
    calls = []
    model.register_forward_hook(lambda module, args, output: calls.append(1))
    upscaled = pipeline("image-super-resolution", model=model, image_processor=processor)(image)
    assert len(calls) == 1 and upscaled.size == (600, 544)
    with torch.inference_mode():
        reference = model(**processor(image, return_tensors="pt")).reconstruction
    (expected,) = processor.post_process_super_resolution(reference)
    assert np.array_equal(np.asarray(upscaled), np.asarray(expected))


def test_bench_pipeline_times_every_stage_in_fresh_processes():
    functions = bench_pipeline.stage_functions(bench_pipeline.CASES["sam-box"])
    row = bench_pipeline.time_stages(functions, budget_s=0.0)
    assert set(row) == {"end_to_end_ms", "forward_ms", "pre_ms", "post_ms", "rounds"} and row["rounds"] == 2
    assert row["forward_ms"] > row["pre_ms"] > 0 and row["post_ms"] > 0
    rows = bench_pipeline.run(["cls"], ["evit-hf defaults", "tuned by hand"], budget_s=0.0)
    assert [r["environment"] for r in rows] == ["evit-hf defaults", "tuned by hand"]
    assert [r["allocator_tuned"] for r in rows] == [True, True]
    assert [r["spin"] for r in rows] == ["unset", "10000000"]  # defaults: popped once torch has loaded
    assert rows[1]["vs_tuned"] == 1.0 and rows[0]["end_to_end_per_forward"] > 0
    assert "pipeline / forward" in bench_pipeline.format_table(rows)
    with pytest.raises(ValueError, match="Unknown case"):
        bench_pipeline.run(["detection"])
