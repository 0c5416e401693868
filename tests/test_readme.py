"""Every snippet of README.md runs as written, offline.

Each fenced block of the README is marked on the line before it: `<!-- test: run -->` (Python blocks run in a
fresh interpreter, bash blocks in bash) or `<!-- test: dry-run -->` (`make` lines, shown with `make -n`: a real
`make demo` / `make test` builds a venv). An unmarked block fails the test. The blocks run in README order in
one working folder holding a photograph (`photo.jpg`), links to `training/` and `configs/`, and an offline Hub
cache (`HF_HUB_OFFLINE=1`) laid out as the original authors' repos, holding the file of every released model the
README loads by name, made from the original-implementation fixtures (`tests/fixtures/original`); the
super-resolution checkpoint ships in the package. Ids of repos that only `evit-hf release --push` creates
(`evit-hf/efficientvit-*`) may appear in the prose, never in a snippet.

`evit-hf`, `accelerate` and `python` are the executables of this interpreter's environment (its `bin` folder
first on PATH, as in an activated venv): the real console scripts, as a user runs them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from conftest import authors_state_dict, make_authors_file, offline_env, script_env
from evit_hf.hub import find_released

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
MARKED = re.compile(r"<!-- test: (?P<mode>[\w-]+) -->\n```(?P<lang>\w+)\n(?P<code>.*?)^```", re.S | re.M)
FENCE = re.compile(r"^```(\w*)\n.*?^```", re.S | re.M)
# Released models a snippet loads by name: `evit_hf.pretrained("...")`, `from_pretrained("...")`, `--model ...`.
RELEASED_NAME = re.compile(r"""(?:pretrained\("|--model )(?P<name>[\w.-]+)""")
RELEASE_ONLY_ID = re.compile(r"evit-hf/efficientvit-[a-z0-9-]+")  # repos only `evit-hf release --push` creates


@dataclass(frozen=True)
class Snippet:
    heading: str  # the README heading the block sits under
    mode: str
    lang: str
    code: str


def readme_snippets() -> list[Snippet]:
    text = README.read_text()
    snippets = []
    for match in MARKED.finditer(text):
        heading = re.findall(r"^#+ (.+)$", text[:match.start()], re.M)[-1]
        snippets.append(Snippet(heading, match["mode"], match["lang"], match["code"]))
    return snippets


SNIPPETS = readme_snippets()


def test_every_block_is_marked_and_runnable():
    text = README.read_text()
    assert len(FENCE.findall(text)) == len(SNIPPETS), "mark every README code block with <!-- test: MODE -->"
    assert len(SNIPPETS) >= 8
    for snippet in SNIPPETS:
        assert (snippet.mode, snippet.lang) in {("run", "python"), ("run", "bash"), ("dry-run", "bash")}, snippet
        if snippet.mode == "dry-run":  # only the set-up commands, which would build a venv
            assert all(line.split()[0] == "make" for line in _commands(snippet.code)), snippet.code
    assert {snippet.heading for snippet in SNIPPETS} >= {
        "Image classification", "Semantic segmentation", "Segment anything (EfficientViT-SAM)", "Super-resolution",
        "Training", "Export", "Command line"}
    names = released_names()
    assert {"efficientvit-b1-r224", "efficientvit-sam-l0", "efficientvit-sr-light-x2"} <= names
    for snippet in SNIPPETS:
        assert not RELEASE_ONLY_ID.search(snippet.code), f"a snippet uses a repo that may not exist: {snippet.code}"


def released_names() -> set[str]:
    """The released models the README's snippets load by name (each one must be a released model)."""
    names = {match["name"] for snippet in SNIPPETS for match in RELEASED_NAME.finditer(snippet.code)}
    unknown = {name for name in names if find_released(name) is None}
    assert not unknown, f"README snippets load {unknown}, which are not released models"
    return names


def _commands(code: str) -> list[str]:
    """The commands of a bash block: continuation lines joined, comments and blank lines dropped."""
    joined = code.replace("\\\n", " ")
    return [line.split(" #", 1)[0].strip() for line in joined.splitlines() if line.strip() and
            not line.lstrip().startswith("#")]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory, original_fixture):
    """(working folder, environment): the offline Hub cache, photo.jpg, links to training/ and configs/, and
    this environment's executables first on PATH."""
    from skimage import data

    root = tmp_path_factory.mktemp("readme")
    hf_home = root / "hf_home"
    hf_home.mkdir()
    for name in released_names():
        released = find_released(name)
        if released.source is not None:  # the authors' file, in their repo (super-resolution ships in the package)
            make_authors_file(hf_home, name, authors_state_dict(released.target.variant, released.source.layout))
    work = root / "work"
    work.mkdir()
    Image.fromarray(data.astronaut()).resize((128, 128)).save(work / "photo.jpg")
    for folder in ("training", "configs"):
        (work / folder).symlink_to(REPO_ROOT / folder)
    bin_dir = Path(sys.executable).parent
    missing = [name for name in ("python", "evit-hf", "accelerate") if not (bin_dir / name).is_file()]
    assert not missing, f"{missing} not in {bin_dir}: install evit-hf into this environment (make test)"
    env = {**script_env(), **offline_env(hf_home), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "EVIT_HF_HOME": str(root / "evit_hf_home")}
    return work, env


def _run(command: list[str], cwd: Path, env: dict) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{command[:3]}...\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result.stdout


def _outputs(work: Path, heading: str, out: str) -> None:
    """What each snippet must have produced, beyond exiting cleanly."""
    if heading == "Image classification":
        assert out.count("'score'") == 5 and "'label'" in out
    elif heading == "Semantic segmentation":
        assert "(128, 128)" in out  # masks at the image size
    elif heading.startswith("Segment anything"):
        assert "torch.Size([1, 3, 128, 128])" in out  # 3 masks at the image size
    elif heading == "Super-resolution":
        assert Image.open(work / "photo_x2.png").size == (256, 256)
    elif heading == "Training":
        trained = work / "outputs" / "shapes"
        assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= {p.name for p in trained.iterdir()}
        assert "--num_epochs" in out  # the --help line
    elif heading == "Export":
        assert (work / "onnx-b1" / "model.onnx").is_file()
    elif heading == "Command line":
        assert {"overlay.png", "sam.png", "upscaled.png"} <= {p.name for p in work.iterdir()}
        assert "release" in out  # evit-hf --help
    elif heading == "Set-up: two commands":
        assert "evit-hf demo" in out and "pytest" in out
    else:
        raise AssertionError(f"no expected output for the README snippet under {heading!r}: add it here")


def test_readme_snippets_run(sandbox):
    """All blocks in README order (a later block may use what an earlier one wrote, as a reader's would)."""
    work, env = sandbox
    for snippet in SNIPPETS:
        if snippet.mode == "dry-run":
            out = "".join(_run(["make", "-n", *command.split()[1:]], REPO_ROOT, env)
                          for command in _commands(snippet.code))
        elif snippet.lang == "python":
            out = _run([sys.executable, "-c", snippet.code], work, env)
        else:
            out = _run(["bash", "-euo", "pipefail", "-c", snippet.code], work, env)
        _outputs(work, snippet.heading, out)
