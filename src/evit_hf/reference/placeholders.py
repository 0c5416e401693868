"""Inert placeholder modules, so that reference implementations import where their unused imports cannot.

The reference code we compare against (the original EfficientViT repository, `efficientsam`, `timm`)
imports packages at module level that it never calls in a model's forward pass: torchvision (which cannot
be installed beside the CPU torch wheel), triton (a GPU kernel for a norm no EfficientViT model uses), and
so on. `install_placeholders("torchvision", ...)` makes `import torchvision...` succeed with stubs whose
attributes are placeholder classes that raise if anyone instantiates them; a package that really is
importable is never replaced.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
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
        raise RuntimeError(f"{type(self).__name__} is a placeholder: its package is not installed.")


class _StubModule(types.ModuleType):
    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (_Placeholder,), {})


class _PlaceholderFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds every module under the given top-level names (appended last: real packages win)."""

    def __init__(self, roots: set[str]) -> None:
        self.roots = roots

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.roots:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _StubModule(spec.name)
        module.__path__ = []
        module.__version__ = "0.0.0"
        return module

    def exec_module(self, module) -> None:
        pass


def install_placeholders(*roots: str) -> list[str]:
    """Make `import ROOT...` succeed for each top-level name that is not really importable.

    Returns the names that got placeholders.
    """
    missing = [r for r in roots if r not in sys.modules and importlib.util.find_spec(r) is None]
    if missing:
        finder = next((f for f in sys.meta_path if isinstance(f, _PlaceholderFinder)), None)
        if finder is None:
            sys.meta_path.append(_PlaceholderFinder(set(missing)))
        else:
            finder.roots.update(missing)
    return missing


def install() -> None:
    """Placeholder torchvision (what the reference packages import but never call), unless it is installed."""
    install_placeholders("torchvision")
