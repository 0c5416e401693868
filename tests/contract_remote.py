"""The remote-code half of tests/test_contract.py: `python contract_remote.py WORKSPACE` in a fresh interpreter
where `import evit_hf` fails (conftest.BLOCK_EVIT_HF), as on a machine without evit-hf.

For every family in WORKSPACE/spec.json it loads the config, the model (its Auto class and AutoModel), the image
processor and the pipeline from the offline Hub cache with `trust_remote_code=True`, compares what they produce
with the tensors the in-process models wrote (WORKSPACE/<family>.safetensors), runs the model card's
remote-code snippet, and writes WORKSPACE/results.json: per family where each class came from and the largest
differences (or the traceback), plus whether evit_hf could be imported at all. It imports nothing of evit_hf;
the test module imports its helpers (`flatten`, `pipeline_output`) to write the expectations the same way.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

MODEL_INPUTS = ("pixel_values", "input_points", "input_labels", "input_boxes")


def flatten(prefix: str, value: Any) -> dict[str, torch.Tensor]:
    """{name: tensor} of a tensor or a (nested) dict / tuple of tensors, named `prefix.key` / `prefix.i`."""
    if isinstance(value, torch.Tensor):
        return {prefix: value.detach().contiguous()}
    flat: dict[str, torch.Tensor] = {}
    for key, item in value.items() if isinstance(value, dict) else enumerate(value):
        flat.update(flatten(f"{prefix}.{key}", item))
    return flat


def model_inputs(processor, image, prompts: dict) -> dict[str, torch.Tensor]:
    """The model's keyword inputs from `processor(image, **prompts)`."""
    return {k: v for k, v in processor(image, return_tensors="pt", **prompts).items() if k in MODEL_INPUTS}


def pipeline_output(task: str, result: Any) -> tuple[dict[str, torch.Tensor], list[str]]:
    """A pipeline's result as ({"pipeline.<name>": tensor}, labels) for comparison."""
    labels: list[str] = []
    if task == "image-classification":
        tensors, labels = {"scores": torch.tensor([r["score"] for r in result])}, [r["label"] for r in result]
    elif task == "image-feature-extraction":
        tensors = {"features": torch.tensor(result)}
    elif task == "image-segmentation":
        tensors = {"masks": torch.stack([torch.from_numpy(np.asarray(r["mask"]) > 0) for r in result])}
        labels = [r["label"] for r in result]
    elif task == "mask-generation":
        tensors = {"masks": torch.stack([torch.as_tensor(np.asarray(m)) for m in result["masks"]]),
                   "scores": torch.as_tensor(result["scores"]).float()}
    else:  # image-super-resolution: a PIL image
        tensors = {"image": torch.from_numpy(np.array(result))}
    return {f"pipeline.{k}": v.to(torch.float32) for k, v in tensors.items()}, labels


def differences(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], prefix: str) -> dict[str, float]:
    """{name: max abs difference} over the `expected` tensors named `prefix...` (inf: missing or another shape)."""
    out = {}
    for name, value in expected.items():
        if not name.startswith(prefix):
            continue
        got = actual.get(name)
        if got is None or tuple(got.shape) != tuple(value.shape):
            out[name] = float("inf")
        else:
            out[name] = float((got.double() - value.double()).abs().max()) if value.numel() else 0.0
    return out


def where(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__name__}"


def check(family: dict, workspace: Path, image) -> dict[str, Any]:
    """Load one family by repo id with trust_remote_code and compare it with the in-process expectations."""
    import transformers
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoImageProcessor, AutoModel, pipeline

    repo, report = family["repo_id"], {}
    expected = load_file(str(workspace / f"{family['name']}.safetensors"))
    config = AutoConfig.from_pretrained(repo, trust_remote_code=True)
    if family["auto_class"] == "AutoBackbone":  # its from_pretrained asks the Hub first (test_contract.py)
        model_class = type(transformers.AutoBackbone.from_config(config, trust_remote_code=True))
        model = model_class.from_pretrained(repo)
    else:
        model = getattr(transformers, family["auto_class"]).from_pretrained(repo, trust_remote_code=True)
    model.eval()
    report["config"], report["model"] = where(config), where(model)
    report["token_mixer"] = getattr(config, "token_mixer", None)
    report["module_names"] = sorted({type(m).__name__ for m in model.modules()})
    report["auto_model"] = where(AutoModel.from_pretrained(repo, trust_remote_code=True))
    processor = AutoImageProcessor.from_pretrained(repo, trust_remote_code=True)
    report["processor"] = where(processor)
    inputs = model_inputs(processor, image, family["prompts"])
    report["input_diff"] = differences(flatten("inputs", inputs), expected, "inputs.")
    with torch.inference_mode():
        outputs = model(**inputs)
    actual = {k: v for name in family["output_fields"] for k, v in flatten(f"output.{name}", outputs[name]).items()}
    report["output_diff"] = differences(actual, expected, "output.")
    runner = pipeline(family["task"], model=repo, trust_remote_code=True, **family["pipeline_init"])
    report["pipeline"], report["pipeline_model"] = where(runner), where(runner.model)
    produced, report["pipeline_labels"] = pipeline_output(family["task"], runner(image, **family["pipeline_call"]))
    report["pipeline_diff"] = differences(produced, expected, "pipeline.")
    if family["card"]:
        namespace: dict[str, Any] = {}
        printed = io.StringIO()
        previous = os.getcwd()
        os.chdir(workspace)  # the snippet opens photo.jpg
        try:
            with contextlib.redirect_stdout(printed):
                exec(compile(family["card"], f"card-{family['name']}", "exec"), namespace)
        finally:
            os.chdir(previous)
        made = next(namespace[k] for k in ("classifier", "segmenter", "upscaler", "model") if k in namespace)
        report["card_printed"] = printed.getvalue()
        report["card_model"] = where(getattr(made, "model", made))
    return report


def main(workspace: Path) -> None:
    results: dict[str, Any] = {"evit_hf_import_error": None}
    try:
        import evit_hf  # noqa: F401
    except ImportError as err:
        results["evit_hf_import_error"] = str(err)
    from PIL import Image

    image = Image.open(workspace / "photo.png")
    for family in json.loads((workspace / "spec.json").read_text()):
        try:
            results[family["name"]] = check(family, workspace, image)
        except Exception:  # noqa: BLE001 - reported per family, so that each case fails on its own
            results[family["name"]] = {"error": traceback.format_exc()}
    results["evit_hf_modules"] = sorted(name for name in sys.modules if name.split(".")[0] == "evit_hf")
    (workspace / "results.json").write_text(json.dumps(results))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
