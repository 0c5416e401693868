"""`evit_hf.predict` through its public API: the SAM predictor (one encoder run per image, prompts agree with the
model called directly, masks at the image's size), automatic masks, semantic segmentation and the drawings."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
import torch
from PIL import Image

from evit_hf.models.efficientvit import (
    EfficientViTForSemanticSegmentation,
    EfficientViTSamImageProcessor,
    EfficientViTSamModel,
    EfficientViTSegImageProcessor,
)
from evit_hf.predict import SamAutomaticMaskGenerator, SamPredictor, segment_image, set_short_side
from evit_hf.predict import drawing as d
from evit_hf.reference import randomize_
from test_sam import tiny_sam_config
from test_segmentation import tiny_config

WIDTH, HEIGHT = 120, 90  # not square: catches swapped x / y
pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.skipif(EfficientViTSamImageProcessor is None, reason="image processors: transformers >= 5")]


@pytest.fixture(scope="module")
def sam():
    """A tiny EfficientViT-SAM with well-spread random weights and its processor."""
    config = tiny_sam_config()
    return randomize_(EfficientViTSamModel(config), seed=0).eval(), EfficientViTSamImageProcessor.for_config(config)


@pytest.fixture(scope="module")
def image() -> Image.Image:
    from skimage.data import astronaut

    return Image.fromarray(astronaut()).resize((WIDTH, HEIGHT), Image.BILINEAR)


def _encoder_runs(model) -> list:
    """A list that grows by one on every forward of the model's image encoder."""
    runs: list = []
    model.vision_encoder.register_forward_hook(lambda *args: runs.append(1))
    return runs


def _direct(model, processor, image, **prompts):
    """The model called as transformers users call it: pixels and prompts through the processor, one forward."""
    inputs = processor(image, return_tensors="pt", **prompts)
    with torch.inference_mode():
        outputs = model(**inputs, multimask_output=True)
    masks = processor.post_process_masks(outputs.pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"])
    return masks[0][0], outputs.iou_scores[0, 0], outputs.pred_masks[0, 0]


# ------------------------------------------------------------------------------------------------- SAM
def test_predictor_runs_the_encoder_once_for_every_prompt(image):
    config = tiny_sam_config()
    model = randomize_(EfficientViTSamModel(config), seed=1).eval()
    runs = _encoder_runs(model)
    predictor = SamPredictor(model)  # the processor of the model's configuration
    embedding = predictor.set_image(image)
    assert runs == [1] and embedding.original_size == (HEIGHT, WIDTH) and embedding.encode_ms > 0
    assert embedding.embeddings.shape == (1, 32, 8, 8)
    first = predictor.predict([[60.0, 40.0]], [1])
    predictor.predict(box=[10.0, 5.0, 100.0, 80.0])
    predictor.predict([[60.0, 40.0], [5.0, 5.0]], [1, 0], [10.0, 5.0, 100.0, 80.0])
    predictor.predict_batch(boxes=[[0.0, 0.0, 50.0, 50.0], [40.0, 30.0, 119.0, 89.0]])
    again = predictor.predict([[60.0, 40.0]], [1])
    assert runs == [1]  # four prompt calls: the image was encoded once
    assert torch.equal(first.masks, again.masks) and torch.equal(first.iou_scores, again.iou_scores)
    other = SamPredictor(model)  # a cached embedding handed to another predictor: still no encoder run
    other.set_embedding(embedding)
    assert torch.equal(other.predict([[60.0, 40.0]], [1]).masks, first.masks) and runs == [1]


@pytest.mark.parametrize("prompts", [
    {"input_points": [[[60.0, 40.0]]], "input_labels": [[1]]},
    {"input_points": [[[60.0, 40.0], [10.0, 80.0]]], "input_labels": [[1, 0]]},
    {"input_boxes": [[20.0, 10.0, 100.0, 80.0]]},
    {"input_points": [[[60.5, 40.25]]], "input_labels": [[1]], "input_boxes": [[5.0, 5.0, 115.0, 85.0]]},
], ids=["point", "two-points", "box", "point-and-box"])
def test_prompts_agree_with_the_model_called_directly(sam, image, prompts):
    model, processor = sam
    predictor = SamPredictor(model, processor)
    predictor.set_image(image)
    points, labels = prompts.get("input_points", [None])[0], prompts.get("input_labels", [None])[0]
    box = prompts.get("input_boxes", [None])[0]
    prediction = predictor.predict(points, labels, box)
    masks, scores, logits = _direct(model, processor, image, **prompts)
    assert prediction.masks.shape == (3, HEIGHT, WIDTH) and prediction.masks.dtype == torch.bool
    assert prediction.low_res_logits.shape == (3, 32, 32) and prediction.iou_scores.shape == (3,)
    torch.testing.assert_close(prediction.low_res_logits, logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(prediction.iou_scores, scores, atol=1e-5, rtol=1e-5)
    # the processor maps prompts in float32, the predictor in float64: at most a few boundary pixels differ
    assert (prediction.masks != masks).float().mean() < 1e-3
    assert 0.0 < prediction.masks.float().mean() < 1.0  # the masks are not trivially empty / full
    mask, score = prediction.best()
    best = int(prediction.iou_scores.argmax())
    assert torch.equal(mask, prediction.masks[best]) and score == prediction.iou_scores[best]


def test_batches_single_masks_logits_and_mask_input(sam, image):
    model, processor = sam
    predictor = SamPredictor(model, processor, prompt_batch_size=2)  # 3 boxes: two decoder calls
    predictor.set_image(image)
    boxes = [[0.0, 0.0, 60.0, 45.0], [30.0, 20.0, 110.0, 85.0], [5.0, 40.0, 70.0, 90.0]]
    batch = predictor.predict_batch(boxes=boxes)
    assert batch.masks.shape == (3, 3, HEIGHT, WIDTH) and batch.iou_scores.shape == (3, 3)
    for i, box in enumerate(boxes):
        single = predictor.predict(box=box)
        torch.testing.assert_close(batch.low_res_logits[i], single.low_res_logits)
        assert torch.equal(batch.masks[i], single.masks)
    best = predictor.predict_batch(boxes=boxes, best_only=True)  # selected before upsampling: the same masks
    masks, scores = batch.best()
    assert best.masks.shape == (3, 1, HEIGHT, WIDTH) and torch.equal(best.masks[:, 0], masks)
    assert torch.equal(best.iou_scores[:, 0], scores)

    one = predictor.predict([[60.0, 40.0]], [1], multimask_output=False)
    assert one.masks.shape == (1, HEIGHT, WIDTH)
    logits = predictor.predict([[60.0, 40.0]], [1], return_logits=True)
    assert logits.masks.dtype == torch.float32
    assert torch.equal(logits.masks > 0, predictor.predict([[60.0, 40.0]], [1]).masks)
    # a follow-up click with the previous low-resolution logits, as the model takes them directly
    previous = logits.low_res_logits[int(logits.iou_scores.argmax())]
    refined = predictor.predict([[60.0, 40.0], [20.0, 70.0]], [1, 0], mask_input=previous[None])
    inputs = processor(image, input_points=[[[60.0, 40.0], [20.0, 70.0]]], input_labels=[[1, 0]],
                       return_tensors="pt")
    with torch.inference_mode():
        direct = model(**inputs, input_masks=previous[None, None])
    torch.testing.assert_close(refined.low_res_logits, direct.pred_masks[0, 0], atol=1e-4, rtol=1e-4)


def test_predictor_errors(sam, image):
    model, processor = sam
    predictor = SamPredictor(model, processor)
    with pytest.raises(RuntimeError, match="set_image"):
        predictor.predict([[1.0, 1.0]], [1])
    predictor.set_image(image)
    with pytest.raises(ValueError, match="outside the 120x90 image"):
        predictor.predict([[WIDTH + 5.0, 1.0]], [1])
    with pytest.raises(ValueError, match="x1 >= x0"):
        predictor.predict(box=[50.0, 10.0, 20.0, 50.0])
    with pytest.raises(ValueError, match="No prompt"):
        predictor.predict()
    predictor.reset_image()
    assert not predictor.is_image_set


def test_automatic_masks(sam, image):
    model, processor = sam
    generator = SamAutomaticMaskGenerator(model, processor, points_per_side=4, pred_iou_thresh=-1e9,
                                          stability_score_thresh=-1e9)
    result = generator.generate(image)
    assert result.masks and all(m.shape == (HEIGHT, WIDTH) and m.dtype == bool for m in result.masks)
    assert len(result.scores) == len(result.masks) and result.embedding_ms > 0 and result.mask_ms > 0
    assert "get_image_embeddings" not in vars(model)  # the timing wrapper is gone
    strict = SamAutomaticMaskGenerator(model, processor, points_per_side=2, pred_iou_thresh=1.1)
    assert strict.generate(image).masks == []
    with pytest.raises(ValueError, match="points_per_side"):
        SamAutomaticMaskGenerator(model, processor, points_per_side=0)


# -------------------------------------------------------------------------------------- segmentation
def test_segment_image_and_short_side(image):
    model = randomize_(EfficientViTForSemanticSegmentation(tiny_config()), seed=0).eval()
    processor = EfficientViTSegImageProcessor.for_dataset("ade20k")
    set_short_side(processor, 64)
    segmentation = segment_image(image, model, processor)
    assert segmentation.shape == (HEIGHT, WIDTH) and set(np.unique(segmentation)) <= {0, 1, 2}
    inputs = processor(image, return_tensors="pt")
    assert min(inputs["pixel_values"].shape[-2:]) == 64
    with torch.inference_mode():
        logits = model(**inputs).logits
    upsampled = torch.nn.functional.interpolate(logits, (HEIGHT, WIDTH), mode="bilinear", align_corners=False)
    assert (segmentation == upsampled.argmax(1)[0].numpy()).mean() > 0.99
    with pytest.raises(ValueError, match="at least 32"):
        set_short_side(processor, 16)


# ------------------------------------------------------------------------------------------- drawing
def test_colours_are_fixed():
    assert d.distinct_colour(0) == (242, 48, 48)  # hue 0, saturation 0.8, value 0.95
    expected = tuple(round(c * 255) for c in colorsys.hsv_to_rgb(0.618033988749895, 0.8, 0.75))
    assert d.distinct_colour(1) == expected
    from evit_hf.models.efficientvit.configuration_efficientvit import CITYSCAPES_LABELS

    cityscapes = d.palette(dict(enumerate(CITYSCAPES_LABELS)))
    assert cityscapes.shape == (19, 3) and tuple(cityscapes[0]) == (128, 64, 128)
    assert tuple(cityscapes[13]) == (0, 0, 142)
    other = d.palette({0: "sky", 1: "person", 2: "tree"})
    assert other.dtype == np.uint8 and tuple(other[0]) == (242, 61, 61) and len({tuple(c) for c in other}) == 3


def test_mask_overlay_blends_outlines_and_marks_prompts(image):
    mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
    mask[20:60, 30:90] = True
    overlay = d.draw_masks(image, [mask], [d.PROMPT_COLOUR], alpha=0.5)
    pixels, original = np.asarray(overlay, dtype=np.float32), np.asarray(image, dtype=np.float32)
    expected = np.round(0.5 * original[40, 60] + 0.5 * np.array(d.PROMPT_COLOUR))
    assert (pixels[40, 60] == expected).all()  # inside: blended
    assert tuple(pixels[20, 60].astype(int)) == d.PROMPT_COLOUR  # the contour
    assert (pixels[5, 5] == original[5, 5]).all() and (pixels[~mask] == original[~mask]).all()
    assert d.contour(mask).sum() == 2 * (40 + 60) * 2 - 4 * 4  # a 2-pixel inner boundary of the rectangle
    d.draw_prompts(overlay, [[10.0, 10.0], [100.0, 80.0]], [1, 0], [30.0, 20.0, 90.0, 60.0])
    marked = np.asarray(overlay)
    assert tuple(marked[10, 10]) == d.POSITIVE_COLOUR and tuple(marked[80, 100]) == d.NEGATIVE_COLOUR
    assert tuple(marked[20, 50]) == d.POSITIVE_COLOUR  # the box outline
    with pytest.raises(ValueError, match="alpha"):
        d.draw_masks(image, [mask], [d.PROMPT_COLOUR], alpha=1.5)


def test_segmentation_overlay_and_legend_are_deterministic(image):
    segmentation = np.zeros((HEIGHT, WIDTH), dtype=np.int64)
    segmentation[:, 80:] = 2  # tree: a third of the pixels
    segmentation[:30, :20] = 1  # person: 600 pixels
    id2label = {0: "sky", 1: "person", 2: "tree"}
    shares = d.class_shares(segmentation, id2label)
    assert [(s.class_id, s.label) for s in shares] == [(0, "sky"), (2, "tree"), (1, "person")]
    assert shares[2].share == pytest.approx(600 / (HEIGHT * WIDTH)) and sum(s.share for s in shares) == pytest.approx(1)
    canvas = d.draw_segmentation(image, segmentation, id2label, alpha=0.5)
    again = d.draw_segmentation(image, segmentation, id2label, alpha=0.5)
    assert canvas.tobytes() == again.tobytes() and canvas.height == HEIGHT and canvas.width > WIDTH
    pixels, colours = np.asarray(canvas), d.palette(id2label)
    for row, share in enumerate(shares):  # one swatch per class, largest first, in the class colour
        top = 8 + 20 * row
        assert tuple(pixels[top + 7, WIDTH + 8 + 7]) == tuple(colours[share.class_id])
    blended = np.round(0.5 * np.asarray(image, dtype=np.float32)[50, 100] + 0.5 * colours[2])
    assert (pixels[50, 100] == blended).all()
    capped = np.asarray(d.draw_segmentation(image, segmentation, id2label, max_legend=1))  # "+2 more classes"
    assert tuple(capped[8 + 7, WIDTH + 8 + 7]) == tuple(colours[0])
    assert tuple(capped[8 + 20 + 7, WIDTH + 8 + 7]) == (255, 255, 255)  # no swatch on the summary line


def test_side_by_side():
    left, right = Image.new("RGB", (30, 20), (255, 0, 0)), Image.new("RGB", (60, 40), (0, 0, 255))
    canvas = d.side_by_side(left, right, "left", "right")
    assert canvas.size == (30 + 8 + 60, 24 + 40)
    assert canvas.getpixel((5, 30)) == (255, 0, 0) and canvas.getpixel((30 + 8 + 5, 30)) == (0, 0, 255)
    assert canvas.getpixel((34, 30)) == (255, 255, 255)  # the gap
