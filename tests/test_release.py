"""`evit-hf release`: release folders for every family, loaded as users load them from an offline Hub cache.

One module fixture releases the smallest fixture checkpoint of each family (cls-b1, which has reported
results, seg-b0-cityscapes, sam-l0; batch mode over original file names) and the shipped SR checkpoint, then
moves the folders into a Hub cache. Each card's two snippets run there: the evit-hf one in one interpreter,
the `trust_remote_code` one in another where evit-hf cannot be imported.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from conftest import FIXTURE_DIR, hub_snapshot_dir, offline_env, run_python
from evit_hf.cli import main

ORG = "evit-hf"  # the default organisation, so the cards equal the committed ones in hub_cards/
HUB_CARDS = Path(__file__).resolve().parents[1] / "hub_cards"
FIXTURE_FILES = {  # fixture case -> the original authors' file name (batch mode reads the variant from it)
    "cls-b1": "efficientvit_b1_r224.pt",
    "seg-b0-cityscapes": "efficientvit_seg_b0_cityscapes.pt",
    "sam-l0": "efficientvit_sam_l0.pt",
}
REPOS = {"cls": "efficientvit-b1-r224", "seg": "efficientvit-seg-b0-cityscapes", "sam": "efficientvit-sam-l0",
         "sr": "efficientvit-sr-light-x2"}


@pytest.fixture(scope="module")
def released(tmp_path_factory, original_fixture):
    """(hf_home, {family: snapshot folder}, {case: fixture}): the four release folders in an offline Hub cache."""
    root = tmp_path_factory.mktemp("release")
    checkpoints, staging = root / "checkpoints", root / "staging"
    checkpoints.mkdir()
    fixtures = {}
    for case, name in FIXTURE_FILES.items():
        fixtures[case] = original_fixture(case)
        torch.save({"state_dict": fixtures[case].state_dict}, checkpoints / name)
    assert main(["release", "--checkpoints-dir", str(checkpoints), "--out", str(staging), "--org", ORG]) == 0
    assert main(["release", "--variant", "sr-light-x2", "--out", str(staging / REPOS["sr"]), "--org", ORG]) == 0
    hf_home = root / "hf_home"
    folders = {}
    for family, name in REPOS.items():
        folders[family] = hub_snapshot_dir(hf_home, f"{ORG}/{name}")
        shutil.move(staging / name, folders[family])
    return hf_home, folders, fixtures, checkpoints


def _front_matter(card: str) -> dict:
    match = re.match(r"^---\n(.*?\n)---\n", card, re.S)
    assert match, "the card has no YAML front matter"
    return yaml.safe_load(match[1])


def snippets(card: str) -> tuple[str, str]:
    """The two ```python blocks of "How to use": with evit-hf, and with trust_remote_code."""
    section = card.split("## How to use", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2, blocks
    return blocks[0], blocks[1]


def test_release_folders_are_complete_and_match_the_committed_cards(released):
    _, folders, _, _ = released
    for family, folder in folders.items():
        files = {p.name for p in folder.iterdir()}
        assert {"model.safetensors", "config.json", "preprocessor_config.json", "README.md"} <= files, family
        assert any(name.startswith("modeling_efficientvit") for name in files), family
        assert not any(name.endswith((".pt", ".pth", ".bin")) for name in files), family
        assert "auto_map" in json.loads((folder / "preprocessor_config.json").read_text()), family
        # the card written with the folder (stats counted live) is the committed one (stats stored)
        assert (folder / "README.md").read_text() == (HUB_CARDS / REPOS[family] / "README.md").read_text(), family
    assert json.loads((folders["cls"] / "config.json").read_text())["image_size"] == 224
    assert json.loads((folders["cls"] / "preprocessor_config.json").read_text())["size"] == {"shortest_edge": 236}
    assert {"eval_results.json", "training_args.yaml"} <= {p.name for p in folders["sr"].iterdir()}


def test_card_front_matter(released):
    _, folders, _, _ = released
    tags = {"cls": "image-classification", "seg": "image-segmentation", "sam": "mask-generation",
            "sr": "image-to-image"}
    for family, folder in folders.items():
        meta = _front_matter((folder / "README.md").read_text())
        assert meta["library_name"] == "transformers" and meta["license"] == "apache-2.0"
        assert meta["pipeline_tag"] == tags[family] and "efficientvit" in meta["tags"]
        results = meta["model-index"][0]["results"]
        assert meta["model-index"][0]["name"] == REPOS[family]
        for result in results:
            assert result["task"]["type"] == tags[family]
            assert result["dataset"]["name"] and result["dataset"]["type"]
            for metric in result["metrics"]:
                assert metric["verified"] is False and isinstance(metric["value"], float)
                if family != "sr":
                    assert "reported by the original authors (not re-measured)" in metric["name"]
    cls_metrics = _front_matter((folders["cls"] / "README.md").read_text())["model-index"][0]["results"][0]
    assert cls_metrics["dataset"]["type"] == "imagenet-1k" and cls_metrics["metrics"][0]["value"] == 79.39


def _photo(folder: Path) -> None:
    from skimage import data

    Image.fromarray(data.astronaut()).resize((96, 96)).save(folder / "photo.jpg")


def _run_snippets(hf_home: Path, folders: dict, workdir: Path, installed: bool, extra: str = "") -> str:
    """Run each family's card snippet (evit-hf one or remote-code one) in one fresh interpreter."""
    index = 0 if installed else 1
    codes = {family: snippets((folder / "README.md").read_text())[index] for family, folder in folders.items()}
    prelude = "import sys; sys.meta_path.pop(0)\n" if installed else ""  # pop: a user with evit-hf installed
    return run_python(prelude + f"""
import os
os.chdir({str(workdir)!r})
namespaces = {{}}
for family, code in {codes!r}.items():
    namespaces[family] = ns = {{}}
    exec(compile(code, "card-" + family, "exec"), ns)
    print("RAN", family)
print("EVIT_HF_IMPORTED", "evit_hf" in sys.modules)
""" + extra, env=offline_env(hf_home))


def test_card_snippets_run_with_evit_hf(released, tmp_path):
    hf_home, folders, fixtures, _ = released
    _photo(tmp_path)
    expected = {case: tmp_path / f"{case}.pt" for case in fixtures}
    for case, path in expected.items():
        torch.save({"image": fixtures[case].image, **fixtures[case].outputs}, path)
    # after the snippets: the models they loaded reproduce the original implementation's outputs
    check = f"""
import torch
cls, seg, sam = (torch.load(p) for p in {[str(expected[c]) for c in FIXTURE_FILES]!r})
with torch.inference_mode():
    model = namespaces["cls"]["model"]
    assert (model(cls["image"]).logits - cls["logits"]).abs().max() < 1e-4
    model = namespaces["seg"]["model"]
    assert (model(seg["image"]).logits - seg["logits"]).abs().max() < 1e-4
    model = namespaces["sam"]["model"]
    embeddings = model.get_image_embeddings(sam["image"])
    assert (embeddings[:, ::4, ::4, ::4] - sam["embeddings"]).abs().max() < 1e-4
print("MATCHES ORIGINAL")
print("MODULES", sorted({{type(ns.get("model", ns.get("upscaler"))).__module__.split(".")[0]
                          for ns in namespaces.values()}}))
"""
    out = _run_snippets(hf_home, folders, tmp_path, installed=True, extra=check)
    assert all(f"RAN {family}" in out for family in folders)
    assert "MATCHES ORIGINAL" in out and "MODULES ['evit_hf']" in out
    assert Image.open(tmp_path / "photo_x2.png").size == (192, 192)


def test_classifier_release_at_another_resolution(released, tmp_path):
    _, _, _, checkpoints = released
    out = tmp_path / "r288"
    assert main(["release", "--variant", "cls-b1", "--resolution", "288", "--org", "me", "--out", str(out),
                 "--checkpoint", str(checkpoints / FIXTURE_FILES["cls-b1"])]) == 0
    assert json.loads((out / "config.json").read_text())["image_size"] == 288
    processor = json.loads((out / "preprocessor_config.json").read_text())
    assert processor["size"] == {"shortest_edge": 304} and processor["crop_size"] == {"height": 288, "width": 288}
    card = (out / "README.md").read_text()
    assert card == (HUB_CARDS / "efficientvit-b1-r288" / "README.md").read_text().replace("evit-hf/", "me/")
    assert _front_matter(card)["model-index"][0]["results"][0]["metrics"][0]["value"] == 80.41


class FakeHfApi:
    """Records what `push_folder` asks of the Hub."""

    calls: list = []

    def __init__(self, token=None):
        FakeHfApi.calls.append(("init", token))

    def create_repo(self, repo_id, **kwargs):
        FakeHfApi.calls.append(("create_repo", repo_id, kwargs))

    def upload_folder(self, **kwargs):
        FakeHfApi.calls.append(("upload_folder", kwargs))
        return type("Commit", (), {"commit_url": f"https://huggingface.co/{kwargs['repo_id']}/commit/abc"})()


def test_push_uses_hf_api(tmp_path, monkeypatch, capsys):
    import evit_hf.release.push as push

    monkeypatch.setattr(push, "HfApi", FakeHfApi)
    FakeHfApi.calls = []
    monkeypatch.setenv("EVIT_HF_ORG", "someone")
    out = tmp_path / "sr"
    assert main(["release", "--variant", "sr-light-x2", "--out", str(out), "--push", "--private",
                 "--token", "hf_test"]) == 0
    assert FakeHfApi.calls[0] == ("init", "hf_test")
    assert FakeHfApi.calls[1] == ("create_repo", "someone/efficientvit-sr-light-x2",
                                  {"repo_type": "model", "private": True, "exist_ok": True})
    upload = FakeHfApi.calls[2][1]
    assert upload["repo_id"] == "someone/efficientvit-sr-light-x2" and Path(upload["folder_path"]) == out
    assert '"someone/efficientvit-sr-light-x2"' in (out / "README.md").read_text()
    assert "commit/abc" in capsys.readouterr().out


def _fails(capsys, argv: list[str], message: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("evit-hf release: error:") and message in err, err
    assert "Traceback" not in err


def test_bad_input_is_a_clear_error(released, tmp_path, capsys):
    _, _, _, checkpoints = released
    b1 = str(checkpoints / FIXTURE_FILES["cls-b1"])
    out = str(tmp_path / "out")
    _fails(capsys, ["release", "--variant", "cls-b7", "--checkpoint", b1, "--out", out], "Unknown variant 'cls-b7'")
    _fails(capsys, ["release", "--variant", "cls-b0", "--checkpoint", b1, "--out", out],
           "does not match variant 'cls-b0'")
    _fails(capsys, ["release", "--variant", "cls-b1", "--checkpoint", str(tmp_path / "missing.pt"), "--out", out],
           "does not exist")
    _fails(capsys, ["release", "--variant", "cls-b1", "--resolution", "300", "--checkpoint", b1, "--out", out],
           "no original cls-b1 checkpoint at resolution 300")
    _fails(capsys, ["release", "--variant", "sr-light-x4", "--checkpoint", str(FIXTURE_DIR), "--out", out],
           "is not one")
    _fails(capsys, ["release", "--variant", "sr-light-x4", "--out", out], "No checkpoint of sr-light-x4 ships")
    from evit_hf.sr_utils import embedded_sr_checkpoint

    _fails(capsys, ["release", "--variant", "sr-light-x4", "--checkpoint", str(embedded_sr_checkpoint()),
                    "--out", out], "does not hold a sr-light-x4 model: upscale 2")
    (tmp_path / "batch").mkdir()
    (tmp_path / "batch" / "my_model.pt").write_bytes(b"")
    _fails(capsys, ["release", "--checkpoints-dir", str(tmp_path / "batch"), "--out", out], "Cannot tell which")
    _fails(capsys, ["release", "--checkpoints-dir", str(tmp_path / "nowhere"), "--out", out], "does not exist")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file.txt").write_text("x")
    _fails(capsys, ["release", "--variant", "cls-b1", "--checkpoint", b1, "--out", str(tmp_path / "full")],
           "is not empty")
    _fails(capsys, ["release", "--variant", "cls-b1", "--checkpoint", b1, "--out", out, "--org", "bad org"],
           "Invalid Hub organisation")
    assert not (tmp_path / "out").exists()
