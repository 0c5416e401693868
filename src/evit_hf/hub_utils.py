"""Hub-ready folders: weights as safetensors, config, processor, and the model code for `trust_remote_code`.

Models write their own code and `auto_map` in `save_pretrained` (see `RemoteCodeMixin`); this module adds
the image processor with its `auto_map`, so the whole folder loads with `trust_remote_code=True` where
evit-hf is not installed and with the registered Auto classes where it is.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from transformers import PreTrainedModel


def save_pretrained_with_code(
    model: PreTrainedModel,
    save_directory: str | os.PathLike,
    image_processor=None,
    **save_kwargs,
) -> Path:
    """Save `model` (and `image_processor`) as a folder that also loads with `trust_remote_code=True`.

    Super-resolution models get the default `EfficientViTSRImageProcessor` when no processor is given (their
    pipeline needs one); their `config.json` carries the `image-super-resolution` pipeline (`custom_pipelines`).
    """
    save_directory = Path(save_directory)
    save_directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(save_directory, safe_serialization=True, **save_kwargs)
    if image_processor is None and getattr(model.config, "model_type", None) == "efficientvit_sr":
        from .models.efficientvit import EfficientViTSRImageProcessor

        if EfficientViTSRImageProcessor is not None:  # transformers >= 5
            image_processor = EfficientViTSRImageProcessor()
    if image_processor is not None:
        image_processor.save_pretrained(save_directory)
        config_path = save_directory / "preprocessor_config.json"
        processor_config = json.loads(config_path.read_text())
        cls = type(image_processor)
        processor_config["auto_map"] = {"AutoImageProcessor": f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"}
        config_path.write_text(json.dumps(processor_config, indent=2, sort_keys=True) + "\n")
    return save_directory
