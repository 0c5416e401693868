"""The set-up keeps its promises: after `make demo` and after `make test`, every command the README shows starts.

Commands run as a user runs them: the real console scripts (`evit-hf`, `accelerate`) and `python` of this
interpreter's environment, the installed `.venv`. The `make demo` environment is a subset of the test one: it
is reproduced by hiding every installed distribution that `pip install -e ".[<make demo's extras>]"` would not
have installed (a `sitecustomize` on PYTHONPATH that makes them unimportable), so that a README command needing
an extra `make demo` leaves out fails here as it would for the user.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT, script_env

BIN = Path(sys.executable).parent
# `evit-hf --help` must answer without torch or transformers (measured 0.08-0.16 s here; torch alone is 2-5 s).
HELP_BOUND_S = 1.5
HEAVY = ("torch", "transformers", "numpy", "PIL")
REFERENCE_PACKAGES = ("timm", "efficientsam", "segment_anything")


def run(command: list[str], env: dict | None = None, cwd: Path = REPO_ROOT, timeout: float = 300):
    result = subprocess.run(command, capture_output=True, text=True, env=env or script_env(), cwd=cwd,
                            timeout=timeout)
    assert result.returncode == 0, f"{shlex.join(command)}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def test_evit_hf_help_is_quick_and_imports_no_torch():
    command = [str(BIN / "evit-hf"), "--help"]
    start = time.perf_counter()
    out = run(command).stdout
    elapsed = time.perf_counter() - start
    assert "make-dataset" in out and "Export a model" in out  # every command with its summary
    assert elapsed < HELP_BOUND_S, f"`evit-hf --help` took {elapsed:.2f} s"
    # PYTHONPROFILEIMPORTTIME: the interpreter reports every module it imports on stderr.
    imported = run(command, env={**script_env(), "PYTHONPROFILEIMPORTTIME": "1"}).stderr
    modules = {line.rsplit("|", 1)[-1].strip() for line in imported.splitlines() if line.startswith("import time:")}
    assert "evit_hf.cli" in modules
    assert not {name for name in modules if name.split(".")[0] in HEAVY}, "`evit-hf --help` imported them"


def test_every_command_has_a_working_help(capsys):
    from evit_hf.cli import COMMANDS, main

    for command in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0, command
        assert f"usage: evit-hf {command}" in capsys.readouterr().out


def test_reference_packages_stay_out_of_the_environment():
    """The parity tests' reference implementations live in .references (`make test`), not in the venv: there,
    timm without torchvision would stop accelerate's CLI (it imports timm whenever timm is importable)."""
    code = f"import importlib.util; print([n for n in {REFERENCE_PACKAGES!r} if importlib.util.find_spec(n)])"
    leaked = run([sys.executable, "-c", code]).stdout.strip()
    assert leaked == "[]", (f"{leaked} importable from {sys.prefix}: the Makefile installs them into "
                            f".references; `make` takes them out of the venv (or run `make clean`)")
    run([str(BIN / "accelerate"), "launch", "--help"])


# ------------------------------------------------------------------------------- the `make demo` environment
def demo_extras() -> list[str]:
    """The extras `make demo` installs (the Makefile's `$(VENV)/.installed` recipe)."""
    recipe = (REPO_ROOT / "Makefile").read_text().split("$(VENV)/.installed:", 1)[1].split("\n\n", 1)[0]
    return re.search(r'-e "\.\[([\w,-]*)\]"', recipe)[1].split(",")


def requirement_closure(extras: list[str]) -> set[str]:
    """Canonical names of what `pip install -e ".[extras]"` installs from this checkout: the requirements of
    pyproject.toml (its own extras followed), then theirs as installed here."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    own = canonicalize_name(project["name"])
    found: set[tuple[str, tuple[str, ...]]] = set()
    pending = [(own, tuple(extras))]
    while pending:
        name, extras = pending.pop()
        key = canonicalize_name(name)
        if (key, extras) in found:
            continue
        found.add((key, extras))
        if key == own:
            requires = project["dependencies"] + [r for e in extras for r in project["optional-dependencies"][e]]
        else:
            try:
                requires = importlib.metadata.distribution(name).requires or []
            except importlib.metadata.PackageNotFoundError:  # an optional dependency that is not installed
                continue
        for line in requires:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in ("", *extras)):
                pending.append((requirement.name, tuple(sorted(requirement.extras))))
    return {key for key, _ in found}


HIDING_SITECUSTOMIZE = """
import importlib.machinery, sys
HIDDEN = {hidden!r}

class Hiding(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname.partition(".")[0] in HIDDEN:
            return None
        return super().find_spec(fullname, path, target)

sys.meta_path[sys.meta_path.index(importlib.machinery.PathFinder)] = Hiding
"""


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory) -> dict[str, str]:
    """The environment of a user after `make demo`: the extra distributions of the test set-up hidden."""
    from packaging.utils import canonicalize_name

    allowed = requirement_closure(demo_extras()) | {"pip", "setuptools", "wheel"}
    hidden = sorted(top for top, dists in importlib.metadata.packages_distributions().items()
                    if not {canonicalize_name(d) for d in dists} & allowed)
    assert "pytest" in hidden and "torch" not in hidden and "accelerate" not in hidden
    folder = tmp_path_factory.mktemp("demo_site")
    (folder / "sitecustomize.py").write_text(HIDING_SITECUSTOMIZE.format(hidden=set(hidden)))
    pythonpath = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    return {**script_env(), "PYTHONPATH": pythonpath, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "HF_HUB_OFFLINE": "1"}


def help_form(command: str) -> list[str]:
    """A README command as its `--help`: the program and its subcommand (or script), then --help."""
    words = shlex.split(command)
    program, rest = words[0], words[1:]
    if program == "evit-hf":
        return [program, *rest[:1], "--help"] if rest and not rest[0].startswith("-") else [program, "--help"]
    if program == "accelerate":
        return [program, *rest[:2], "--help"]  # launch SCRIPT
    if program == "python":
        return [program, rest[0], "--help"]
    raise AssertionError(f"the README runs {program!r}: add how to start it to tests/test_setup.py")


def test_readme_commands_start_after_make_demo(demo_env, tmp_path):
    from test_readme import SNIPPETS, _commands

    probe = "import importlib.util as u; print(u.find_spec('pytest') is None, u.find_spec('torch') is not None)"
    assert run(["python", "-c", probe], env=demo_env).stdout.split() == ["True", "True"]  # the hiding works
    commands = [c for s in SNIPPETS if s.mode == "run" and s.lang == "bash" for c in _commands(s.code)]
    assert any(c.startswith("accelerate launch") for c in commands) and any(" export " in c for c in commands)
    for command in commands:
        run(help_form(command), env=demo_env, cwd=REPO_ROOT)
    # `--help` does not import an exporter: export a tiny model, which needs the `export` extra's packages.
    from evit_hf import EfficientViTConfig, EfficientViTForImageClassification, EfficientViTImageProcessor
    from evit_hf.hub_utils import save_pretrained_with_code

    config = EfficientViTConfig(widths=[8, 8, 16, 16, 32], depths=[1, 1, 1, 1, 1], attention_head_dim=8,
                                head_widths=[32, 48], num_labels=3)
    folder = save_pretrained_with_code(EfficientViTForImageClassification(config).eval(), tmp_path / "tiny",
                                       EfficientViTImageProcessor.for_resolution(64))
    out = run(["evit-hf", "export", "--model", str(folder), "--out", str(tmp_path / "onnx")], env=demo_env).stdout
    assert (tmp_path / "onnx" / "model.onnx").is_file() and "max abs diff" in out


def test_make_demo_installs_what_the_readme_needs():
    """The set-up lines of the README and docs/install.md name the extras `make demo` installs."""
    extras = demo_extras()
    assert {"train", "export"} <= set(extras)
    install = (REPO_ROOT / "docs" / "install.md").read_text()
    for extra in ("train", "export", "app", "tflite", "docs", "bench"):
        assert f'pip install -e ".[{extra}]"' in install, extra


def test_fidelity_fixtures_travel_with_the_repository(tmp_path):
    """A copy of the tests anywhere (no `../shared` beside it) finds the parity fixtures and loads a case."""
    import shutil

    repo = tmp_path / "elsewhere" / "evit-hf"
    shutil.copytree(REPO_ROOT / "tests", repo / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    code = ("import sys; sys.path.insert(0, 'tests'); import conftest; case = conftest.OriginalFixture('cls-b0'); "
            "print(conftest.FIXTURE_DIR, len(case.state_dict), tuple(case.outputs['logits'].shape))")
    out = run([sys.executable, "-c", code], cwd=repo).stdout.split()
    assert not (repo.parent / "shared").exists() and Path(out[0]) == repo / "tests" / "fixtures" / "original"
    assert int(out[1]) > 100 and out[2:] == ["(1,", "1000)"]
