"""A placeholder `torchvision` for importing the reference packages (timm, efficientsam) in tests.

torchvision cannot be installed beside the CPU torch wheel here, and the reference model code we compare
against only imports it at module level (transforms, FrozenBatchNorm2d, ...), never calls it. Every
`torchvision.*` module resolves to a stub whose attributes are inert placeholder classes.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types


class _PlaceholderMeta(type):
    # Class attributes (enum members such as InterpolationMode.NEAREST) are placeholders too.
    def __getattr__(cls, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return f"{cls.__name__}.{name}"


class _Placeholder(metaclass=_PlaceholderMeta):
    def __init__(self, *args, **kwargs) -> None:
        raise RuntimeError("torchvision is not available; this placeholder only satisfies imports.")


class _StubModule(types.ModuleType):
    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (_Placeholder,), {})


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _StubModule(spec.name)
        module.__path__ = []
        module.__version__ = "0.0.0"
        return module

    def exec_module(self, module) -> None:
        pass


def install() -> None:
    """Make `import torchvision...` succeed with stubs, unless a real torchvision is importable."""
    if "torchvision" in sys.modules:
        return
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
