"""Shared test helpers: the original-implementation parity fixtures in ../shared/fixtures/original."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURE_DIR = REPO_ROOT.parent / "shared" / "fixtures" / "original"
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/ helpers (torchvision_placeholder)


def _formula():
    spec = importlib.util.spec_from_file_location("evit_fixture_formula", FIXTURE_DIR / "formula.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class OriginalFixture:
    """One parity case: the original-layout state dict, the input batch and the original's outputs."""

    def __init__(self, case: str) -> None:
        from safetensors.torch import load_file

        self.case = case
        self.index = json.loads((FIXTURE_DIR / "index.json").read_text())[case]
        formula = _formula()
        keys = json.loads((FIXTURE_DIR / "keys" / f"{case}.json").read_text())
        self.state_dict = formula.fill_state_dict(keys)
        self.image = formula.make_image(self.index["input"])
        self.outputs = load_file(str(FIXTURE_DIR / f"{case}.safetensors"))


@pytest.fixture(scope="session")
def original_fixture():
    if not FIXTURE_DIR.is_dir():
        pytest.fail(f"Parity fixtures not found at {FIXTURE_DIR} (expected ../shared/fixtures/original).")
    return OriginalFixture
