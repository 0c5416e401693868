"""Segment everything: `SamAutomaticMaskGenerator` against the original's generator on a trained model (the same
masks), its options (crops, point grids, small regions, single mask, output modes), box mode against prompting
the boxes one by one, the registered `mask-generation` pipeline, and the mask utilities against pycocotools /
segment-anything's definitions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from evit_hf.models.efficientvit import EfficientViTSamImageProcessor, EfficientViTSamModel
from evit_hf.predict import SamAutomaticMaskGenerator, SamPredictor
from evit_hf.predict import masks as m
from evit_hf.reference import randomize_
from test_sam import tiny_sam_config

# A small EfficientViT-SAM trained on the built-in synthetic shapes with training/sam.py's fine-tuning stage
# (tests/fixtures/sam-shapes/make.py says how and remakes it); it segments the shapes of its training scenes.
SHAPES_MODEL = Path(__file__).parent / "fixtures" / "sam-shapes"
SIDE = 256  # test images: the 128-pixel training scenes at 2x, so the 64x64 low-res masks are 4x coarser
# The model's logits are softer than SAM's: at 0.88 / 0.95 it keeps few masks (15 on 8 scenes); here 39.
THRESHOLDS = {"pred_iou_thresh": 0.8, "stability_score_thresh": 0.85}
pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.skipif(EfficientViTSamImageProcessor is None, reason="image processors: transformers >= 5")]


def scene(index: int) -> tuple[Image.Image, list[np.ndarray]]:
    """Training scene `index` of the shapes model at SIDE x SIDE and its shapes' masks (the SA-1B annotations)."""
    from evit_hf.data.sa1b import decode_segmentation, synthetic_sa1b_sample

    image, annotations = synthetic_sa1b_sample(np.random.default_rng([0, 100, index]), 128)
    masks = [decode_segmentation(a["segmentation"], 128, 128) for a in annotations]
    resized = [np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((SIDE, SIDE), Image.NEAREST)) > 0
               for mask in masks]
    return image.convert("RGB").resize((SIDE, SIDE), Image.BILINEAR), resized


@pytest.fixture(scope="module")
def shapes():
    model = EfficientViTSamModel.from_pretrained(SHAPES_MODEL, dtype=torch.float32).eval()
    return model, EfficientViTSamImageProcessor.for_config(model.config)


@pytest.fixture(scope="module")
def tiny():
    config = tiny_sam_config()
    return randomize_(EfficientViTSamModel(config), seed=0).eval(), EfficientViTSamImageProcessor.for_config(config)


def mask_ious(first: list[np.ndarray], second: list[np.ndarray]) -> np.ndarray:
    a = np.stack(first).reshape(len(first), -1).astype(np.float32)
    b = np.stack(second).reshape(len(second), -1).astype(np.float32)
    inter = a @ b.T
    return inter / np.maximum(a.sum(1)[:, None] + b.sum(1)[None] - inter, 1)


# ------------------------------------------------------------------------------------------- trained model
def test_shapes_model_finds_the_shapes(shapes):
    """The fixture is a real SAM: on its scenes, everything mode recovers most visible shapes."""
    found = total = 0
    for index in range(8):
        image, truth = scene(index)
        result = SamAutomaticMaskGenerator(*shapes, 16, **THRESHOLDS).generate(image)
        assert result.masks, f"scene {index}: no mask"
        found += int((mask_ious(truth, result.masks).max(1) >= 0.8).sum())
        total += len(truth)
    assert found >= 0.6 * total, (found, total)  # 14 of 20 when the model was made


@pytest.mark.slow
def test_same_masks_as_the_original_generator(shapes):
    """>= 95% of the original's masks are matched by ours at mask IoU >= 0.9 and vice versa, same thresholds."""
    from evit_hf.reference.packages import use_reference_packages

    use_reference_packages()  # efficientsam lives in .references/ (else this skipped whenever it ran first)
    pytest.importorskip("efficientsam")
    from evit_hf.reference.mask_generation import as_array, original_mask_generator

    ours_matched = theirs_matched = ours_total = theirs_total = 0
    for index, points_per_side in ((0, 32), (1, 16), (2, 16), (3, 16), (4, 16), (5, 16)):
        image, _ = scene(index)
        ours = SamAutomaticMaskGenerator(*shapes, points_per_side, **THRESHOLDS).generate(image).masks
        reference = original_mask_generator(*shapes, points_per_side=points_per_side, **THRESHOLDS)
        theirs = [record["segmentation"] for record in reference.generate(as_array(image))]
        if ours and theirs:
            ious = mask_ious(ours, theirs)
            ours_matched += int((ious.max(1) >= 0.9).sum())
            theirs_matched += int((ious.max(0) >= 0.9).sum())
        ours_total, theirs_total = ours_total + len(ours), theirs_total + len(theirs)
    print(f"ours matched {ours_matched}/{ours_total}, the original's matched {theirs_matched}/{theirs_total}")
    assert theirs_total >= 10  # enough masks for the fraction to mean something
    assert ours_matched >= 0.95 * ours_total and theirs_matched >= 0.95 * theirs_total, (
        ours_matched, ours_total, theirs_matched, theirs_total)


def test_box_mode_equals_prompting_each_box(shapes):
    image, truth = scene(0)
    boxes = [m.masks_to_boxes(torch.from_numpy(mask)[None])[0].tolist() for mask in truth]
    boxes.append([5.0, 5.0, 250.0, 120.0])
    generator = SamAutomaticMaskGenerator(*shapes, points_per_batch=2)  # several batches
    result = generator.segment_boxes(image, boxes)
    assert len(result.masks) == len(boxes) and result.num_prompts == len(boxes)
    predictor = SamPredictor(*shapes)
    predictor.set_image(image)
    for i, box in enumerate(boxes):
        single = predictor.predict(box=box, multimask_output=False)
        mask = single.masks[0].numpy()
        assert (mask != result.masks[i]).mean() < 1e-4, i  # only pixels whose logit rounds across 0 may differ
        assert result.scores[i] == pytest.approx(float(single.iou_scores[0]), abs=1e-5)
    assert (mask_ious(truth, result.masks[: len(truth)]).diagonal() > 0.75).all()  # the boxes' shapes (0.79-0.94)


# -------------------------------------------------------------------------------------------- options
def test_options_and_outputs(tiny):
    model, processor = tiny
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8))
    loose = {"pred_iou_thresh": -1.0, "stability_score_thresh": 0.0}
    single = SamAutomaticMaskGenerator(model, processor, 4, multimask_output=False, **loose).generate(image)
    assert single.num_prompts == 16 and single.num_candidates == 16  # one mask per point
    crops = SamAutomaticMaskGenerator(model, processor, 4, crop_n_layers=1, crop_n_points_downscale_factor=2,
                                      **loose).generate(image)
    assert crops.num_prompts == 16 + 4 * 4  # the whole image, then 4 crops of 2x2 points
    assert all(mask.shape == (90, 120) and mask.dtype == bool for mask in crops.masks)
    grid = [np.array([[0.5, 0.5], [0.25, 0.75]])]
    explicit = SamAutomaticMaskGenerator(model, processor, None, point_grids=grid, **loose).generate(image)
    assert explicit.num_prompts == 2
    records = crops.records("coco_rle")
    assert len(records) == len(crops.masks)
    from pycocotools import mask as mask_utils

    for record, mask in zip(records, crops.masks):
        assert np.array_equal(mask_utils.decode(record["segmentation"]).astype(bool), mask)
        x, y, w, h = record["bbox"]
        ys, xs = np.nonzero(mask)
        assert (x, y, x + w, y + h) == (xs.min(), ys.min(), xs.max(), ys.max())
        assert record["area"] == mask.sum() and len(record["point_coords"][0]) == 2
    for bad, message in (({"points_per_side": 0}, "at least 1"), ({"point_grids": grid}, "exactly one"),
                         ({"points_per_side": None, "point_grids": [np.array([[2.0, 0.5]])]}, r"\[0, 1\]")):
        with pytest.raises(ValueError, match=message):
            SamAutomaticMaskGenerator(model, processor, **{"points_per_side": 4, **bad})
    with pytest.raises(ValueError, match="outside"):
        SamAutomaticMaskGenerator(model, processor).segment_boxes(image, [[0, 0, 500, 50]])
    with pytest.raises(ValueError, match="not of this"):
        other = SamPredictor(model, processor).set_image(image.resize((60, 45)))
        SamAutomaticMaskGenerator(model, processor, 4).generate(image, embedding=other)


def test_min_mask_region_area_fills_holes_and_drops_islands():
    mask = np.zeros((40, 40), dtype=bool)
    mask[5:30, 5:30] = True
    mask[10:12, 10:12] = False  # a 4-pixel hole
    mask[35:37, 35:37] = True  # a 4-pixel island
    filled, changed = m.remove_small_regions(mask, 10, "holes")
    assert changed and filled[10:12, 10:12].all() and filled[35:37, 35:37].all()
    cleaned, changed = m.remove_small_regions(filled, 10, "islands")
    assert changed and not cleaned[35:37, 35:37].any() and cleaned[5:30, 5:30].all()
    assert m.remove_small_regions(cleaned, 10, "islands") == (cleaned, False)


def test_mask_utilities():
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(0)
    masks = torch.from_numpy(rng.random((5, 17, 23)) > 0.6)
    masks[3] = False
    masks[4] = True
    rles = m.masks_to_rle(masks)
    for rle, mask in zip(rles, masks.numpy()):
        assert np.array_equal(m.rle_to_mask(rle), mask)
        assert m.rle_area(rle) == mask.sum()
        assert np.array_equal(mask_utils.decode(m.coco_rle(rle)).astype(bool), mask)
    boxes = m.masks_to_boxes(masks)
    ys, xs = np.nonzero(masks[0].numpy())
    assert boxes[0].tolist() == [xs.min(), ys.min(), xs.max(), ys.max()] and boxes[3].tolist() == [0, 0, 0, 0]
    logits = torch.tensor([[[3.0, 0.5], [-0.5, -3.0]]])
    assert m.stability_scores(logits, 0.0, 1.0).tolist() == pytest.approx([1 / 3])  # > 1: one pixel; > -1: 3
    grids = m.build_point_grids(4, 2, 2)
    assert [len(g) for g in grids] == [16, 4, 1]
    boxes, layers = m.generate_crop_boxes((300, 400), 1, 512 / 1500)
    assert boxes[0] == [0, 0, 400, 300] and len(boxes) == 5 and layers == [0, 1, 1, 1, 1]


# ------------------------------------------------------------------------------------------- pipeline
def test_pipeline_runs_the_generator_for_efficientvit_sam(shapes):
    from transformers import pipeline

    import evit_hf  # noqa: F401  (registers the pipeline class)
    from evit_hf.predict.pipeline import EfficientViTMaskGenerationPipeline

    image, _ = scene(0)
    runner = pipeline("mask-generation", model=shapes[0], image_processor=shapes[1])
    assert isinstance(runner, EfficientViTMaskGenerationPipeline) and runner.runs_generator
    out = runner(image, points_per_crop=16, output_bboxes_mask=True, output_rle_mask=True, **THRESHOLDS)
    expected = SamAutomaticMaskGenerator(*shapes, 16, **THRESHOLDS).generate(image)
    assert len(out["masks"]) == len(expected.masks) > 0
    assert all(np.array_equal(a, b) for a, b in zip(out["masks"], expected.masks))
    torch.testing.assert_close(out["scores"], torch.tensor(expected.scores))
    assert out["bounding_boxes"].shape == (len(expected.masks), 4) and len(out["rle_mask"]) == len(expected.masks)
    boxes = runner(image, input_boxes=[[10, 10, 120, 120], [100, 90, 250, 250]])
    assert len(boxes["masks"]) == 2
    with pytest.raises(ValueError, match="min_mask_region_area"):
        runner(image, max_hole_area=10)


def test_pipeline_keeps_transformers_for_other_models(tiny):
    """A transformers `SamModel` gets transformers' own pipeline code (the parent class), unchanged."""
    from transformers import SamConfig, SamModel, pipeline
    from transformers.pipelines.mask_generation import MaskGenerationPipeline

    import evit_hf  # noqa: F401

    config = SamConfig(vision_config={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                                      "output_channels": 32, "image_size": 128, "mlp_dim": 64,
                                      "global_attn_indexes": [0], "num_pos_feats": 16},
                       prompt_encoder_config={"hidden_size": 32, "image_size": 128},
                       mask_decoder_config={"hidden_size": 32, "mlp_dim": 64, "num_attention_heads": 2,
                                            "iou_head_hidden_dim": 32})
    model = randomize_(SamModel(config), seed=0).eval()
    processor = EfficientViTSamImageProcessor(encoder_size=128, size={"longest_edge": 128},
                                              pad_size={"height": 128, "width": 128})  # pure-torch NMS
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 80, 3), dtype=np.uint8))
    call = {"points_per_crop": 2, "pred_iou_thresh": -1e9, "stability_score_thresh": -1e9}
    runner = pipeline("mask-generation", model=model, image_processor=processor, points_per_batch=2)
    assert not runner.runs_generator
    stock = MaskGenerationPipeline(model=model, image_processor=processor, points_per_batch=2)
    ours, theirs = runner(image, **call), stock(image, **call)
    assert len(ours["masks"]) == len(theirs["masks"]) > 0
    assert all(np.array_equal(a, b) for a, b in zip(ours["masks"], theirs["masks"]))
    torch.testing.assert_close(ours["scores"], theirs["scores"])
