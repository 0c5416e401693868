"""Shared test helpers: the original-implementation parity fixtures in tests/fixtures/original, the folder of
the reference packages (`.references`, installed by `make test`), tiny models, offline Hub caches."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURE_DIR = Path(__file__).resolve().parent / "fixtures" / "original"
# Where `make test` installs the reference implementations (never into the venv: evit_hf.reference.packages);
# the parity tests put it on sys.path with `use_reference_packages()`.
os.environ.setdefault("EVIT_HF_REFERENCES", str(REPO_ROOT / ".references"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/ helpers (shared tiny configs)


# Marks that transformers' common tests use (tests/test_transformers_common.py runs them); transformers' own
# conftest registers them, so unregistered they would warn at collection.
TRANSFORMERS_TEST_MARKS = ("accelerate_tests", "flash_attn_test", "flash_attn_3_test", "flash_attn_4_test",
                           "torch_compile_test")


def pytest_configure(config):
    for mark in TRANSFORMERS_TEST_MARKS:
        config.addinivalue_line("markers", f"{mark}: a mark of transformers' common tests")


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
        pytest.fail(f"Parity fixtures not found at {FIXTURE_DIR}: they are part of the repository (tests/fixtures).")
    return OriginalFixture


def randomize_weights(model, seed: int = 0):
    """Weights with unit-scale activations (fan-in scaled) and random BatchNorm statistics.

    The training init (trunc_normal 0.02) makes eval-mode activations vanish in deep random networks,
    which would make output comparisons meaningless.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) * 0.5 + 0.75)
            elif name.endswith("running_mean") or name.endswith("bias"):
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.05)
            elif tensor.ndim <= 1:
                tensor.copy_(torch.rand(tensor.shape, generator=gen) * 0.4 + 0.8)
            else:
                fan_in = tensor[0].numel()
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * (1.0 / fan_in) ** 0.5)
    return model


# Makes `import evit_hf` fail in a subprocess, as on a machine where the package is not installed.
BLOCK_EVIT_HF = textwrap.dedent("""
    import sys
    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name == "evit_hf" or name.startswith("evit_hf."):
                raise ImportError("evit_hf is blocked for this test")
    sys.meta_path.insert(0, _Block())
""")


def run_python(code: str, env: dict | None = None) -> str:
    """Run `code` in a fresh interpreter where `import evit_hf` fails (unless the code pops the blocker)."""
    result = subprocess.run([sys.executable, "-c", BLOCK_EVIT_HF + textwrap.dedent(code)], capture_output=True,
                            text=True, env={**os.environ, **(env or {})}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def hub_snapshot_dir(hf_home: Path, repo_id: str) -> Path:
    """Where a download of `repo_id` would put its files in the Hub cache under `hf_home/hub` (main points at
    it); the caller fills the returned snapshot folder."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)  # a repo may get several files
    (repo / "refs" / "main").write_text(revision)
    return repo / "snapshots" / revision


def make_offline_hub_repo(hf_home: Path, repo_id: str, variant: str, state_dict: dict) -> Path:
    """Write `repo_id` into the Hub cache under `hf_home/hub` the way a download would, converting an original
    checkpoint of `variant` with `evit-hf convert`; returns the snapshot folder."""
    import torch

    from evit_hf.convert.folder import convert_to_folder

    checkpoint = hf_home / f"{variant}.pt"
    torch.save({"state_dict": state_dict}, checkpoint)
    return convert_to_folder(variant, checkpoint, hub_snapshot_dir(hf_home, repo_id))


def authors_state_dict(case: str, layout: str = "original") -> dict:
    """The original-layout state dict of fixture `case`, or (`layout="timm"`, classifiers) the same weights under
    timm's `efficientvit_mit` names, as timm's Hub mirror holds them. Both layouts are mapped to ours by the
    converter's rules; a timm key takes the weight of the original key that lands on the same name."""
    state_dict = OriginalFixture(case).state_dict
    if layout == "original":
        return state_dict
    from evit_hf.convert.original import _original_classifier_key, _timm_classifier_key
    from evit_hf.reference import placeholders
    from evit_hf.reference.packages import use_reference_packages

    placeholders.install()
    use_reference_packages()  # timm lives in .references/, not in the environment
    import timm

    ours = {_original_classifier_key(key, state_dict): key for key in state_dict}
    timm_keys = timm.create_model(f"efficientvit_{case.removeprefix('cls-')}").state_dict()
    return {key: state_dict[ours[_timm_classifier_key(key, timm_keys)]] for key in timm_keys}


def make_authors_file(hf_home: Path, released_name: str, state_dict: dict, truncate: bool = False) -> Path:
    """Put the source file of released model `released_name` into the Hub cache under `hf_home/hub` where a
    download from the authors' repo (or timm's mirror) would put it: a `{"state_dict": ...}` torch file, or
    safetensors for timm; with `truncate`, only its first half (a download cut short). Returns the file."""
    import torch
    from safetensors.torch import save_file

    from evit_hf.hub import find_released

    source = find_released(released_name).source
    path = hub_snapshot_dir(hf_home, source.repo_id) / source.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    if source.layout == "timm":
        save_file({k: v.contiguous() for k, v in state_dict.items()}, path)
        (path.parent / "config.json").write_text(json.dumps({"architecture": source.repo_id.split("/")[1].split(".")[0],
                                                             "num_classes": 1000}))
    else:
        torch.save({"state_dict": state_dict}, path)
    if truncate:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    return path


def offline_env(hf_home: Path) -> dict[str, str]:
    return {"HF_HOME": str(hf_home), "HF_HUB_CACHE": str(hf_home / "hub"), "HF_HUB_OFFLINE": "1"}


# ------------------------------------------------------------------------------------ training scripts
REPO = REPO_ROOT


def script_env(**extra: str) -> dict[str, str]:
    """The environment of a training-script subprocess: no inherited Accelerate settings, one thread."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCELERATE_")}
    return {**env, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", **extra}


def train_script(script: str, *args: str, launcher: list[str] | None = None, env: dict | None = None,
                 timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `training/<script>` as a user would (plain python, or under `launcher`); asserts it succeeded."""
    command = [*(launcher or [sys.executable]), str(REPO / "training" / script), *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env or script_env(), timeout=timeout,
                            cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def two_process_launcher() -> list[str]:
    """`accelerate launch` on 2 CPU processes (gloo). `python -m accelerate.commands.launch` is the program of
    `accelerate launch`; tests/test_readme.py and tests/test_setup.py start the console script itself."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(29400 + os.getpid() % 500)]


def training_log(run_dir: Path) -> list[dict]:
    """The records of a run's `log.jsonl`."""
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for the module (tests that run beside others, or time nothing)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def read_terminal(fd: int, timeout: float, exited: Callable[[], bool] = lambda: False,
                  watch: Callable[[str], None] | None = None) -> tuple[str, bool]:
    """Everything a program writes to the pseudo-terminal `fd` (its controller side) until it closes the
    terminal, `exited()` holds while nothing is pending, or `timeout` seconds pass; `watch(output so far)` is
    called after each read (to type into the terminal at the right moment). Returns (output, finished in time)."""
    import select

    output, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the program closed the terminal
                return output.decode(errors="replace"), True
            if not chunk:
                return output.decode(errors="replace"), True
            output += chunk
            if watch is not None:
                watch(output.decode(errors="replace"))
        elif exited():
            return output.decode(errors="replace"), True
    return output.decode(errors="replace"), False
