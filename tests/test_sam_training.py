"""SAM training pieces against hand-computed values: SA-1B records (COCO RLE), the synthetic SA-1B set, prompt
sampling, the point-sampled losses with best-of-multimask, and the metrics."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

pytest.importorskip("pycocotools")

from evit_hf.data.sa1b import (  # noqa: E402
    decode_segmentation,
    encode_mask,
    load_sa1b_folder,
    mask_annotation,
    synthetic_sa1b_sample,
    write_synthetic_sa1b,
)
from evit_hf.training.metrics import EmbeddingDistillationMetrics, PromptedMaskMetrics  # noqa: E402
from evit_hf.training.sam import SamArguments, SamPromptTrainingModule, click_point, match_embeddings  # noqa: E402
from evit_hf.training.sam_objectives import (  # noqa: E402
    jitter_box,
    mask_box,
    mask_iou,
    point_sampled_mask_losses,
    sample_points,
)


def _square(size: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_rle_round_trip_and_other_coco_forms():
    mask = _square(20, 3, 5, 11, 9)
    rle = encode_mask(mask)
    assert rle["size"] == [20, 20] and isinstance(rle["counts"], str)
    assert np.array_equal(decode_segmentation(rle), mask)
    # uncompressed RLE (column-major run lengths starting with zeros) and polygons
    column = np.zeros(4, dtype=bool)
    column[1:3] = True
    uncompressed = {"size": [4, 1], "counts": [1, 2, 1]}
    assert np.array_equal(decode_segmentation(uncompressed)[:, 0], column)
    polygon = [[2.0, 2.0, 8.0, 2.0, 8.0, 8.0, 2.0, 8.0]]
    filled = decode_segmentation(polygon, 10, 10)
    assert filled[4, 4] and not filled[0, 0] and 30 <= filled.sum() <= 49
    with pytest.raises(ValueError, match="height and width"):
        decode_segmentation(polygon)
    with pytest.raises(ValueError, match="COCO RLE or polygons"):
        decode_segmentation({"bad": 1})


def test_mask_annotation_has_tight_box_area_and_a_point_inside():
    mask = _square(32, 4, 6, 14, 20)
    annotation = mask_annotation(mask, 7, np.random.default_rng(0), category_id=2)
    assert annotation["bbox"] == [4.0, 6.0, 10.0, 14.0] and annotation["area"] == 140
    x, y = annotation["point_coords"][0]
    assert mask[int(y), int(x)] and annotation["id"] == 7 and annotation["category_id"] == 2
    with pytest.raises(ValueError, match="empty"):
        mask_annotation(np.zeros((4, 4), bool), 0, np.random.default_rng(0))


def test_synthetic_sa1b_instances_are_the_visible_parts_of_the_shapes():
    for seed in range(6):
        image, annotations = synthetic_sa1b_sample(np.random.default_rng(seed), 96)
        assert image.size == (96, 96) and 1 <= len(annotations) <= 4
        masks = [decode_segmentation(a["segmentation"]) for a in annotations]
        union = np.zeros((96, 96), dtype=int)
        for mask, annotation in zip(masks, annotations):
            union += mask
            assert mask.sum() == annotation["area"] >= 24
            x0, y0, w, h = annotation["bbox"]
            ys, xs = np.nonzero(mask)
            assert (x0, y0, w, h) == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
        assert union.max() == 1  # occlusion cut out: instances never overlap


def test_synthetic_sa1b_dataset_streams_with_datasets(tmp_path):
    from datasets import load_dataset

    out = write_synthetic_sa1b(tmp_path / "sa1b", num_train=6, num_validation=2, image_size=64, num_shards=2,
                               progress=False)
    assert len(list((out / "data").glob("train-*.parquet"))) == 2
    example = next(iter(load_dataset(str(out), split="validation", streaming=True)))
    assert example["image"].size == (64, 64) and example["annotations"]
    mask = decode_segmentation(example["annotations"][0]["segmentation"])
    assert mask.shape == (64, 64) and mask.sum() == example["annotations"][0]["area"]


def test_make_dataset_writes_synthetic_sa1b(tmp_path, capsys):
    from evit_hf.cli import main

    out = tmp_path / "sa1b"
    assert main(["make-dataset", "synthetic-sa1b", "--out", str(out), "--num-train", "3", "--num-validation", "1",
                 "--image-size", "64", "--num-shards", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "train: 3 samples" in printed and "training/sam.py --stage finetune" in printed


def test_raw_sa1b_folder_layout_streams(tmp_path):
    from PIL import Image

    folder = tmp_path / "sa1b"
    folder.mkdir()
    for index in range(3):
        image, annotations = synthetic_sa1b_sample(np.random.default_rng(index), 64)
        image.save(folder / f"sa_{index}.jpg")
        (folder / f"sa_{index}.json").write_text(json.dumps({"image": {"image_id": index},
                                                             "annotations": annotations}))
    examples = list(load_sa1b_folder(folder))
    assert [e["id"] for e in examples] == ["sa_0", "sa_1", "sa_2"]
    # `load_split` (training and `evit-hf eval`) reads the layout as a split folder or as the folder itself
    from evit_hf.training.data import load_split

    assert [e["id"] for e in load_split(str(tmp_path), "sa1b")] == ["sa_0", "sa_1", "sa_2"]
    assert [e["id"] for e in load_split(str(folder), "validation")] == ["sa_0", "sa_1", "sa_2"]
    assert isinstance(examples[0]["image"], Image.Image) and examples[0]["annotations"][0]["segmentation"]["counts"]
    with pytest.raises(ValueError, match="no SA-1B pairs"):
        load_sa1b_folder(tmp_path)


def test_prompt_sampling_respects_the_mask_and_the_image():
    mask = _square(32, 8, 8, 16, 16)
    points, labels = sample_points(mask, np.random.default_rng(0), 5, 4, valid=(24, 32))
    assert labels.tolist() == [1] * 5 + [0] * 4
    for (x, y), label in zip(points.astype(int), labels):
        assert mask[y, x] == bool(label) and y < 24  # negatives stay inside the image, off the padding
    assert mask_box(mask).tolist() == [8, 8, 15, 15]
    box = mask_box(mask)
    assert np.array_equal(jitter_box(box, np.random.default_rng(0), 0.0, 20.0), box)
    moved = jitter_box(box, np.random.default_rng(0), 10.0, 3.0)
    assert np.all(np.abs(moved - box) <= 3.0) and not np.array_equal(moved, box)


def test_point_sampled_losses_and_iou_match_hand_values():
    torch.manual_seed(0)
    target = torch.from_numpy(_square(64, 16, 16, 48, 48)).float()[None, None]
    perfect = (target * 2 - 1) * 30
    bce, dice = point_sampled_mask_losses(perfect, target, 2048)
    # Most points are drawn where the prediction is least certain, i.e. on the edge, where the bilinearly
    # sampled target is fractional: the cross-entropy floor there is the entropy of those soft labels.
    assert float(bce) < 0.35 and float(dice) < 0.1
    bce, dice = point_sampled_mask_losses(-perfect, target, 2048)
    assert float(bce) > 10 and float(dice) > 0.95
    # IoU of two 4x4 squares overlapping in 2x4 pixels: 8 / 24
    a = torch.from_numpy(_square(8, 0, 0, 4, 4))
    b = torch.from_numpy(_square(8, 2, 0, 6, 4))
    assert math.isclose(float(mask_iou(a, b)), 8 / 24, rel_tol=1e-6)
    assert float(mask_iou(torch.zeros(3, 3), torch.zeros(3, 3))) == 1.0


def test_only_the_best_of_the_multimask_outputs_is_trained():
    args = SamArguments(loss_points=1024, iou_loss_weight=0.0)
    module = SamPromptTrainingModule(torch.nn.Identity(), args)
    target = torch.from_numpy(_square(32, 8, 8, 24, 24)).float()
    good = (target * 2 - 1) * 30
    logits = torch.stack([-good, good, torch.zeros_like(good)])[None, None]  # (1 image, 1 prompt, 3 outputs)
    output = SimpleNamespace(pred_masks=logits.requires_grad_(), iou_scores=torch.zeros(1, 1, 3))
    loss = module._mask_loss(output, target[None, None], torch.ones(1, 1))
    # the perfect output's loss (edge points only; the inverted output's would be over 200)
    assert float(loss.detach()) < 20
    loss.backward()
    assert output.pred_masks.grad[0, 0, 0].abs().sum() == 0 and output.pred_masks.grad[0, 0, 2].abs().sum() == 0


def test_click_point_falls_back_to_the_mask_centre():
    mask = _square(16, 4, 4, 9, 9)
    assert click_point(mask, np.array([5.0, 6.0])).tolist() == [5.0, 6.0]
    assert click_point(mask, np.array([0.0, 0.0])).tolist() == [6.0, 6.0]
    assert click_point(mask, None).tolist() == [6.0, 6.0]


def test_metrics_compute_hand_values():
    metrics = PromptedMaskMetrics()
    metrics.update("box", torch.tensor([1.0, 0.5]))
    metrics.update("point", torch.tensor([0.25]))
    other = PromptedMaskMetrics()
    other.update("box", torch.tensor([0.0]))
    metrics.load_counts(metrics.counts() + other.counts())  # what the cross-process sum does
    assert metrics.compute() == {"box_miou": 0.5, "box_masks": 3, "point_miou": 0.25, "point_masks": 1}
    assert "| box | 3 | 50.00 |" in metrics.table()

    distill = EmbeddingDistillationMetrics()
    teacher = torch.ones(2, 4, 3, 3)
    distill.update(teacher, teacher)
    assert distill.compute() == {"embedding_mse": 0.0, "embedding_cosine": 1.0, "images": 2}
    distill.update(-teacher, teacher)  # error 4 per element, cosine -1
    result = distill.compute()
    assert result["embedding_mse"] == 2.0 and result["embedding_cosine"] == 0.0


def test_teacher_embeddings_are_resized_and_widths_checked():
    student = torch.zeros(1, 8, 4, 4)
    assert match_embeddings(torch.ones(1, 8, 8, 8), student).shape == (1, 8, 4, 4)
    with pytest.raises(ValueError, match="channels"):
        match_embeddings(torch.ones(1, 16, 4, 4), student)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"stage": "distill"}, "needs --teacher_model"),
        ({"stage": "pretrain"}, "--stage must be one of"),
        ({"box_probability": 1.5}, "box_probability"),
        ({"lora_rank": 4, "freeze_image_encoder": True}, "cannot be combined"),
        ({"masks_per_image": 0}, "masks_per_image"),
    ],
)
def test_bad_arguments_are_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        SamArguments(**overrides)


def test_unknown_preset_and_bad_embedding_size_are_named():
    from evit_hf.training.sam import build_student

    with pytest.raises(ValueError, match="Unknown EfficientViT-SAM preset"):
        build_student(SamArguments(preset="sam-huge"))
    with pytest.raises(ValueError, match="embedding_size"):
        build_student(SamArguments(embedding_size=24))


def test_small_student_shapes():
    from evit_hf.training.sam import build_student

    model = build_student(SamArguments())
    assert model.config.encoder_image_size == 128 and model.config.prompt_image_size == 1024
    embeddings = model.get_image_embeddings(torch.zeros(1, 3, 128, 128))
    assert embeddings.shape == (1, 256, 16, 16)
    out = model(image_embeddings=embeddings, input_boxes=torch.tensor([[[0.0, 0.0, 512.0, 512.0]]]))
    assert out.pred_masks.shape == (1, 1, 3, 64, 64)


def _finetune_task(**overrides):
    from evit_hf.training.sam import SamFinetuneTask

    args = SamArguments(image_size=64, embedding_size=8, masks_per_image=3, max_eval_masks=5, loss_points=256,
                        max_negative_points=2, **overrides)
    task = SamFinetuneTask(args)
    return task, task.build_model(None)


def test_training_samples_batch_and_give_a_finite_loss_in_bf16_autocast():
    task, model = _finetune_task()
    examples = []
    for seed in range(4):
        image, annotations = synthetic_sa1b_sample(np.random.default_rng(seed), 96)
        examples.append({"image": image, "annotations": annotations})
    samples = [task.train_sample(example, np.random.default_rng([1, i])) for i, example in enumerate(examples)]
    batch = task.collate(samples)
    assert batch["pixel_values"].shape == (4, 3, 64, 64) and batch["masks"].shape == (4, 3, 64, 64)
    assert batch["points"].shape[:2] == (4, 3) and batch["point_labels"].shape == batch["points"].shape[:3]
    # prompts live in the 1024-pixel frame: a 64-pixel input is scaled by 16
    real = batch["mask_weights"] > 0
    assert float(batch["boxes"][real].max()) <= 1024 and float(batch["boxes"][real][:, 2:].max()) > 64
    module = task.training_module(model)
    torch.manual_seed(0)
    loss = task.loss(module, batch)
    assert torch.isfinite(loss) and float(loss.detach()) > 0
    loss.backward()
    assert model.vision_encoder.layer_norm.weight.grad is not None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(task.loss(module, batch))


def test_evaluation_samples_use_the_box_and_a_click_on_each_mask():
    task, model = _finetune_task()
    image, annotations = synthetic_sa1b_sample(np.random.default_rng(3), 128)
    sample = task.eval_sample({"image": image, "annotations": annotations})
    count = int(sample["mask_weights"].sum())
    assert count == len(annotations) and sample["masks"].shape == (5, 64, 64)
    for mask, box, point in zip(sample["masks"][:count], sample["boxes"][:count] / 16, sample["points"][:count] / 16):
        ys, xs = np.nonzero(mask)
        assert box.tolist() == [xs.min(), ys.min(), xs.max(), ys.max()]
        assert mask[int(point[0, 1]), int(point[0, 0])]
    metrics = task.new_metrics(model)
    batch = {k: torch.from_numpy(v)[None] for k, v in sample.items()}
    task.update_metrics(model.eval(), batch, metrics)
    assert metrics.compute()["box_masks"] == count == metrics.compute()["point_masks"]


def test_fsdp_is_refused_with_a_clear_message(monkeypatch):
    from evit_hf.training.sam import SamFinetuneTask

    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    with pytest.raises(ValueError, match="not FSDP"):
        SamFinetuneTask(SamArguments()).load_datasets()


def test_training_script_reports_bad_arguments_in_one_line(capsys):
    from evit_hf.training.sam import main

    assert main(["--stage", "distill", "--output_dir", "unused"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --stage distill needs --teacher_model") and "Traceback" not in err
