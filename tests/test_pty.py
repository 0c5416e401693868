"""Loading never asks: Auto classes and pipelines on our folders and Hub repos, in a terminal.

transformers asks "Do you wish to run the custom code? [y/N]" only when stdin is a terminal (and waits
`TIME_OUT_REMOTE_CODE` = 15 s for an answer); with stdin closed, as in most tests, it raises instead, and a
pipeline that swallows the error (its optional video processor) goes on silently. So each check here runs in a
fresh interpreter on a pseudo-terminal (stdin, stdout and stderr a real tty, as a user's shell) and fails on
any prompt, any "not supported" or custom-code message and any stall. One interpreter runs every call with
`import evit_hf` (no `trust_remote_code`); one runs them where `import evit_hf` fails, with
`trust_remote_code=True`, on every save path: `evit-hf convert` (a folder and the same files as a Hub repo),
`evit-hf release` and a plain `save_pretrained`.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import textwrap
import time

import pytest
from PIL import Image

from conftest import BLOCK_EVIT_HF, hub_snapshot_dir, make_offline_hub_repo, offline_env

pytest.importorskip("transformers.image_processing_backends")  # the processors and pipelines: transformers >= 5

# The remote-code prompt, and its error when it times out: never, on any path.
PROMPT = ("[y/N]", "contains custom code")
# With evit-hf there is no remote code to mention and every model is supported.
WITH_EVIT_HF = (*PROMPT, "trust_remote_code", "custom code", "is not supported for", "malicious code")
# A prompt waits this long (transformers' TIME_OUT_REMOTE_CODE) before the pipeline goes on: any call that
# takes as long stalled. The calls themselves take < 3 s each on a loaded 2-core machine.
STALL_S = 15.0

# (task, source key, pipeline keyword arguments, call keyword arguments); sources are filled in by `sources`.
PIPELINES = [
    ("image-classification", "cls", {}, {"top_k": 3}),
    ("image-feature-extraction", "cls", {}, {}),
    ("image-segmentation", "seg", {}, {}),
    ("mask-generation", "sam", {"points_per_batch": 8},
     {"points_per_crop": 2, "pred_iou_thresh": -1e9, "stability_score_thresh": -1e9}),
    ("image-super-resolution", "sr", {}, {}),
]
# Auto class -> the sources it loads (besides AutoConfig and AutoImageProcessor, which load every source).
AUTO_CLASSES = {
    "AutoModel": ("cls", "seg", "sam", "sr"),
    "AutoModelForImageClassification": ("cls",),
    "AutoModelForSemanticSegmentation": ("seg",),
    "AutoModelForMaskGeneration": ("sam",),
    "AutoModelForImageToImage": ("sr",),
    "AutoProcessor": ("sam",),
}

CHILD = """
import json, sys, time
assert sys.stdin.isatty() and sys.stdout.isatty(), "not on a terminal"
{prelude}
import transformers
from PIL import Image
from transformers import pipeline

spec = json.loads({spec!r})
image = Image.open(spec["image"])
kwargs = spec["load_kwargs"]
for name, source in spec["loads"]:
    start = time.perf_counter()
    loaded = getattr(transformers, name).from_pretrained(source, **kwargs)
    print("STEP", name, source, type(loaded).__name__, f"{{time.perf_counter() - start:.2f}}", flush=True)
for task, source, init, call in spec["pipelines"]:
    start = time.perf_counter()
    runner = pipeline(task, model=source, **init, **kwargs)
    built = time.perf_counter() - start
    result = runner(image, **call)
    assert result is not None and (not isinstance(result, list) or len(result) > 0), (task, result)
    print("STEP", task, source, type(runner).__name__, f"{{built:.2f}}", flush=True)
print("ALL DONE", flush=True)
"""


def run_on_terminal(code: str, env: dict[str, str], timeout: float = 400.0) -> str:
    """Run `python -c code` with stdin, stdout and stderr on a new pseudo-terminal; nothing is ever typed.
    Returns everything it wrote (the terminal's CR-LF line ends as LF)."""
    main, child = pty.openpty()
    process = subprocess.Popen([sys.executable, "-c", code], stdin=child, stdout=child, stderr=child,
                               env={**os.environ, **env}, close_fds=True, start_new_session=True)
    os.close(child)
    output, deadline = bytearray(), time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 1.0)
            if ready:
                try:
                    data = os.read(main, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                output += data
            elif process.poll() is not None:
                break
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        os.close(main)
    text = output.decode(errors="replace").replace("\r\n", "\n")
    assert process.returncode == 0, f"exit {process.returncode}:\n{text[-5000:]}"
    return text


def check_terminal_output(text: str, loads: list, pipelines: list, forbidden: tuple[str, ...]) -> None:
    """Every load and pipeline ran, quickly, and nothing `forbidden` was written."""
    for phrase in forbidden:
        assert phrase not in text, f"{phrase!r} on the terminal:\n{text[-5000:]}"
    steps = [line.split() for line in text.splitlines() if line.startswith("STEP ")]
    assert "ALL DONE" in text and len(steps) == len(loads) + len(pipelines), text[-5000:]
    for step in steps:
        assert float(step[-1]) < STALL_S, f"{step[1]} on {step[2]} took {step[-1]} s (a prompt waiting?)"


@pytest.fixture(scope="module")
def sources(tmp_path_factory, original_fixture) -> dict:
    """Offline Hub repos written by `evit-hf convert` (cls, seg, SAM, from the original-layout fixtures) and
    `evit-hf release` (SR, the shipped x2 checkpoint); each also as a plain folder path; and a folder written by
    a bare `save_pretrained`. Returns {"env", "image", "<key>": [repo id, folder], "plain": folder}."""
    from evit_hf import EfficientViTConfig, EfficientViTForImageClassification
    from evit_hf.cli import main

    root = tmp_path_factory.mktemp("pty")
    hf_home = root / "hf_home"
    hf_home.mkdir()
    found: dict = {"env": offline_env(hf_home), "image": str(root / "photo.png")}
    for key, case in (("cls", "cls-b1"), ("seg", "seg-b1-cityscapes"), ("sam", "sam-l0")):
        repo_id = f"pty/efficientvit-{case}"
        folder = make_offline_hub_repo(hf_home, repo_id, case, original_fixture(case).state_dict)
        found[key] = [repo_id, str(folder)]
    release = root / "release"
    assert main(["release", "--variant", "sr-light-x2", "--out", str(release), "--org", "pty"]) == 0
    snapshot = hub_snapshot_dir(hf_home, "pty/efficientvit-sr-light-x2")
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    snapshot.symlink_to(release, target_is_directory=True)
    found["sr"] = ["pty/efficientvit-sr-light-x2", str(release)]
    config = EfficientViTConfig(widths=[8, 8, 16, 16, 32], depths=[1, 1, 1, 1, 1], attention_head_dim=8,
                                head_widths=[32, 48], num_labels=3)
    EfficientViTForImageClassification(config).save_pretrained(root / "plain")
    found["plain"] = str(root / "plain")
    from skimage import data

    Image.fromarray(data.astronaut()).resize((96, 80)).save(found["image"])
    return found


def child_spec(sources: dict, load_kwargs: dict, extra_loads: tuple = ()) -> tuple[list, list, str]:
    """(loads, pipelines, JSON spec) for `CHILD`: every Auto class and pipeline on the repo id and the folder."""
    loads = [(name, source) for key in ("cls", "seg", "sam", "sr") for source in sources[key]
             for name in ("AutoConfig", "AutoImageProcessor")]
    loads += [(name, source) for name, keys in AUTO_CLASSES.items() for key in keys for source in sources[key]]
    loads += list(extra_loads)
    pipelines = [(task, source, init, call) for task, key, init, call in PIPELINES for source in sources[key]]
    spec = {"image": sources["image"], "loads": loads, "pipelines": pipelines, "load_kwargs": load_kwargs}
    return loads, pipelines, json.dumps(spec)


def test_with_evit_hf_nothing_asks_or_warns(sources):
    loads, pipelines, spec = child_spec(sources, {})
    text = run_on_terminal(textwrap.dedent(CHILD).format(prelude="import evit_hf", spec=spec), sources["env"])
    check_terminal_output(text, loads, pipelines, WITH_EVIT_HF)
    assert "EfficientViTSegImageProcessor" in text and "EfficientViTSamProcessor" in text  # the registered classes


NO_EVIT_HF = BLOCK_EVIT_HF + """
try:
    import evit_hf
except ImportError:
    pass
else:
    raise SystemExit("evit_hf must not be importable here")
"""


def test_without_evit_hf_trust_remote_code_loads_every_save_path(sources):
    plain = [(name, sources["plain"]) for name in ("AutoConfig", "AutoModel", "AutoModelForImageClassification")]
    loads, pipelines, spec = child_spec(sources, {"trust_remote_code": True}, plain)
    text = run_on_terminal(textwrap.dedent(CHILD).format(prelude=NO_EVIT_HF, spec=spec), sources["env"])
    # Remote code is announced as transformers announces any ("A new version of the following files ..."), and
    # the image-segmentation pipeline logs "not supported" for every model registered at run time (it checks a
    # copy of transformers' name tables, where evit-hf names its model and remote code cannot): no prompt.
    check_terminal_output(text, loads, pipelines, PROMPT)
    assert "EfficientViTForImageClassification" in text
