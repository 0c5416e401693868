"""evit-hf: EfficientViT as Hugging Face transformers models.

`import evit_hf` registers every model with the transformers Auto classes, so that
`AutoModel.from_pretrained(...)`, `AutoImageProcessor.from_pretrained(...)` and `pipeline(...)` resolve
EfficientViT checkpoints without `trust_remote_code`, and lets the models' own `from_pretrained` take a released
model's name (`EfficientViTSamModel.from_pretrained("efficientvit-sam-xl1")`). `evit_hf.pretrained(name)` is
the local folder of a released model (the authors' checkpoint, converted once and cached) for the Auto classes
and pipelines: `pipeline("image-classification", model=evit_hf.pretrained("efficientvit-b1-r224"))`. (The
`evit-hf` console script is the one exception to registering at import: it parses its arguments first and
registers before it runs a command.)

Importing it also applies the CPU process defaults measured in docs/benchmarks.md (glibc allocator tuning and,
before torch loads, `GOMP_SPINCOUNT`; `evit_hf.cpu_defaults`); `EVIT_HF_CPU_DEFAULTS=0` opts out.
"""

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .cpu_defaults import apply_cpu_defaults as _apply_cpu_defaults

# Before anything imports torch: OpenMP reads GOMP_SPINCOUNT once, when torch loads (opt out:
# EVIT_HF_CPU_DEFAULTS=0; see `evit_hf.cpu_defaults`).
CPU_DEFAULTS = _apply_cpu_defaults()

__version__ = "0.1.0"

# Public names are imported on first access (PEP 562) from `.models.efficientvit` unless listed here, so that
# the `evit-hf` command can build its parser without torch (`_started_by_console_script`).
_HOMES = {"compile_for_inference": ".optimization", "tune_cpu_allocator": ".cpu_defaults",
          "register": ".registration", "pretrained": ".resolve"}

if TYPE_CHECKING:  # the same names for type checkers and the API docs
    from .cpu_defaults import tune_cpu_allocator
    from .models.efficientvit import (
        PRESETS,
        SAM_PRESETS,
        SEGMENTATION_PRESETS,
        SR_PRESETS,
        EfficientViTBackbone,
        EfficientViTConfig,
        EfficientViTForImageClassification,
        EfficientViTForImageSuperResolution,
        EfficientViTForSemanticSegmentation,
        EfficientViTImageProcessor,
        EfficientViTModel,
        EfficientViTPreTrainedModel,
        EfficientViTSamConfig,
        EfficientViTSamImageProcessor,
        EfficientViTSamModel,
        EfficientViTSamPreTrainedModel,
        EfficientViTSamProcessor,
        EfficientViTSegImageProcessor,
        EfficientViTSegmentationHead,
        EfficientViTSRConfig,
        EfficientViTSRImageProcessor,
        EfficientViTSRPreTrainedModel,
        SuperResolutionPipeline,
        set_inference_optimizations,
        tiled_upscale,
    )
    from .optimization import compile_for_inference
    from .registration import register
    from .resolve import pretrained


def __getattr__(name: str):
    if name not in __all__ or name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_HOMES.get(name, ".models.efficientvit"), __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def _started_by_console_script() -> bool:
    """Whether this interpreter runs the `evit-hf` console script: registering imports torch and transformers
    (2-5 s), which `evit-hf --help` does not need; its `main` registers before it runs a command."""
    return bool(sys.argv) and Path(sys.argv[0]).stem == "evit-hf"


if not _started_by_console_script():
    from .registration import register as _register

    _register()
    if CPU_DEFAULTS["spin"]:  # torch's OpenMP has read it; child processes start with the user's environment
        import os as _os

        _os.environ.pop("GOMP_SPINCOUNT", None)

__all__ = [  # sorted
    "__version__",
    "compile_for_inference",
    "EfficientViTBackbone",
    "EfficientViTConfig",
    "EfficientViTForImageClassification",
    "EfficientViTForImageSuperResolution",
    "EfficientViTForSemanticSegmentation",
    "EfficientViTImageProcessor",
    "EfficientViTModel",
    "EfficientViTPreTrainedModel",
    "EfficientViTSamConfig",
    "EfficientViTSamImageProcessor",
    "EfficientViTSamModel",
    "EfficientViTSamPreTrainedModel",
    "EfficientViTSamProcessor",
    "EfficientViTSegImageProcessor",
    "EfficientViTSegmentationHead",
    "EfficientViTSRConfig",
    "EfficientViTSRImageProcessor",
    "EfficientViTSRPreTrainedModel",
    "PRESETS",
    "pretrained",
    "register",
    "SAM_PRESETS",
    "SEGMENTATION_PRESETS",
    "set_inference_optimizations",
    "SR_PRESETS",
    "SuperResolutionPipeline",
    "tiled_upscale",
    "tune_cpu_allocator",
]
