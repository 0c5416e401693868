"""Hub-ready folders: weights as safetensors, config, processor, and the model code for `trust_remote_code`.

`save_pretrained_with_code` writes what `save_pretrained` writes plus every file of the flat model package
and a complete `auto_map`, so the folder loads with `trust_remote_code=True` where evit-hf is not installed
and with the registered Auto classes where it is.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from transformers import PreTrainedModel

from .models import efficientvit as _family
from .registration import auto_map_for

MODEL_CODE_DIR = Path(_family.__file__).parent


def copy_model_code(save_directory: str | os.PathLike) -> list[str]:
    """Copy the flat model package (configuration/modeling/processing files) next to the weights."""
    copied = []
    for source in sorted(MODEL_CODE_DIR.glob("*.py")):
        if source.name == "__init__.py":
            continue
        shutil.copyfile(source, Path(save_directory) / source.name)
        copied.append(source.name)
    return copied


def save_pretrained_with_code(
    model: PreTrainedModel,
    save_directory: str | os.PathLike,
    image_processor=None,
    **save_kwargs,
) -> Path:
    """Save `model` (and `image_processor`) as a folder that also loads with `trust_remote_code=True`."""
    save_directory = Path(save_directory)
    save_directory.mkdir(parents=True, exist_ok=True)
    model.config.auto_map = auto_map_for(type(model.config))
    model.save_pretrained(save_directory, safe_serialization=True, **save_kwargs)
    copy_model_code(save_directory)
    if image_processor is not None:
        image_processor.save_pretrained(save_directory)
        config_path = save_directory / "preprocessor_config.json"
        processor_config = json.loads(config_path.read_text())
        cls = type(image_processor)
        processor_config["auto_map"] = {"AutoImageProcessor": f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"}
        config_path.write_text(json.dumps(processor_config, indent=2, sort_keys=True) + "\n")
    return save_directory
