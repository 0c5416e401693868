"""`evit-hf eval`: metric code against hand-computed values, and each task end to end on synthetic data.

Every dataset is written on the fly in the format a user would pass (parquet shards, a COCO JSON with RLE
masks and an image folder, HR/LR image folders); models are tiny random-weight ones saved with
`save_pretrained`, so the whole file runs offline in well under a minute on one thread.
"""

from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from evit_hf import EfficientViTConfig
from evit_hf.cli import main
from evit_hf.data.sa1b import encode_mask, write_synthetic_sa1b
from evit_hf.data.synthetic import write_synthetic_segmentation
from evit_hf.evaluation.coco import coco_mask_ap
from evit_hf.evaluation.runner import EvalResult, write_results
from evit_hf.evaluation.sam import click_ious, next_click
from evit_hf.evaluation.segmentation import (
    SegmentationSettings,
    cityscapes_train_ids,
    logits_at_input,
    sliding_window_logits,
)
from evit_hf.evaluation.super_resolution import find_pairs
from evit_hf.models.efficientvit import (
    EfficientViTForImageClassification,
    EfficientViTForImageSuperResolution,
    EfficientViTForSemanticSegmentation,
    EfficientViTSRConfig,
)
from evit_hf.models.efficientvit.configuration_efficientvit_sam import EfficientViTSamConfig, sam_vision_config
from evit_hf.models.efficientvit.image_processing_efficientvit_sam import EfficientViTSamImageProcessor
from evit_hf.models.efficientvit.modeling_efficientvit_sam import EfficientViTSamModel
from evit_hf.predict import SamPrediction
from evit_hf.training.metrics import SegmentationMetrics


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def backbone_kwargs() -> dict:
    return dict(
        widths=[8, 8, 16, 16, 32], depths=[1, 1, 1, 1, 1], block_types=["ds", "mb", "mb", "att", "att"],
        expand_ratios=[1, 2, 2, 2, 2], downsample_expand_ratios=[1, 2, 2, 2, 2],
        fewer_norm=[False, False, False, True, True], attention_head_dim=8,
    )


@pytest.fixture(scope="module")
def seg_model(tmp_path_factory) -> str:
    config = EfficientViTConfig(**backbone_kwargs(), segmentation_head_width=16, segmentation_head_depth=1,
                                segmentation_final_expand=2, id2label={i: f"class{i}" for i in range(5)})
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("seg-model")
    EfficientViTForSemanticSegmentation(config).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def seg_data(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("seg-data")
    write_synthetic_segmentation(path, num_train=1, num_validation=3, image_size=64, num_shards=1, progress=False)
    return str(path)


@pytest.fixture(scope="module")
def sam_model(tmp_path_factory) -> str:
    vision = sam_vision_config(
        widths=[8, 16, 32, 64], depths=[1, 1, 1, 1], block_types=["res", "fmb", "mb", "att"],
        expand_ratios=[1, 2, 2, 2], downsample_expand_ratios=[1, 2, 2, 2], fewer_norm=[False, False, True, True],
        attention_head_dim=8, attention_scales=[3], hidden_act="gelu_tanh", image_size=128,
        neck_in_features=["stage3", "stage2"], neck_hidden_size=32, neck_depth=1, neck_output_size=8,
    )
    config = EfficientViTSamConfig(
        vision_config=vision, prompt_encoder_config={"hidden_size": 32, "image_size": 128, "patch_size": 16},
        mask_decoder_config={"hidden_size": 32, "mlp_dim": 64, "num_attention_heads": 2, "iou_head_hidden_dim": 32},
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sam-model")
    EfficientViTSamModel(config).save_pretrained(path)
    EfficientViTSamImageProcessor.for_config(config).save_pretrained(path)
    return str(path)


def disk(size: int, cx: float, cy: float, radius: float) -> np.ndarray:
    ys, xs = np.mgrid[:size, :size]
    return (xs - cx) ** 2 + (ys - cy) ** 2 <= radius**2


@pytest.fixture(scope="module")
def coco_set(tmp_path_factory):
    """A tiny COCO instances set: two 48x64 images, RLE masks (pycocotools), one crowd region."""
    root = tmp_path_factory.mktemp("coco")
    (root / "images").mkdir()
    images, annotations = [], []
    rng = np.random.default_rng(0)
    for image_id in (1, 2):
        pixels = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "images" / f"{image_id:03d}.png")
        images.append({"id": image_id, "file_name": f"{image_id:03d}.png", "height": 48, "width": 64})
        masks = [disk(64, 20, 20, 8)[:48], np.zeros((48, 64), bool)]
        masks[1][30:44, 35:60] = True
        for category_id, mask in enumerate(masks, start=1):
            ys, xs = np.nonzero(mask)
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": category_id, "iscrowd": 0,
                "segmentation": encode_mask(mask), "area": int(mask.sum()),
                "bbox": [float(xs.min()), float(ys.min()), float(np.ptp(xs) + 1), float(np.ptp(ys) + 1)],
            })
    crowd = np.zeros((48, 64), bool)
    crowd[0:5, 50:60] = True
    annotations.append({"id": 99, "image_id": 2, "category_id": 1, "iscrowd": 1, "segmentation": encode_mask(crowd),
                        "area": int(crowd.sum()), "bbox": [50.0, 0.0, 10.0, 5.0]})
    ground_truth = {"images": images, "annotations": annotations,
                    "categories": [{"id": 1, "name": "disk"}, {"id": 2, "name": "box"}]}
    path = root / "instances.json"
    path.write_text(json.dumps(ground_truth))
    return path, root / "images", ground_truth


# ------------------------------------------------------------------------------------------ metric values
def test_segmentation_metrics_perfect_and_known_confusion():
    labels = torch.tensor([[[0, 0, 1, 1], [2, 2, 255, 1]]])
    perfect = SegmentationMetrics(3)
    perfect.update(labels.clamp(max=2), labels)
    assert perfect.compute()["mean_iou"] == 1.0
    # Class 0: 2 right; class 1: 2 of 3 right, one predicted as 0; class 2: right. Ignored pixel not counted.
    predicted = torch.tensor([[[0, 0, 1, 0], [2, 2, 1, 1]]])
    metrics = SegmentationMetrics(3)
    metrics.update(predicted, labels)
    results = metrics.compute()
    iou = results["per_class_iou"]
    assert iou == {"0": pytest.approx(2 / 3), "1": pytest.approx(2 / 3), "2": 1.0}
    assert results["mean_iou"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)


def test_cityscapes_label_ids_map_to_train_ids():
    ids = np.array([[0, 7, 8, 26], [33, 34, 255, 24]])  # unlabeled, road, sidewalk, car / bicycle, ?, ?, person
    assert cityscapes_train_ids(ids).tolist() == [[255, 0, 1, 13], [18, 255, 255, 11]]


def test_coco_mask_ap_of_ground_truth_masks_is_one(coco_set):
    _, _, ground_truth = coco_set
    results = [{"image_id": a["image_id"], "category_id": a["category_id"], "segmentation": a["segmentation"],
                "score": 1.0} for a in ground_truth["annotations"] if not a["iscrowd"]]
    ap = coco_mask_ap(ground_truth, results, [1, 2])
    assert ap["AP"] == pytest.approx(1.0) and ap["AP50"] == pytest.approx(1.0) and ap["AP75"] == pytest.approx(1.0)
    assert ap["AP_small"] == pytest.approx(1.0) and math.isnan(ap["AP_large"])  # no large instance
    # A mask of IoU 0.6 with its ground truth counts at IoU 0.5 but not at 0.75.
    half = [dict(r) for r in results]
    ours = np.zeros((48, 64), bool)
    ours[30:44, 35:60] = True
    ours[30:44, 35:45] = False  # 14x15 of the 14x25 box: IoU 0.6
    half[1]["segmentation"] = encode_mask(ours)
    half[3]["segmentation"] = encode_mask(ours)
    ap = coco_mask_ap(ground_truth, half, [1, 2])
    assert ap["AP50"] == pytest.approx(1.0) and ap["AP75"] < 1.0


def _lvis(ground_truth: dict) -> dict:
    """The COCO set made LVIS-style: category 3 verified absent from image 1 and category 2 not exhaustively
    annotated in image 2; categories rare / common / frequent."""
    lvis = json.loads(json.dumps(ground_truth))
    lvis["annotations"] = [a for a in lvis["annotations"] if not a["iscrowd"]]
    for annotation in lvis["annotations"]:
        annotation.pop("iscrowd")
    lvis["images"][0].update(neg_category_ids=[3], not_exhaustive_category_ids=[])
    lvis["images"][1].update(neg_category_ids=[], not_exhaustive_category_ids=[2])
    lvis["categories"] = [{"id": 1, "frequency": "r"}, {"id": 2, "frequency": "c"}, {"id": 3, "frequency": "f"}]
    return lvis


def test_lvis_federated_ap_ignores_what_lvis_cannot_judge(coco_set):
    from evit_hf.evaluation.lvis import is_lvis, lvis_mask_ap

    lvis = _lvis(coco_set[2])
    assert is_lvis(lvis) and not is_lvis(coco_set[2])
    perfect = [{"image_id": a["image_id"], "category_id": a["category_id"], "segmentation": a["segmentation"],
                "score": 0.9} for a in lvis["annotations"]]
    ap = lvis_mask_ap(lvis, perfect, [1, 2])
    assert ap["AP"] == pytest.approx(1.0) and ap["APr"] == pytest.approx(1.0) and ap["APc"] == pytest.approx(1.0)
    assert math.isnan(ap["APf"])  # category 3 has no ground truth anywhere
    stray = np.zeros((48, 64), bool)
    stray[0:10, 0:10] = True
    extra = [
        # image 2 does not list category 3 as absent: LVIS cannot judge it, the detection is dropped
        {"image_id": 2, "category_id": 3, "segmentation": encode_mask(stray), "score": 1.0},
        # category 2 is not exhaustively annotated in image 2: an unmatched mask there is ignored
        {"image_id": 2, "category_id": 2, "segmentation": encode_mask(stray), "score": 1.0},
    ]
    assert lvis_mask_ap(lvis, perfect + extra, [1, 2])["AP"] == pytest.approx(1.0)
    # in image 1 category 1 is exhaustively annotated: the same stray mask, ranked first, is a false positive
    false_positive = {"image_id": 1, "category_id": 1, "segmentation": encode_mask(stray), "score": 1.0}
    scored = lvis_mask_ap(lvis, perfect + [false_positive], [1, 2])
    assert scored["APr"] < 1.0 and scored["APc"] == pytest.approx(1.0)


def test_coco_mask_ap_without_predictions_is_an_error(coco_set):
    with pytest.raises(ValueError, match="nothing to score"):
        coco_mask_ap(coco_set[2], [], [1])


def test_first_click_is_the_deepest_mask_point_then_errors_are_corrected():
    truth = np.zeros((21, 31), bool)
    truth[5:16, 3:14] = True  # an 11x11 square centred at (8, 10)
    empty = np.zeros_like(truth)
    point, label = next_click(truth, empty, empty.copy())
    assert label == 1 and tuple(point) == (8, 10)
    # A prediction that covers the square and a larger false region to its right: a negative click there.
    prediction = truth.copy()
    prediction[2:19, 16:29] = True
    point, label = next_click(truth, prediction, empty.copy())
    assert label == 0 and prediction[int(point[1]), int(point[0])] and not truth[int(point[1]), int(point[0])]
    # The square half missed: a positive click in the missed half.
    half = truth.copy()
    half[:, 9:] = False
    point, label = next_click(truth, half, empty.copy())
    assert label == 1 and point[0] >= 9 and truth[int(point[1]), int(point[0])]


def test_click_ious_of_a_perfect_and_an_empty_predictor():
    truth = disk(24, 12, 12, 6)

    class Stub:  # a SamPredictor whose best mask is always `mask`
        def __init__(self, mask):
            self.mask, self.calls = mask, []

        def predict_batch(self, point_coords, point_labels, best_only):
            self.calls.append((point_coords.copy(), point_labels.copy()))
            return SamPrediction(torch.from_numpy(self.mask)[None, None], torch.ones(1, 1), torch.zeros(1, 1, 4, 4))

    perfect = Stub(truth)
    assert click_ious(perfect, truth, 3) == [1.0, 1.0, 1.0]
    assert perfect.calls[0][1].tolist() == [[1]] and perfect.calls[0][0].tolist() == [[[12.0, 12.0]]]
    empty = Stub(np.zeros_like(truth))
    assert click_ious(empty, truth, 3) == [0.0, 0.0, 0.0]
    points, labels = empty.calls[-1]
    assert labels.tolist() == [[1, 1, 1]] and len({tuple(p) for p in points[0]}) == 3  # never the same pixel


def test_sliding_window_covers_the_image_and_averages_overlaps():
    class Pointwise(torch.nn.Module):
        """A 'segmenter' at stride 8 whose logits are the pooled pixels (no context)."""

        def forward(self, pixel_values):
            pooled = torch.nn.functional.avg_pool2d(pixel_values, 8)
            return type("Out", (), {"logits": torch.cat([pooled, -pooled], 1)})()

    model = Pointwise()
    pixels = torch.randn(1, 3, 64, 96)
    whole = sliding_window_logits(model, pixels, window=96, stride=96)  # one window: the whole image
    assert torch.equal(whole, logits_at_input(model, pixels))
    flat = torch.full((1, 3, 64, 96), 0.5)  # a constant image: every window sees the same thing
    windows = sliding_window_logits(model, flat, window=32, stride=24)
    assert windows.shape == (1, 6, 64, 96)
    assert torch.allclose(windows, torch.tensor([0.5] * 3 + [-0.5] * 3).view(1, 6, 1, 1).expand_as(windows))


def test_results_json_writes_nan_as_null(tmp_path):
    result = EvalResult("seg", "m", "d", {"mean_iou": math.nan, "per_class_iou": {"a": 0.5}}, "table")
    data = json.loads(write_results(result, tmp_path / "out" / "r.json").read_text())
    assert data["metrics"] == {"mean_iou": None, "per_class_iou": {"a": 0.5}} and data["task"] == "seg"


# ------------------------------------------------------------------------------------------ end to end
def test_eval_seg_end_to_end_whole_and_sliding_window(seg_model, seg_data, tmp_path, capsys):
    out = tmp_path / "seg.json"
    assert main(["eval", "seg", "--model", seg_model, "--data", seg_data, "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["metrics"]["images"] == 3 and results["metrics"]["pixels"] == 3 * 64 * 64
    assert set(results["metrics"]["per_class_iou"]) == {f"class{i}" for i in range(5)}
    assert 0 <= results["metrics"]["mean_iou"] <= 1
    assert "| **mean** |" in capsys.readouterr().out
    args = ["--short-side", "80", "--max-pixels", "1000", "--window", "64", "--stride", "32", "--max-samples", "1"]
    assert main(["eval", "seg", "--model", seg_model, "--data", seg_data, "--out", str(out), *args]) == 0
    results = json.loads(out.read_text())
    assert results["metrics"]["images"] == 1 and results["metrics"]["pixels"] == 64 * 64  # scored at label size
    assert results["settings"]["max_pixels"] == 1000


def test_eval_seg_bad_input_is_a_one_line_error(seg_model, seg_data, capsys):
    assert main(["eval", "seg", "--model", seg_model, "--data", seg_data, "--label-column", "mask"]) == 2
    assert "no column 'mask'" in capsys.readouterr().err
    assert main(["eval", "seg", "--model", seg_model, "--data", seg_data, "--window", "50"]) == 2
    assert "multiple of 32" in capsys.readouterr().err
    assert main(["eval", "seg", "--model", seg_model, "--data", "/nonexistent/data.parquet"]) == 2
    assert "No parquet files" in capsys.readouterr().err
    with pytest.raises(ValueError, match="short-side"):
        SegmentationSettings(short_side=8)


def test_eval_cls_end_to_end(tmp_path, seg_data, capsys):
    import datasets

    config = EfficientViTConfig(**backbone_kwargs(), head_widths=[16, 16], num_labels=3)
    torch.manual_seed(0)
    EfficientViTForImageClassification(config).save_pretrained(tmp_path / "cls")
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)) for _ in range(5)]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(num_classes=3)})
    datasets.Dataset.from_dict({"image": images, "label": [0, 1, 2, 0, 1]}, features=features).to_parquet(
        tmp_path / "cls.parquet")
    out = tmp_path / "cls.json"
    args = ["eval", "cls", "--model", str(tmp_path / "cls"), "--data", str(tmp_path / "cls.parquet"),
            "--image-size", "64", "--crop-pct", "0.95", "--batch-size", "2", "--out", str(out)]
    assert main(args) == 0
    metrics = json.loads(out.read_text())["metrics"]
    assert metrics["samples"] == 5 and metrics["top5_accuracy"] == 1.0  # 3 classes: always in the top 5
    assert "top-1 (%)" in capsys.readouterr().out
    assert main([*args[:-2], "--crop-pct", "1.5"]) == 2
    assert "--crop-pct" in capsys.readouterr().err
    if importlib.util.find_spec("onnxruntime"):  # the exported file scores the same
        onnx = _export(str(tmp_path / "cls"), tmp_path / "cls-onnx")
        assert main([*args, "--onnx", onnx]) == 0
        onnx_metrics = json.loads(out.read_text())["metrics"]
        assert onnx_metrics["samples"] == 5 and onnx_metrics["top1_accuracy"] == metrics["top1_accuracy"]


def test_eval_sam_coco_json_with_gt_boxes_detections_and_clicks(sam_model, coco_set, tmp_path, capsys):
    path, images, ground_truth = coco_set
    out = tmp_path / "sam.json"
    common = ["eval", "sam", "--model", sam_model, "--data", str(path), "--images", str(images), "--out", str(out)]
    assert main([*common, "--points", "1", "3"]) == 0
    metrics = json.loads(out.read_text())["metrics"]
    assert metrics["images"] == 2 and metrics["prompts"] == "gt_boxes"
    for key in ("AP", "AP50", "AP75", "AP_small", "box_miou_all", "click1_miou_all", "click3_miou_all"):
        assert 0 <= metrics[key] <= 1, key
    assert metrics["AP_large"] is None and metrics["box_miou_large"] is None
    assert "| 3 clicks |" in capsys.readouterr().out
    detections = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
                  for a in ground_truth["annotations"] if not a["iscrowd"]]
    (tmp_path / "dets.json").write_text(json.dumps(detections))
    assert main([*common, "--detections", str(tmp_path / "dets.json"), "--max-samples", "1"]) == 0
    metrics = json.loads(out.read_text())["metrics"]
    assert metrics["prompts"] == "detections" and metrics["images"] == 1 and "box_miou_all" not in metrics


def test_eval_sam_scores_lvis_ground_truth_the_federated_way(sam_model, coco_set, tmp_path):
    path, images, ground_truth = coco_set
    lvis = _lvis(ground_truth)
    for info in lvis["images"]:  # as LVIS ships them: a coco_url, no file_name
        info["coco_url"] = f"http://images.cocodataset.org/{images.name}/{info.pop('file_name')}"
    lvis_path = tmp_path / "lvis_v1_val.json"
    lvis_path.write_text(json.dumps(lvis))
    out = tmp_path / "lvis.json"
    assert main(["eval", "sam", "--model", sam_model, "--data", str(lvis_path), "--images", str(images.parent),
                 "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["settings"]["max_dets"] == 300
    assert 0 <= result["metrics"]["APr"] <= 1 and 0 <= result["metrics"]["APc"] <= 1
    assert result["metrics"]["APf"] is None


def test_eval_sam_sa1b_parquet_dataset(sam_model, tmp_path):
    write_synthetic_sa1b(tmp_path / "sa1b", num_train=1, num_validation=2, image_size=64, num_shards=1,
                         progress=False)
    out = tmp_path / "sam.json"
    assert main(["eval", "sam", "--model", sam_model, "--data", str(tmp_path / "sa1b"), "--out", str(out),
                 "--points", "1"]) == 0
    metrics = json.loads(out.read_text())["metrics"]
    assert metrics["images"] == 2 and 0 <= metrics["AP"] <= 1 and 0 <= metrics["click1_miou_all"] <= 1


def test_eval_sam_bad_input(sam_model, coco_set, tmp_path, capsys):
    path, images, _ = coco_set
    assert main(["eval", "sam", "--model", sam_model, "--data", str(path)]) == 2
    assert "--images" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text(json.dumps({"boxes": []}))
    assert main(["eval", "sam", "--model", sam_model, "--data", str(tmp_path / "bad.json"), "--images",
                 str(images)]) == 2
    assert "not a COCO instances file" in capsys.readouterr().err
    assert main(["eval", "sam", "--model", sam_model, "--data", str(path), "--images", str(images),
                 "--points", "0"]) == 2
    assert "click counts" in capsys.readouterr().err


def test_eval_sr_paired_and_hr_only(tmp_path, capsys):
    config = EfficientViTSRConfig(hidden_size=16, num_blocks=2, attention_head_dim=8, expand_ratio=2,
                                  upsampler_hidden_size=8, upscale=2)
    torch.manual_seed(0)
    EfficientViTForImageSuperResolution(config).save_pretrained(tmp_path / "sr")
    rng = np.random.default_rng(0)
    (tmp_path / "set" / "HR").mkdir(parents=True)
    (tmp_path / "set" / "LR_bicubic" / "X2").mkdir(parents=True)
    for name in ("baby", "bird"):
        hr = Image.fromarray(rng.integers(0, 255, (33, 41, 3), dtype=np.uint8))
        hr.save(tmp_path / "set" / "HR" / f"{name}.png")
        hr.resize((20, 16), Image.BICUBIC).save(tmp_path / "set" / "LR_bicubic" / "X2" / f"{name}x2.png")
    assert [(h.name, lo.name) for h, lo in find_pairs(tmp_path / "set", None, 2)] == [
        ("baby.png", "babyx2.png"), ("bird.png", "birdx2.png")]
    out = tmp_path / "sr.json"
    assert main(["eval", "sr", "--model", str(tmp_path / "sr"), "--data", str(tmp_path / "set"), "--out",
                 str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["metrics"]["images"] == 2 and result["settings"]["paired"] is True
    assert result["metrics"]["psnr_y"] > 0 and 0 < result["metrics"]["ssim_y"] <= 1
    hr_only = ["eval", "sr", "--model", str(tmp_path / "sr"), "--data", str(tmp_path / "set" / "HR"), "--out",
               str(out), "--tile-size", "16", "--tile-overlap", "4"]
    assert main(hr_only) == 0
    assert json.loads(out.read_text())["settings"]["paired"] is False
    assert "PSNR-Y" in capsys.readouterr().out
    assert main([*hr_only[:-4], "--scale", "3"]) == 2
    assert "scale" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ exported files (--onnx)
def _export(model_folder: str, out) -> str:
    assert main(["export", "--model", model_folder, "--out", str(out), "--no-validate"]) == 0
    return str(out / "model.onnx")


def test_eval_seg_and_cls_of_an_exported_onnx_file_match_pytorch(seg_model, seg_data, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    onnx = _export(seg_model, tmp_path / "seg-onnx")
    torch_out, onnx_out = tmp_path / "torch.json", tmp_path / "onnx.json"
    common = ["eval", "seg", "--model", seg_model, "--data", seg_data]
    assert main([*common, "--out", str(torch_out)]) == 0
    assert main([*common, "--out", str(onnx_out), "--onnx", onnx]) == 0
    torch_result, onnx_result = json.loads(torch_out.read_text()), json.loads(onnx_out.read_text())
    assert onnx_result["settings"]["onnx"] == onnx and torch_result["settings"]["onnx"] is None
    assert onnx_result["metrics"]["pixels"] == torch_result["metrics"]["pixels"] == 3 * 64 * 64
    assert onnx_result["metrics"]["mean_iou"] == pytest.approx(torch_result["metrics"]["mean_iou"], abs=1e-3)
    assert onnx_result["metrics"]["pixel_accuracy"] == pytest.approx(torch_result["metrics"]["pixel_accuracy"],
                                                                     abs=1e-3)
    # the sliding window runs through the file too
    window = ["--max-pixels", "1000", "--window", "32", "--stride", "16", "--max-samples", "1"]
    assert main([*common, "--out", str(onnx_out), "--onnx", onnx, *window]) == 0
    assert json.loads(onnx_out.read_text())["metrics"]["pixels"] == 64 * 64

    # A file of another model is named as such, not scored.
    config = EfficientViTConfig(**backbone_kwargs(), head_widths=[16, 16], num_labels=3)
    EfficientViTForImageClassification(config).save_pretrained(tmp_path / "cls")
    capsys.readouterr()
    assert main([*common, "--onnx", _export(str(tmp_path / "cls"), tmp_path / "cls-onnx")]) == 2
    assert "predicts 3 classes but the model config has 5" in capsys.readouterr().err
    assert main([*common, "--onnx", str(tmp_path / "missing.onnx")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "broken.onnx").write_bytes(b"not a protobuf")
    assert main([*common, "--onnx", str(tmp_path / "broken.onnx")]) == 2
    assert "not a readable ONNX model" in capsys.readouterr().err


def test_eval_sr_of_an_exported_onnx_file_matches_pytorch(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    config = EfficientViTSRConfig(hidden_size=16, num_blocks=2, attention_head_dim=8, expand_ratio=2,
                                  upsampler_hidden_size=8, upscale=2)
    torch.manual_seed(0)
    EfficientViTForImageSuperResolution(config).save_pretrained(tmp_path / "sr")
    rng = np.random.default_rng(0)
    (tmp_path / "hr").mkdir()
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 255, (36, 44, 3), dtype=np.uint8)).save(tmp_path / "hr" / f"{name}.png")
    onnx = _export(str(tmp_path / "sr"), tmp_path / "sr-onnx")
    common = ["eval", "sr", "--model", str(tmp_path / "sr"), "--data", str(tmp_path / "hr")]
    results = []
    for extra in ([], ["--onnx", onnx], ["--onnx", onnx, "--tile-size", "16", "--tile-overlap", "4"]):
        out = tmp_path / f"sr{len(results)}.json"
        assert main([*common, "--out", str(out), *extra]) == 0
        results.append(json.loads(out.read_text())["metrics"])
    assert results[1]["psnr_y"] == pytest.approx(results[0]["psnr_y"], abs=1e-3)
    assert results[1]["ssim_y"] == pytest.approx(results[0]["ssim_y"], abs=1e-4)
    assert results[2]["images"] == 2 and results[2]["psnr_y"] > 0
    # a classification file is not an SR graph
    cls_config = EfficientViTConfig(**backbone_kwargs(), head_widths=[16, 16], num_labels=3)
    EfficientViTForImageClassification(cls_config).save_pretrained(tmp_path / "cls")
    capsys.readouterr()
    assert main([*common, "--onnx", _export(str(tmp_path / "cls"), tmp_path / "cls-onnx")]) == 2
    assert "needs pixel_values -> reconstruction" in capsys.readouterr().err
