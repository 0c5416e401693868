"""EfficientViT-SAM training runs as a user launches them: `python training/sam.py` for both stages, on one
process and on 2 processes (gloo), with a frozen encoder, with LoRA (PEFT), and the saved models reloaded."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("pycocotools")

from conftest import (  # noqa: E402
    REPO,
    randomize_weights,
    script_env,
    train_script,
    training_log,
    two_process_launcher,
)
from interruptions import interrupt, logged_steps, resume_line, run_shell  # noqa: E402

# A tiny student (B0 backbone, 64-pixel input, 8x8 embeddings) and cheap losses: seconds per epoch.
TINY = ["--image_size", "64", "--embedding_size", "8", "--masks_per_image", "4", "--max_eval_masks", "4",
        "--loss_points", "256", "--batch_size", "4", "--progress", "false", "--logging_steps", "1"]


@pytest.fixture(scope="module")
def tiny_sa1b(tmp_path_factory) -> Path:
    from evit_hf.data.sa1b import write_synthetic_sa1b

    root = tmp_path_factory.mktemp("sa1b")
    write_synthetic_sa1b(root, num_train=12, num_validation=4, image_size=64, num_shards=2, progress=False)
    return root


def _evaluations(run: Path) -> list[dict]:
    return [record for record in training_log(run) if any(key.startswith("eval/") for key in record)]


def _state(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


FINETUNE = ["--num_epochs", "3", "--max_negative_points", "2", "--box_jitter", "0.1", *TINY]


@pytest.fixture(scope="module")
def finetuned(tiny_sa1b, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("finetune") / "run"
    train_script("sam.py", "--dataset", str(tiny_sa1b), "--output_dir", str(out), *FINETUNE)
    return out


def test_finetune_evaluates_before_and_after_and_saves_a_loadable_model(finetuned, tiny_sa1b):
    from datasets import load_dataset
    from transformers import AutoModel, pipeline

    evaluations = _evaluations(finetuned)
    assert [record["step"] for record in evaluations] == [0, 3, 6, 9]  # at start, then after each epoch
    assert all(0 <= record["eval/box_miou"] <= 1 and record["eval/box_masks"] > 0 for record in evaluations)
    losses = [record["loss"] for record in training_log(finetuned) if "loss" in record]
    assert len(losses) == 9 and all(loss > 0 for loss in losses)
    results = json.loads((finetuned / "eval_results.json").read_text())
    assert results["box_miou"] == evaluations[-1]["eval/box_miou"] and results["global_step"] == 9

    model = AutoModel.from_pretrained(finetuned)
    assert type(model).__name__ == "EfficientViTSamModel" and model.config.encoder_image_size == 64
    image = next(iter(load_dataset(str(tiny_sa1b), split="validation", streaming=True)))["image"]
    generator = pipeline("mask-generation", model=str(finetuned), points_per_batch=16)
    result = generator(image, points_per_crop=4)
    assert all(mask.shape == (64, 64) for mask in result["masks"])


def test_ctrl_c_then_the_printed_command_ends_at_the_same_model(finetuned, tiny_sa1b, tmp_path):
    """Fine-tuning stopped by SIGINT after its first step and resumed with the command it printed (only
    `--output_dir` and `--resume_from_checkpoint latest`: the SAM arguments come from the run) ends with the
    uninterrupted run's weights and box mIoU."""
    out = tmp_path / "run"
    status, stderr = interrupt(
        [sys.executable, str(REPO / "training" / "sam.py"), "--dataset", str(tiny_sa1b), "--output_dir", str(out),
         *FINETUNE], lambda: logged_steps(out) >= 1, [signal.SIGINT], script_env(), tmp_path / "stderr")
    assert status == 130 and not (out / "eval_results.json").exists()
    line = resume_line(stderr)
    assert line.endswith(f"training/sam.py --output_dir {out} --resume_from_checkpoint latest")
    run_shell(line, script_env())
    expected, resumed = json.loads((finetuned / "eval_results.json").read_text()), json.loads(
        (out / "eval_results.json").read_text())
    assert resumed["global_step"] == expected["global_step"] == 9
    assert resumed["box_miou"] == pytest.approx(expected["box_miou"], abs=1e-6)
    before, after = _state(finetuned), _state(out)
    assert max(float((before[k].float() - after[k].float()).abs().max()) for k in before) < 1e-6


def test_frozen_encoder_trains_only_the_prompt_path(finetuned, tiny_sa1b, tmp_path):
    out = tmp_path / "frozen"
    train_script("sam.py", "--dataset", str(tiny_sa1b), "--output_dir", str(out), "--num_epochs", "1",
                 "--model_name_or_path", str(finetuned), "--freeze_image_encoder", "true", *TINY)
    before, after = _state(finetuned), _state(out)
    encoder = [key for key in before if key.startswith("vision_encoder.")]
    decoder = [key for key in before if key.startswith("mask_decoder.") and before[key].is_floating_point()]
    assert encoder and all(torch.equal(before[key], after[key]) for key in encoder)
    assert any(not torch.equal(before[key], after[key]) for key in decoder)


def test_lora_adapts_the_attention_projections_and_saves_a_merged_model(finetuned, tiny_sa1b, tmp_path):
    pytest.importorskip("peft")
    out = tmp_path / "lora"
    train_script("sam.py", "--dataset", str(tiny_sa1b), "--output_dir", str(out), "--num_epochs", "1",
                 "--model_name_or_path", str(finetuned), "--lora_rank", "4", "--learning_rate", "1e-2", *TINY)
    adapter = json.loads((out / "lora_adapter" / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and "attention" in adapter["target_modules"]
    before, after = _state(finetuned), _state(out)
    assert set(before) == set(after)  # merged: plain EfficientViT-SAM weights, loadable without PEFT
    projections = [key for key in before if ".attention.qkv.conv.weight" in key or ".attention.proj.conv.weight" in key]
    others = [key for key in before if key.startswith("vision_encoder.") and key not in projections
              and before[key].is_floating_point()]
    assert projections and all(not torch.equal(before[key], after[key]) for key in projections)
    assert all(torch.equal(before[key], after[key]) for key in others)  # only the adapters trained in the encoder


def test_lora_target_that_matches_nothing_is_named(finetuned, tiny_sa1b, tmp_path):
    pytest.importorskip("peft")
    from evit_hf.training.sam import SamArguments, SamFinetuneTask

    args = SamArguments(model_name_or_path=str(finetuned), lora_rank=2, lora_target_modules=r".*no_such_layer",
                        output_dir=str(tmp_path))
    task = SamFinetuneTask(args)
    with pytest.raises(ValueError, match="matches no module"):
        task.training_module(task.build_model(None))


def _tiny_transformers_sam(folder: Path) -> Path:
    """A small random-weight transformers `SamModel` (a ViT encoder), saved like a Hub checkpoint. Its weights
    are fan-in scaled: with the training init its embeddings would vanish (all ~0, a trivial target)."""
    from transformers import SamConfig, SamModel

    config = SamConfig(vision_config={"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                                      "image_size": 128, "patch_size": 16, "global_attn_indexes": [1],
                                      "window_size": 4, "mlp_dim": 128, "output_channels": 256})
    randomize_weights(SamModel(config)).save_pretrained(folder)
    return folder


def test_distillation_from_a_transformers_sam(tiny_sa1b, tmp_path):
    from transformers import AutoModel, SamModel

    teacher = _tiny_transformers_sam(tmp_path / "teacher")
    out = tmp_path / "distill"
    result = train_script("sam.py", "--stage", "distill", "--teacher_model", str(teacher), "--dataset",
                          str(tiny_sa1b), "--output_dir", str(out), "--num_epochs", "6", "--learning_rate", "3e-3",
                          *TINY)
    assert "Copied the prompt encoder and mask decoder from the teacher" in result.stdout
    losses = [record["loss"] for record in training_log(out) if "loss" in record]
    assert len(losses) == 18 and np.mean(losses[-3:]) < 0.75 * np.mean(losses[:3]), losses
    evaluations = _evaluations(out)
    assert evaluations[0]["step"] == 0 and len(evaluations) == 7
    assert all(np.isfinite(record["eval/embedding_mse"]) and record["eval/images"] == 4 for record in evaluations)
    student = AutoModel.from_pretrained(out)
    assert student.config.vision_config.image_size == 64  # the teacher ran at its own 128 pixels
    # only the image encoder was trained; the prompt path is the teacher's
    reference = SamModel.from_pretrained(teacher).state_dict()
    for key, value in student.state_dict().items():
        if key.startswith(("mask_decoder.", "prompt_encoder.")):
            assert torch.equal(value, reference[key]), key


def test_two_processes_run_both_stages(tiny_sa1b, finetuned, tmp_path):
    """Real 2-process gloo runs: prompts of one kind per process (DDP with unused box embeddings), teacher
    embeddings per process, evaluation counts summed."""
    env = script_env(ACCELERATE_USE_CPU="true")
    out = tmp_path / "ddp-finetune"
    result = train_script("sam.py", "--dataset", str(tiny_sa1b), "--output_dir", str(out), "--num_epochs", "1",
                          *TINY, launcher=two_process_launcher(), env=env)
    assert "Training on 2 process(es) (MULTI_CPU" in result.stdout
    assert _evaluations(out)[-1]["eval/box_masks"] == _evaluations(finetuned)[-1]["eval/box_masks"]
    out = tmp_path / "ddp-distill"
    train_script("sam.py", "--stage", "distill", "--teacher_model", str(finetuned), "--dataset", str(tiny_sa1b),
                 "--output_dir", str(out), "--num_epochs", "1", *TINY, launcher=two_process_launcher(), env=env)
    assert _evaluations(out)[-1]["eval/images"] == 4


def test_a_teacher_that_is_not_sam_is_refused(tmp_path):
    from evit_hf.models.efficientvit import EfficientViTConfig, EfficientViTForSemanticSegmentation
    from evit_hf.training.sam import Teacher

    EfficientViTForSemanticSegmentation(EfficientViTConfig.from_preset("seg-b0-cityscapes")).save_pretrained(
        tmp_path / "seg")
    with pytest.raises(ValueError, match="expected a SAM"):
        Teacher(str(tmp_path / "seg"))
