"""EfficientViT semantic segmentation: parity with the original for all 11 released variants, the loss,
save/load through AutoModelForSemanticSegmentation, the image-segmentation pipeline and `evit-hf segment`."""

from __future__ import annotations

import argparse
import os

import numpy as np
import pytest
import torch

import evit_hf  # noqa: F401  (registers the Auto classes)
from evit_hf import EfficientViTConfig, EfficientViTForSemanticSegmentation
from evit_hf.convert import from_original, get_variant
from evit_hf.convert.segmentation import SEGMENTATION_VARIANTS, original_segmentation_head_key

# All 11 released variants at the fixture resolution (256x512 Cityscapes, 256x256 ADE20K): ~20 s in all on
# the 2-core reference machine when nothing else runs.
PARITY_CASES = list(SEGMENTATION_VARIANTS)


@pytest.fixture(autouse=True, scope="module")
def _one_thread_per_xdist_worker():
    """Under pytest-xdist, workers share the cores: 2 OpenMP threads per process then wait on each other's
    barriers (up to 100x slower forward passes on 2 cores), so each worker uses a single thread."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_config(**overrides) -> EfficientViTConfig:
    """A narrow 5-stage B-style network (stride 32, head on stages 4/3/2 like the released models)."""
    kwargs = dict(
        widths=[8, 8, 16, 16, 32], depths=[1, 1, 1, 1, 1], block_types=["ds", "mb", "mb", "att", "att"],
        expand_ratios=[1, 2, 2, 2, 2], downsample_expand_ratios=[1, 2, 2, 2, 2],
        fewer_norm=[False, False, False, True, True], attention_head_dim=8, segmentation_head_width=16,
        segmentation_head_depth=1,
        segmentation_final_expand=2, id2label={0: "sky", 1: "person", 2: "tree"},
    )
    kwargs.update(overrides)
    return EfficientViTConfig(**kwargs)


@pytest.mark.parametrize("optimized", [True, False], ids=["optimized", "plain"])
@pytest.mark.parametrize("case", PARITY_CASES)
def test_parity_with_original(original_fixture, case, optimized):
    fixture = original_fixture(case)
    model = from_original(fixture.state_dict, case)
    assert isinstance(model, EfficientViTForSemanticSegmentation) and not model.training
    model.set_inference_optimizations(optimized)  # the eval-mode fast path (default) and the plain graph
    with torch.inference_mode():
        logits = model(fixture.image).logits
    expected = fixture.outputs["logits"]
    assert logits.shape == expected.shape
    assert (logits - expected).abs().max().item() < 1e-4
    assert len(model.config.id2label) == expected.shape[1]


def test_presets_have_label_names():
    city = EfficientViTConfig.from_preset("seg-b1-cityscapes")
    ade = EfficientViTConfig.from_preset("seg-b1-ade20k")
    assert city.num_labels == 19 and city.id2label[0] == "road" and city.id2label[18] == "bicycle"
    assert ade.num_labels == 150 and ade.id2label[0] == "wall" and ade.id2label[149] == "flag"
    assert len(set(ade.id2label.values())) == 150


def test_head_key_rules():
    assert original_segmentation_head_key("head.input_ops.0.op_list.0.conv.weight", False) == (
        "decode_head.projections.0.conv.weight")
    assert original_segmentation_head_key("head.input_ops.2.norm.running_var", False) == (
        "decode_head.projections.2.norm.running_var")
    assert original_segmentation_head_key("head.middle.op_list.1.main.inverted_conv.conv.weight", False) == (
        "decode_head.blocks.1.expand_conv.conv.weight")
    assert original_segmentation_head_key("head.output_ops.0.op_list.0.conv.bias", False) == (
        "decode_head.classifier.bias")
    assert original_segmentation_head_key("head.output_ops.0.op_list.0.norm.weight", True) == (
        "decode_head.expand.norm.weight")
    assert original_segmentation_head_key("head.output_ops.0.op_list.1.conv.weight", True) == (
        "decode_head.classifier.weight")
    assert original_segmentation_head_key("head.output_ops.0.op_list.1.conv.weight", False) is None
    assert original_segmentation_head_key("head.op_list.0.conv.weight", False) is None


def test_wrong_variant_checkpoint_is_rejected(original_fixture):
    fixture = original_fixture("seg-b0-cityscapes")
    with pytest.raises(ValueError, match="does not match"):
        from_original(fixture.state_dict, "seg-b1-cityscapes")
    assert get_variant("seg-b0-cityscapes").description


def test_output_shapes_and_hidden_states():
    model = EfficientViTForSemanticSegmentation(tiny_config()).eval()
    with torch.inference_mode():
        out = model(torch.randn(2, 3, 64, 96), output_hidden_states=True)
    assert out.logits.shape == (2, 3, 8, 12)
    assert len(out.hidden_states) == 5
    assert out.loss is None
    tuple_out = model(torch.randn(1, 3, 32, 32), return_dict=False)
    assert isinstance(tuple_out, tuple) and tuple_out[0].shape == (1, 3, 4, 4)


def test_bad_pixel_values_raise():
    model = EfficientViTForSemanticSegmentation(tiny_config()).eval()
    with pytest.raises(ValueError, match="multiples of 32"):
        model(torch.randn(1, 3, 40, 64))
    with pytest.raises(ValueError, match="channels"):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="floating point"):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))


def test_loss_honours_ignore_index():
    torch.manual_seed(0)
    config = tiny_config(semantic_loss_ignore_index=255)
    model = EfficientViTForSemanticSegmentation(config).eval()
    pixels = torch.randn(2, 3, 32, 64)
    labels = torch.randint(0, 3, (2, 37, 53))  # any label size: logits are upsampled to it
    out = model(pixels, labels=labels)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    # Pixels set to the ignore index do not contribute: the loss equals the CE over the others.
    ignored = labels.clone()
    ignored[:, :10] = 255
    with torch.no_grad():
        loss = model(pixels, labels=ignored).loss
        logits = torch.nn.functional.interpolate(model(pixels).logits, size=(37, 53), mode="bicubic",
                                                 align_corners=False)
        expected = torch.nn.functional.cross_entropy(logits, ignored, ignore_index=255)
        all_ignored = model(pixels, labels=torch.full_like(labels, 255)).loss
    assert torch.allclose(loss, expected, atol=1e-6)
    assert torch.isnan(all_ignored) or all_ignored == 0  # nothing to average over
    # The loss backpropagates.
    model.train()
    model(pixels, labels=labels).loss.backward()
    assert model.decode_head.classifier.weight.grad is not None
    with pytest.raises(ValueError, match="Labels must lie"):
        model(pixels, labels=torch.full_like(labels, 7))
    with pytest.raises(ValueError, match="batch, height, width"):
        model(pixels, labels=labels[0])


def test_head_variants_build_and_run():
    for block, final_expand in (("fmb", None), ("mb", 4)):
        config = tiny_config(segmentation_head_block=block, segmentation_final_expand=final_expand)
        model = EfficientViTForSemanticSegmentation(config).eval()
        assert (model.decode_head.expand is None) == (final_expand is None)
        with torch.inference_mode():
            assert model(torch.randn(1, 3, 32, 64)).logits.shape == (1, 3, 4, 8)


class _DtypeRecorder(torch.overrides.TorchFunctionMode):
    """Records (op, input dtype, output dtype) of the convolutions, matmuls and interpolations that run."""

    OPS = ("conv2d", "matmul", "__matmul__", "interpolate")

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, torch.dtype, torch.dtype]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        if name in self.OPS and isinstance(out, torch.Tensor):
            self.calls.append((name.strip("_"), args[0].dtype, out.dtype))
        return out


def test_bf16_autocast_keeps_dtype():
    """Under bf16 autocast the convolutions run in bf16 and the logits come out in bf16, while the attention
    (its matmuls) and the bicubic resizes run in fp32 islands; the weights stay fp32. A bf16 model gives bf16."""
    from conftest import randomize_weights

    model = randomize_weights(EfficientViTForSemanticSegmentation(tiny_config())).eval()
    pixels = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    recorder = _DtypeRecorder()
    with torch.inference_mode():
        reference = model(pixels).logits
        with torch.autocast("cpu", dtype=torch.bfloat16), recorder:
            logits = model(pixels).logits
    assert logits.dtype == torch.bfloat16 and reference.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in model.parameters())
    by_op: dict[str, set] = {}
    for name, _, out_dtype in recorder.calls:
        by_op.setdefault(name, set()).add(out_dtype)
    assert by_op["conv2d"] == {torch.bfloat16}  # autocast is on: every conv in bf16
    assert by_op["matmul"] == {torch.float32} and by_op["interpolate"] == {torch.float32}  # the fp32 islands
    assert torch.isfinite(logits.float()).all()
    # bf16 keeps 8 mantissa bits (0.4% per rounding): the mean relative error measured 0.5-1.9% over 30 inputs
    error = (logits.float() - reference).abs().mean() / reference.abs().mean()
    assert reference.abs().max() > 0.05 and error < 0.05, error
    with torch.inference_mode():
        half = model.to(torch.bfloat16)(pixels.to(torch.bfloat16)).logits
    assert half.dtype == torch.bfloat16 and torch.isfinite(half.float()).all()


def test_save_and_load_with_auto_class(tmp_path):
    from transformers import AutoModelForSemanticSegmentation

    model = EfficientViTForSemanticSegmentation(tiny_config()).eval()
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSemanticSegmentation.from_pretrained(tmp_path).eval()
    assert type(loaded) is EfficientViTForSemanticSegmentation
    assert loaded.config.id2label == {0: "sky", 1: "person", 2: "tree"}
    pixels = torch.randn(1, 3, 32, 64)
    with torch.inference_mode():
        assert torch.equal(model(pixels).logits, loaded(pixels).logits)


@pytest.fixture
def processor():
    pytest.importorskip("transformers.image_processing_backends")  # the PIL backends need transformers >= 5
    from evit_hf import EfficientViTSegImageProcessor

    return EfficientViTSegImageProcessor.for_dataset("ade20k", size={"shortest_edge": 64})


def _astronaut():
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image

    return Image.fromarray(skimage_data.astronaut())  # 512x512 RGB photo


def test_odd_sizes_through_processor(processor):
    model = EfficientViTForSemanticSegmentation(tiny_config()).eval()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for h, w in ((45, 77), (101, 33))]
    for image in images:
        inputs = processor(image, return_tensors="pt")
        height, width = inputs["pixel_values"].shape[-2:]
        assert height % 32 == 0 and width % 32 == 0 and min(height, width) == 64
        with torch.inference_mode():
            out = model(**inputs)
        (seg,) = processor.post_process_semantic_segmentation(out, target_sizes=[image.shape[:2]])
        assert tuple(seg.shape) == image.shape[:2]
        assert seg.dtype == torch.int64 and int(seg.max()) < 3


def test_pipeline_on_real_photo(processor):
    from transformers import pipeline

    image = _astronaut()
    model = EfficientViTForSemanticSegmentation(tiny_config()).eval()
    segmenter = pipeline("image-segmentation", model=model, image_processor=processor)
    results = segmenter(image)
    inputs = processor(image, return_tensors="pt")
    with torch.inference_mode():
        outputs = model(**inputs)
    (seg,) = processor.post_process_semantic_segmentation(outputs, target_sizes=[image.size[::-1]])
    present = sorted(model.config.id2label[int(i)] for i in torch.unique(seg))
    assert sorted(r["label"] for r in results) == present
    for result in results:
        assert result["mask"].size == image.size and result["mask"].mode == "L"
        assert result["score"] is None


def test_segment_command(tmp_path, processor):
    from PIL import Image

    from evit_hf.commands import segment

    image_path = tmp_path / "astronaut.png"
    _astronaut().save(image_path)
    model_dir = tmp_path / "model"
    EfficientViTForSemanticSegmentation(tiny_config()).save_pretrained(model_dir)
    processor.save_pretrained(model_dir)
    out_path = tmp_path / "overlay.png"
    parser = argparse.ArgumentParser()
    segment.register(parser.add_subparsers())
    args = parser.parse_args(["segment", str(image_path), "--model", str(model_dir), "--out", str(out_path)])
    assert args.func(args) == 0
    overlay = Image.open(out_path)
    assert overlay.mode == "RGB"
    assert overlay.height == 512 and overlay.width >= 512  # the legend sits to the right of the image
    # `random:PRESET` builds random weights (with a warning) and still writes an overlay.
    args = parser.parse_args(["segment", str(image_path), "--model", "random:seg-b0-cityscapes", "--out",
                              str(tmp_path / "preset.png"), "--short-side", "256"])
    with pytest.warns(UserWarning, match="random weights"):
        assert args.func(args) == 0
    assert Image.open(tmp_path / "preset.png").height == 512


def test_benchmark_smoke():
    from evit_hf.bench.segmentation import format_table, run

    rows = run(sizes=((32, 64), (64, 128)), presets=["seg-b0-cityscapes"], budget_s=0.1, max_runs=3,
               peer_models=["segformer-b0"], threads=1)
    assert [(r["model"], r["size"]) for r in rows] == [
        ("seg-b0-cityscapes", "32x64"), ("seg-b0-cityscapes", "64x128"),
        ("segformer-b0", "32x64"), ("segformer-b0", "64x128"),
    ]
    ours = rows[0]
    assert ours["median_ms"] > 0 and ours["vs_segformer-b0"] > 0 and ours["growth"] > 0
    table = format_table(rows)
    assert "SegFormer-B0 / ours" in table and "seg-b0-cityscapes" in table
    with pytest.raises(ValueError, match="multiples of 32"):
        run(sizes=((100, 100),), presets=["seg-b0-cityscapes"], peers=False)
