"""The original implementation, importable without its training stack: `build_original(variant)`.

Owns building the original mit-han-lab model of a released variant (`cls-*`, `seg-*`, `sam-*`) with its model
zoo's norm eps, for benchmarks and tests that compare evit-hf against it (`bench.inference` gives both the
same weights with `reference.randomize_` and our converter). The original is not a dependency: it is found
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
import os
import sys
import types
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

from torch import nn

from .packages import REFERENCES_ENV, use_reference_packages
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
        use_reference_packages()
        if importlib.util.find_spec("efficientsam") is None:
            raise OriginalUnavailable(f"{err}; or, for SAM, `pip install --no-deps --target DIR efficientsam` and "
                                      f"set ${REFERENCES_ENV}=DIR (`make test` installs it in .references)") from err
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


__all__ = ["ORIGINAL_PATH_ENV", "OriginalUnavailable", "build_original"]
