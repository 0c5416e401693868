"""EfficientViTSegImageProcessor: the original Cityscapes/ADE20K resizing, label reduction, input conversion,
post-processing and AutoImageProcessor round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("transformers.image_processing_backends")  # PIL-backend processors: transformers >= 5

from PIL import Image  # noqa: E402
from transformers import AutoImageProcessor  # noqa: E402
from transformers.modeling_outputs import SemanticSegmenterOutput  # noqa: E402

import evit_hf  # noqa: E402,F401  (registers the Auto classes)
from evit_hf import EfficientViTSegImageProcessor  # noqa: E402
from evit_hf.models.efficientvit.image_processing_efficientvit_seg import short_side_resize_shape  # noqa: E402


def _image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_cityscapes_fixed_size_and_normalisation():
    processor = EfficientViTSegImageProcessor.for_dataset("cityscapes")
    image = np.full((100, 150, 3), 255, dtype=np.uint8)
    pixels = processor(image, return_tensors="pt")["pixel_values"]
    assert pixels.shape == (1, 3, 1024, 2048) and pixels.dtype == torch.float32
    expected = (1.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    assert np.allclose(pixels[0, :, 500, 1000].numpy(), expected, atol=1e-5)
    assert processor.resample == 3  # bicubic


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [
        (512, 683, (512, 704)),  # ceil(683/512*512/32)*32 = 704
        (683, 512, (704, 512)),
        (375, 500, (512, 704)),  # 500/375*512 = 682.7 -> 704
        (333, 517, (512, 800)),  # 517/333*512 = 794.9 -> 800
        (256, 256, (512, 512)),
    ],
)
def test_ade20k_short_side_rule(height, width, expected):
    assert short_side_resize_shape(height, width, 512, 32) == expected
    processor = EfficientViTSegImageProcessor.for_dataset("ade20k")
    pixels = processor(_image(height, width), return_tensors="pt")["pixel_values"]
    assert tuple(pixels.shape[-2:]) == expected


def test_reduce_labels_and_label_resize():
    processor = EfficientViTSegImageProcessor.for_dataset("ade20k", size={"shortest_edge": 64})
    labels = np.zeros((40, 60), dtype=np.uint8)
    labels[:, 30:] = 5
    out = processor(_image(40, 60), segmentation_maps=labels, return_tensors="pt")
    assert out["pixel_values"].shape == (1, 3, 64, 96)
    assert out["labels"].shape == (1, 64, 96) and out["labels"].dtype == torch.int64
    assert set(out["labels"].unique().tolist()) == {255, 4}  # 0 ("other") -> ignore, k -> k - 1
    city = EfficientViTSegImageProcessor.for_dataset("cityscapes", size={"height": 64, "width": 128})
    city_labels = city(_image(40, 60), segmentation_maps=labels, return_tensors="pt")["labels"]
    assert set(city_labels.unique().tolist()) == {0, 5}  # no reduction; the caller's array was not modified


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "LA", "CMYK", "1"])
def test_pil_modes_are_converted_to_rgb(mode):
    processor = EfficientViTSegImageProcessor.for_dataset("ade20k", size={"shortest_edge": 32})
    if mode == "I;16":
        image = Image.fromarray(np.full((20, 30), 65535, dtype=np.uint16))
        assert image.mode == "I;16"
    else:
        image = Image.fromarray(_image(20, 30)).convert(mode)
    pixels = processor(image, return_tensors="pt")["pixel_values"]
    assert pixels.shape == (1, 3, 32, 64)
    assert torch.isfinite(pixels).all()
    if mode == "I;16":  # full-scale 16-bit white must stay white, not be clipped at 255/65535
        white = (1.0 - 0.485) / 0.229
        assert abs(pixels[0, 0, 16, 32].item() - white) < 1e-4


def test_arrays_of_other_layouts_and_dtypes():
    processor = EfficientViTSegImageProcessor.for_dataset("ade20k", size={"shortest_edge": 32})
    gray = np.random.default_rng(0).integers(0, 256, (20, 30), dtype=np.uint8)
    chw = _image(20, 30).transpose(2, 0, 1)
    deep = (gray.astype(np.uint16) * 257)[..., None].repeat(3, axis=-1)
    floats = gray.astype(np.float32)[..., None].repeat(3, axis=-1) / 255.0
    results = [processor(x, return_tensors="pt")["pixel_values"] for x in (gray, chw, deep, floats)]
    for pixels in results:
        assert pixels.shape == (1, 3, 32, 64)
    assert torch.allclose(results[0], results[2], atol=1e-5)  # uint16 is scaled to 8 bits, not clipped
    assert torch.allclose(results[0], results[3], atol=1e-5)  # [0, 1] floats are scaled to 0-255
    tensor_input = torch.from_numpy(_image(20, 30)).permute(2, 0, 1)
    assert processor(tensor_input, return_tensors="pt")["pixel_values"].shape == (1, 3, 32, 64)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.zeros((0, 10, 3), dtype=np.uint8), "empty"),
        (np.zeros((10, 10, 2), dtype=np.uint8), "channels"),
        (np.zeros((2, 3, 10, 10, 3), dtype=np.uint8), "shape"),
        (np.zeros((10, 10, 3), dtype=np.complex64), "dtype"),
        ("not an image", "image|Incorrect|type|file"),
    ],
)
def test_bad_inputs_raise(bad, match):
    processor = EfficientViTSegImageProcessor.for_dataset("ade20k", size={"shortest_edge": 32})
    with pytest.raises((ValueError, TypeError, OSError), match=match):
        processor(bad, return_tensors="pt")


def test_unknown_dataset_raises():
    with pytest.raises(ValueError, match="Unknown segmentation dataset"):
        EfficientViTSegImageProcessor.for_dataset("coco")
    assert EfficientViTSegImageProcessor.for_dataset("seg-b1-ade20k").do_reduce_labels


def test_post_process_bicubic_and_argmax():
    processor = EfficientViTSegImageProcessor()
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 8, 12)
    outputs = SemanticSegmenterOutput(logits=logits)
    maps = processor.post_process_semantic_segmentation(outputs, target_sizes=[(33, 47), (64, 96)])
    assert [tuple(m.shape) for m in maps] == [(33, 47), (64, 96)]
    expected = torch.nn.functional.interpolate(logits[:1], size=(33, 47), mode="bicubic", align_corners=False)
    assert torch.equal(maps[0], expected[0].argmax(0))
    native = processor.post_process_semantic_segmentation(outputs)
    assert [tuple(m.shape) for m in native] == [(8, 12), (8, 12)]
    assert torch.equal(native[1], logits[1].argmax(0))
    with_scores = processor.post_process_semantic_segmentation(
        outputs, target_sizes=torch.tensor([[16, 24], [16, 24]]), return_segmentation_scores=True
    )
    assert with_scores[0].segmentation_scores.shape == (5, 16, 24)
    with pytest.raises(ValueError, match="target sizes"):
        processor.post_process_semantic_segmentation(outputs, target_sizes=[(33, 47)])
    with pytest.raises(ValueError, match="positive"):
        processor.post_process_semantic_segmentation(outputs, target_sizes=[(0, 4), (4, 4)])


def test_half_precision_logits_are_post_processed_in_fp32():
    processor = EfficientViTSegImageProcessor()
    logits = torch.randn(1, 3, 4, 4).to(torch.bfloat16)
    (seg,) = processor.post_process_semantic_segmentation(SemanticSegmenterOutput(logits=logits), [(9, 9)])
    assert seg.shape == (9, 9) and seg.dtype == torch.int64


def test_auto_image_processor_round_trip(tmp_path):
    processor = EfficientViTSegImageProcessor.for_dataset("ade20k")
    processor.save_pretrained(tmp_path)
    loaded = AutoImageProcessor.from_pretrained(tmp_path)
    assert type(loaded) is EfficientViTSegImageProcessor
    assert loaded.size.shortest_edge == 512 and loaded.do_reduce_labels and loaded.size_divisor == 32
    image = _image(45, 77)
    assert torch.equal(processor(image, return_tensors="pt")["pixel_values"],
                       loaded(image, return_tensors="pt")["pixel_values"])


def test_saved_model_folder_resolves_to_the_segmentation_processor(tmp_path):
    """A folder with an EfficientViT config and a seg processor gives the seg processor (not the cls one)."""
    from evit_hf import EfficientViTConfig, EfficientViTForSemanticSegmentation

    config = EfficientViTConfig(widths=[8, 8, 16, 16, 32], depths=[1, 1, 1, 1, 1], attention_head_dim=8,
                                segmentation_head_width=8, segmentation_head_depth=1, num_labels=3)
    EfficientViTForSemanticSegmentation(config).save_pretrained(tmp_path)
    EfficientViTSegImageProcessor.for_dataset("cityscapes").save_pretrained(tmp_path)
    assert type(AutoImageProcessor.from_pretrained(tmp_path)) is EfficientViTSegImageProcessor
