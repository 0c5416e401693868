"""Every way of saving a processor or a model gives a folder that loads with `trust_remote_code=True` in a Python
where evit-hf is not installed: plain `save_pretrained` of each image processor, of the SAM processor, and of a
model and its processor into one folder (what `pipeline(...).save_pretrained` does). The folders are loaded in one
fresh interpreter where `import evit_hf` fails; its outputs must equal the in-process ones.
(`save_pretrained_with_code` folders are tests/test_contract.py's.)
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import evit_hf
from conftest import run_python

pytestmark = pytest.mark.skipif(
    evit_hf.EfficientViTImageProcessor is None, reason="the image processors need transformers >= 5"
)


def photo() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut()).resize((96, 72), Image.BICUBIC)


def processors() -> dict:
    return {
        "classification": evit_hf.EfficientViTImageProcessor.for_resolution(64, crop_pct=0.95),
        "segmentation": evit_hf.EfficientViTSegImageProcessor.for_dataset("ade20k", size={"shortest_edge": 64}),
        "sam": evit_hf.EfficientViTSamImageProcessor(encoder_size=128),
        "super-resolution": evit_hf.EfficientViTSRImageProcessor(do_pad=True, size_divisor=16),
    }


def tiny_sam():
    from test_sam import tiny_sam_config

    torch.manual_seed(0)
    config = tiny_sam_config()
    return evit_hf.EfficientViTSamModel(config).eval(), evit_hf.EfficientViTSamProcessor(
        evit_hf.EfficientViTSamImageProcessor.for_config(config))


REMOTE = """
import json, sys
import numpy as np
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModelForMaskGeneration, AutoProcessor

root = sys.argv[1]
image = Image.open(f"{root}/photo.png")
results = {}
try:
    import evit_hf  # noqa: F401
    results["evit_hf"] = "importable"
except ImportError as error:
    results["evit_hf"] = str(error)
for name in json.loads(open(f"{root}/names.json").read()):
    processor = AutoImageProcessor.from_pretrained(f"{root}/{name}", trust_remote_code=True)
    results[name] = type(processor).__module__ + "." + type(processor).__name__
    np.save(f"{root}/{name}.npy", np.asarray(processor(image, return_tensors="np")["pixel_values"]))
processor = AutoProcessor.from_pretrained(f"{root}/sam-processor", trust_remote_code=True)
results["sam-processor"] = type(processor).__module__ + "." + type(processor).__name__
inputs = processor(image, input_points=[[[40.0, 30.0]]], return_tensors="pt")
np.save(f"{root}/sam-processor.npy", inputs["input_points"].numpy())
model = AutoModelForMaskGeneration.from_pretrained(f"{root}/sam-model", trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(f"{root}/sam-model", trust_remote_code=True)
results["sam-model"] = type(model).__module__ + "." + type(model).__name__
with torch.no_grad():
    masks = model(**processor(image, input_points=[[[40.0, 30.0]]], return_tensors="pt")).pred_masks
np.save(f"{root}/sam-model.npy", masks.numpy())
open(f"{root}/results.json", "w").write(json.dumps(results))
"""


def test_plain_save_pretrained_loads_without_evit_hf(tmp_path):
    image = photo()
    image.save(tmp_path / "photo.png")
    expected = {}
    for name, processor in processors().items():
        processor.save_pretrained(tmp_path / name)
        saved = json.loads((tmp_path / name / "preprocessor_config.json").read_text())
        module = saved["auto_map"]["AutoImageProcessor"].split(".")[0]
        assert (tmp_path / name / f"{module}.py").exists(), name
        expected[name] = np.asarray(processor(image, return_tensors="np")["pixel_values"])
    (tmp_path / "names.json").write_text(json.dumps(list(expected)))

    model, processor = tiny_sam()
    processor.save_pretrained(tmp_path / "sam-processor")
    expected["sam-processor"] = processor(image, input_points=[[[40.0, 30.0]]], return_tensors="pt")[
        "input_points"].numpy()
    model.save_pretrained(tmp_path / "sam-model")  # as `pipeline("mask-generation", ...).save_pretrained` does
    processor.save_pretrained(tmp_path / "sam-model")
    with torch.no_grad():
        expected["sam-model"] = model(**processor(image, input_points=[[[40.0, 30.0]]],
                                                  return_tensors="pt")).pred_masks.numpy()

    script = tmp_path / "remote.py"
    script.write_text(REMOTE)
    run_python(f"import runpy, sys\nsys.argv = ['remote.py', {str(tmp_path)!r}]\n"
               f"runpy.run_path({str(script)!r}, run_name='__main__')\n", env={"HF_HUB_OFFLINE": "1"})
    results = json.loads((tmp_path / "results.json").read_text())
    assert "blocked" in results["evit_hf"]
    for name, value in expected.items():
        assert results[name].startswith("transformers_modules."), (name, results[name])
        np.testing.assert_allclose(np.load(tmp_path / f"{name}.npy"), value, atol=1e-5, err_msg=name)
