"""The original implementation as a benchmark reference: build its model, give ours the same weights.

Owns `original_pair(variant)`: the original mit-han-lab model of a released variant (random weights,
deterministic) and the evit-hf model converted from its state dict with our converter, so that a benchmark
times both on identical weights and checks that they agree. The original is not a dependency: it is found
as an importable `efficientvit` package (a clone of mit-han-lab/efficientvit on `PYTHONPATH`, or the folder
named by `$EFFICIENTVIT_ORIGINAL`), or, for SAM, the `efficientsam` package from PyPI (the same model code).
Where neither is there, `OriginalUnavailable` says so and benchmark rows skip cleanly.

The original repository's package `__init__` files import its training stack, triton, onnx and torchvision,
none of which a forward pass uses; only the model files are imported here, with placeholder modules for
those imports (`placeholders.install_placeholders`) and the two-line `Scheduler` its `drop.py` needs.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import sys
import types
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

from .placeholders import install_placeholders

ORIGINAL_PATH_ENV = "EFFICIENTVIT_ORIGINAL"
# The norm eps of the original model zoos (seg_model_zoo.py / sam_model_zoo.py / cls_model_zoo.py).
_L_FAMILY_EPS = 1e-7
_SAM_EPS = 1e-6
_DEFAULT_EPS = 1e-5


class OriginalUnavailable(RuntimeError):
    """The original implementation cannot be imported here (the message says what to install)."""


def _package_root(name: str) -> Path | None:
    path = os.environ.get(ORIGINAL_PATH_ENV)
    if path and path not in sys.path:
        sys.path.insert(0, path)
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__path__", None):
        return Path(list(loaded.__path__)[0])
    spec = importlib.util.find_spec(name)
    return Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else None


def _skeleton(name: str, folder: Path) -> None:
    """Register package `name` at `folder` without running its `__init__` (which imports unused stacks)."""
    if name not in sys.modules:
        module = types.ModuleType(name)
        module.__path__ = [str(folder)]
        sys.modules[name] = module


def _stub(name: str, **attributes) -> None:
    if name not in sys.modules:
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        sys.modules[name] = module


def _import_original(module: str) -> types.ModuleType:
    """`efficientvit.models.efficientvit.<module>` of the original repository, imported model files only."""
    root = _package_root("efficientvit")
    if root is None or not (root / "models" / "efficientvit" / f"{module}.py").is_file():
        raise OriginalUnavailable(
            "the original EfficientViT code is not importable: clone mit-han-lab/efficientvit and put it on "
            f"PYTHONPATH or set ${ORIGINAL_PATH_ENV} to the clone"
        )
    install_placeholders("torchvision")
    _skeleton("efficientvit", root)
    _skeleton("efficientvit.apps", root / "apps")
    _skeleton("efficientvit.apps.trainer", root / "apps" / "trainer")
    _stub("efficientvit.apps.trainer.run_config", Scheduler=type("Scheduler", (), {"PROGRESS": 0}))
    _stub("efficientvit.models.nn.triton_rms_norm", TritonRMSNorm2dFunc=None)  # GPU-only, unused by these models
    _skeleton("efficientvit.models.efficientvit", root / "models" / "efficientvit")
    return importlib.import_module(f"efficientvit.models.efficientvit.{module}")


@contextmanager
def _inert_transforms(sam_module: types.ModuleType):
    """The original SAM builds a torchvision preprocessing transform in `__init__`, unused by the encoder."""
    inert = SimpleNamespace(Compose=lambda ops: None, ToTensor=lambda: None, Normalize=lambda **kwargs: None)
    saved, sam_module.transforms = sam_module.transforms, inert
    try:
        yield
    finally:
        sam_module.transforms = saved


def _sam_module() -> tuple[types.ModuleType, types.ModuleType, str]:
    """(sam module, norm module, source) from the original repository, else from `efficientsam`."""
    try:
        return _import_original("sam"), importlib.import_module("efficientvit.models.nn.norm"), "mit-han-lab"
    except (OriginalUnavailable, ImportError) as err:
        if importlib.util.find_spec("efficientsam") is None:
            raise OriginalUnavailable(f"{err}; or `pip install --no-deps efficientsam` for SAM") from err
    install_placeholders("torchvision")
    sam = importlib.import_module("efficientsam.models.efficientvit.sam")
    return sam, importlib.import_module("efficientsam.models.nn.norm"), "efficientsam"


def build_original(variant: str) -> tuple[nn.Module, str]:
    """(the original model of `variant` with its zoo's norm eps, source) for `cls-*`, `seg-*` and `sam-*`."""
    family, _, rest = variant.partition("-")
    if family == "seg":
        size, _, dataset = rest.partition("-")
        model = getattr(_import_original("seg"), f"efficientvit_seg_{size}")(dataset=dataset)
        norm, source = importlib.import_module("efficientvit.models.nn.norm"), "mit-han-lab"
        eps = _L_FAMILY_EPS if size.startswith("l") else _DEFAULT_EPS
    elif family == "cls":
        model = getattr(_import_original("cls"), f"efficientvit_cls_{rest}")()
        norm, source = importlib.import_module("efficientvit.models.nn.norm"), "mit-han-lab"
        eps = _L_FAMILY_EPS if rest.startswith("l") else _DEFAULT_EPS
    elif family == "sam":
        sam, norm, source = _sam_module()
        with _inert_transforms(sam):
            model = getattr(sam, f"efficientvit_sam_{rest}")()
        eps = _SAM_EPS
    else:
        raise ValueError(f"Unknown variant {variant!r}: expected cls-*, seg-* or sam-*.")
    norm.set_norm_eps(model, eps)
    return model.eval(), source


def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Deterministic weights with realistic scales: fan-in-scaled convs, BatchNorm statistics away from 1/0.

    Untrained defaults (unit BatchNorm, zero biases) make a network's output nearly constant, which would
    hide numerical differences; these weights give every layer a well-spread output.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            noise = torch.randn(tensor.shape, generator=generator)
            if name.endswith("running_var"):
                tensor.copy_(0.5 + noise.abs())
            elif name.endswith("weight") and tensor.ndim == 1:  # norm scales
                tensor.copy_(1.0 + 0.1 * noise)
            elif tensor.ndim <= 1:
                tensor.copy_(0.05 * noise)
            else:
                tensor.copy_(noise * (1.0 / math.sqrt(max(tensor[0].numel(), 1))))
    return model


def original_pair(variant: str, seed: int = 0) -> tuple[nn.Module, nn.Module, str]:
    """(original model, evit-hf model with the same weights, source of the original), both in eval mode.

    `sam-*` variants give the image encoders (`model.image_encoder` / `model.get_image_embeddings`).
    """
    from ..convert import from_original

    original, source = build_original(variant)
    randomize_(original, seed)
    ours = from_original(original.state_dict(), variant)
    if variant.startswith("sam-"):
        return original.image_encoder.eval(), SamEncoder(ours).eval(), source
    return original, ours.eval(), source


class SamEncoder(nn.Module):
    """An EfficientViT-SAM model's image encoder as a module of pixels (`get_image_embeddings`)."""

    def __init__(self, sam_model: nn.Module) -> None:
        super().__init__()
        self.sam = sam_model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.sam.get_image_embeddings(pixel_values)


__all__ = ["OriginalUnavailable", "build_original", "original_pair", "randomize_", "SamEncoder",
           "ORIGINAL_PATH_ENV"]
