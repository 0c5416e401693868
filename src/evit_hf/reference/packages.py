"""Where the reference packages live: a folder outside the environment, put on `sys.path` by what needs it.

The packages evit-hf is compared against (`efficientsam`, `timm`, `segment-anything`) import torchvision,
which cannot be installed beside the CPU torch wheel. Installed into the environment without it they break
other tools: accelerate's CLI imports timm whenever timm is importable, so no `accelerate launch` would start.
`make test` therefore installs them with `pip install --no-deps --target .references`, and
`$EVIT_HF_REFERENCES` names that folder (tests/conftest.py sets it). The code that compares against them (the
parity tests, `evit_hf.reference.original` and so `evit-hf bench`) calls `use_reference_packages()` first.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .placeholders import install_placeholders

REFERENCES_ENV = "EVIT_HF_REFERENCES"


def use_reference_packages() -> Path | None:
    """Make the reference packages importable: the folder named by `$EVIT_HF_REFERENCES` goes last on
    `sys.path` (packages of the environment itself win), and torchvision gets placeholders unless it is
    installed. Returns the folder, or None where the variable is unset or names no folder."""
    folder = os.environ.get(REFERENCES_ENV)
    path = Path(folder).resolve() if folder else None
    if path is not None and path.is_dir() and str(path) not in sys.path:
        sys.path.append(str(path))
    install_placeholders("torchvision")
    return path if path is not None and path.is_dir() else None


__all__ = ["REFERENCES_ENV", "use_reference_packages"]
