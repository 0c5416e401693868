"""Super-resolution training: the photographs dataset, the degradation, the metrics and a short real run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import script_env, train_script
from evit_hf.training.metrics import SuperResolutionMetrics
from evit_hf.training.transforms import super_resolution_eval_transform, super_resolution_train_transform


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    from evit_hf.cli import main

    out = tmp_path_factory.mktemp("photos")
    assert main(["make-dataset", "skimage-photos", "--out", str(out)]) == 0
    return out


def test_photos_dataset_holds_out_three_photographs(photos):
    from datasets import load_dataset

    splits = load_dataset(str(photos))
    assert splits["train"].num_rows == 13 and splits["validation"].num_rows == 3
    assert set(splits["validation"]["id"]) == {"astronaut", "coffee", "chelsea"}
    assert not set(splits["train"]["id"]) & set(splits["validation"]["id"])
    image = splits["validation"][0]["image"]
    assert image.mode == "RGB" and min(image.size) >= 300


def test_degradation_is_bicubic_downscaling_of_the_patch():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (80, 100, 3), dtype=np.uint8))
    low, high = super_resolution_train_transform(image, np.random.default_rng(1), patch_size=64, scale=2)
    assert low.shape == (3, 32, 32) and high.shape == (3, 64, 64) and 0 <= low.min() and high.max() <= 1
    patch = Image.fromarray((high.transpose(1, 2, 0) * 255).round().astype(np.uint8))
    expected = np.asarray(patch.resize((32, 32), Image.BICUBIC), dtype=np.float32) / 255
    np.testing.assert_allclose(low.transpose(1, 2, 0), expected, atol=1e-6)
    small = Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))  # enlarged, not dropped
    assert super_resolution_train_transform(small, rng, patch_size=64, scale=2)[1].shape == (3, 64, 64)
    low, high = super_resolution_eval_transform(image, scale=3)
    assert high.shape == (3, 78, 99) and low.shape == (3, 26, 33)


def test_sr_metrics_compare_with_bicubic():
    from evit_hf.metrics.super_resolution import psnr_y

    rng = np.random.default_rng(0)
    high = torch.from_numpy(rng.random((1, 3, 64, 64), dtype=np.float32))
    low = torch.nn.functional.avg_pool2d(high, 2)
    metrics = SuperResolutionMetrics(scale=2)
    metrics.update(high.clone(), low, high)  # a perfect reconstruction
    results = metrics.compute()
    assert results["psnr_y"] == float("inf") and results["ssim_y"] == pytest.approx(1.0)
    target = (high[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    low_uint8 = (low[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    bicubic = np.asarray(Image.fromarray(low_uint8).resize((64, 64), Image.BICUBIC))
    assert results["bicubic_psnr_y"] == pytest.approx(psnr_y(bicubic, target, 2))
    assert "| gain |" in metrics.table()


def test_sr_training_run_saves_a_pipeline_ready_model(photos, tmp_path):
    out = tmp_path / "sr"
    # script_env keeps PYTHONPATH: the package under test, not whichever evit_hf the interpreter has installed
    result = train_script("sr.py", "--dataset", str(photos), "--output_dir", str(out), "--patch_size", "32",
                          "--repeats", "2", "--max_steps", "3", "--batch_size", "4", "--progress", "false",
                          env=script_env(HOME=str(tmp_path)), timeout=600)
    results = json.loads((out / "eval_results.json").read_text())
    assert results["images"] == 3 and results["global_step"] == 3
    assert 25 < results["bicubic_psnr_y"] < 40 and np.isfinite(results["psnr_y"])
    assert "eval psnr_y =" in result.stdout and " dB" in result.stdout
    from transformers import pipeline

    upscaler = pipeline("image-super-resolution", model=str(out))
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8))
    assert upscaler(image).size == (60, 40)
