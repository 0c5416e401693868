"""The committed model cards (hub_cards/): up to date, complete, and quoting their sources exactly."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from evit_hf.release import all_targets, compute_stats, get_target, target_from_filename
from evit_hf.release.catalog import DEFAULT_ORG, resolve_org
from evit_hf.release.latency import tables
from evit_hf.release.stats import STATS_FILE, load_stats

REPO_ROOT = Path(__file__).resolve().parents[1]
HUB_CARDS = REPO_ROOT / "hub_cards"
REPORTED = "reported by the original authors (not re-measured)"


def _card(name: str) -> str:
    return (HUB_CARDS / name / "README.md").read_text()


def _front_matter(card: str) -> dict:
    match = re.match(r"^---\n(.*?\n)---\n", card, re.S)
    assert match, "no YAML front matter"
    return yaml.safe_load(match[1])


def test_committed_cards_are_regenerated_identically(tmp_path):
    """`evit-hf release --cards-only --out hub_cards` was run after the last change to templates or data."""
    from evit_hf.release import write_cards

    shutil.copyfile(HUB_CARDS / STATS_FILE, tmp_path / STATS_FILE)  # counting every model again takes ~20 s
    written = write_cards(tmp_path, org=DEFAULT_ORG)
    committed = sorted(p.relative_to(HUB_CARDS) for p in HUB_CARDS.glob("*/README.md"))
    assert sorted(p.relative_to(tmp_path) for p in written) == committed
    stale = [str(path) for path in committed if (tmp_path / path).read_text() != (HUB_CARDS / path).read_text()]
    assert not stale, f"regenerate with `evit-hf release --cards-only --out hub_cards`: {stale}"
    assert (tmp_path / STATS_FILE).read_text() == (HUB_CARDS / STATS_FILE).read_text()


# one per family and a non-default resolution (all of them: `evit-hf release --cards-only --recount`, ~20 s);
# the SR entry is checked by test_release, whose release folder's card is counted live
@pytest.mark.parametrize("variant,resolution", [("cls-b0", None), ("cls-b1", 288), ("seg-b0-cityscapes", None),
                                                ("sam-l0", None)])
def test_stored_stats_are_the_models_counts(variant, resolution):
    target = get_target(variant, resolution)
    assert load_stats(HUB_CARDS / STATS_FILE)[target.name] == compute_stats(target)


def test_published_counts_match_the_original_and_readme():
    stats = load_stats(HUB_CARDS / STATS_FILE)
    # parameter counts of the original models (reference doc) and MACs at 224 (B1 0.52 G, L1 5.26 G)
    assert stats["efficientvit-b1-r224"].params == 9_102_024
    assert stats["efficientvit-l3-r384"].params == 246_037_288
    assert round(stats["efficientvit-b1-r224"].macs / 1e9, 2) == 0.52
    assert round(stats["efficientvit-l1-r224"].macs / 1e9, 2) == 5.26
    assert round(stats["efficientvit-seg-b0-cityscapes"].macs / 1e9, 2) == 4.39
    assert round(stats["efficientvit-sam-xl1"].macs / 1e9) == 322
    assert stats["efficientvit-sam-l0"].encoder_params == 30_728_224
    assert round(stats["efficientvit-sr-light-x2"].macs / 1e9, 1) == 38.4


def test_every_card_is_complete():
    for target in all_targets():
        card = _card(target.name)
        meta = _front_matter(card)
        assert meta["library_name"] == "transformers" and meta["license"] == "apache-2.0", target.name
        assert {"pipeline_tag", "tags"} <= set(meta), target.name
        assert f'"{DEFAULT_ORG}/{target.name}"' in card  # the snippets use the repo id
        for section in ("## Intended uses and limitations", "## How to use", "## Preprocessing", "## Labels",
                        "## Results", "## Size and speed", "## License", "## Citation"):
            assert section in card, (target.name, section)
        assert "@inproceedings{cai2023efficientvit" in card
        assert ("EfficientViT-SAM: Accelerated Segment Anything" in card) == (target.family == "sam")
        assert "CPU latency measured by `evit-hf bench" in card, target.name
        if target.family == "sr":
            continue
        assert "datasets" in meta and target.original_url in card
        if target.name == "efficientvit-b0-r224":  # the authors published no B0 accuracy
            assert "model-index" not in meta and "published no accuracy" in card
            continue
        results = meta["model-index"][0]["results"]
        assert all(REPORTED in m["name"] and m["verified"] is False for r in results for m in r["metrics"])
        assert f"Numbers {REPORTED}" in card


def test_reported_numbers_and_labels():
    def metric_values(name: str) -> list[float]:
        results = _front_matter(_card(name))["model-index"][0]["results"]
        return [m["value"] for r in results for m in r["metrics"]]

    assert metric_values("efficientvit-l3-r384") == [86.408, 97.632]
    assert metric_values("efficientvit-b2-r256") == [82.698, 96.096]
    assert metric_values("efficientvit-seg-l2-ade20k") == [50.702]
    assert metric_values("efficientvit-seg-b0-cityscapes") == [75.653]
    assert metric_values("efficientvit-sam-xl1") == [47.8, 44.4]
    assert metric_values("efficientvit-sr-light-x2") == [34.42, 0.9426]  # measured here, labelled so
    assert "not by the original authors" in _card("efficientvit-sr-light-x2")
    assert "The 1000 ImageNet-1k classes" in _card("efficientvit-b1-r288")
    assert "The 19 Cityscapes classes" in _card("efficientvit-seg-l1-cityscapes")
    assert "The 150 ADE20K classes" in _card("efficientvit-seg-b1-ade20k")
    assert "shorter side to 304 (= ceil(288 / 0.95)" in _card("efficientvit-b1-r288")
    assert "shorter side to 384 (= ceil(384 / 1)" in _card("efficientvit-l2-r384")


def _card_latency_rows(name: str) -> list[str]:
    """The latency table rows of a committed card ("| input | median ms | min ms | runs | compared with |")."""
    section = _card(name).split("CPU latency measured by", 1)[1].split("\n\n")[1]
    return section.splitlines()[2:]


def test_card_latency_is_the_results_files():
    """Cards quote docs/results/*.json (the files the README and docs tables are rendered from), row for row."""
    from evit_hf.release.results import load

    zoo = load("zoo").one(preset="b1")
    assert _card_latency_rows("efficientvit-b1-r288") == [
        f"| 224x224 | {zoo['median_ms']:.1f} | {zoo['min_ms']:.1f} | {zoo['runs']} | - |"]
    seg = load("bench-seg").select(model="seg-l2-ade20k")
    assert _card_latency_rows("efficientvit-seg-l2-ade20k") == [
        f"| {r['size']} | {r['median_ms']:.1f} | {r['min_ms']:.1f} | {r['runs']} | SegFormer-B0 / ours = "
        f"{r['vs_segformer-b0']:g} (same run) |" for r in seg]
    sam = load("bench-sam").one(kind="encoder", model="EfficientViT-SAM-XL1")
    assert _card_latency_rows("efficientvit-sam-xl1") == [
        f"| 1024x1024 | {sam['median_ms']:.1f} | {sam['min_ms']:.1f} | {sam['runs']} | SAM ViT-B (transformers) / "
        f"ours = {sam['speedup_vs_vitb']:g} (same run) |"]
    prompt = load("bench-sam").one(kind="prompt", model="EfficientViT-SAM-L0", prompt="1 box")
    assert f"1 box {prompt['median_ms']:.1f} ms median" in _card("efficientvit-sam-l0")
    sr = load("bench-sr").select(model="sr-light-x2")
    assert [row.split(" | ")[1] for row in _card_latency_rows("efficientvit-sr-light-x2")] == [
        f"{r['median_ms']:.1f}" for r in sr]
    for family, table in tables().items():  # every family's rows come from its file, with its date and setting
        assert table.rows and table.results.setting in table.setting, family
        assert f"`docs/results/{table.results.name}.json`" in _card(
            {"cls": "efficientvit-l1-r224", "seg": "efficientvit-seg-b0-cityscapes", "sam": "efficientvit-sam-l1",
             "sr": "efficientvit-sr-light-x2"}[family])


def test_naming_scheme_and_batch_rule(monkeypatch):
    monkeypatch.delenv("EVIT_HF_ORG", raising=False)
    assert get_target("cls-b1").repo_id() == "evit-hf/efficientvit-b1-r224"
    assert get_target("cls-l3", 384).repo_id("me") == "me/efficientvit-l3-r384"
    assert get_target("seg-l2-cityscapes").repo_id("org") == "org/efficientvit-seg-l2-cityscapes"
    assert get_target("sam-xl1").repo_id("org") == "org/efficientvit-sam-xl1"
    assert get_target("sr-light-x2").repo_id("org") == "org/efficientvit-sr-light-x2"
    monkeypatch.setenv("EVIT_HF_ORG", "from-env")
    assert resolve_org() == "from-env" and resolve_org("flag") == "flag"
    assert target_from_filename("efficientvit_b2_r256.pt") == get_target("cls-b2", 256)
    assert target_from_filename("dir/EfficientViT_SEG_L1_ADE20K.pth") == get_target("seg-l1-ade20k")
    assert target_from_filename("efficientvit_sam_xl0.safetensors") == get_target("sam-xl0")
    assert target_from_filename("efficientvit-l2-r320.pt") == get_target("cls-l2", 320)
    with pytest.raises(ValueError, match="no original cls-b0 checkpoint at resolution 256"):
        target_from_filename("efficientvit_b0_r256.pt")
    with pytest.raises(ValueError, match="Cannot tell which variant"):
        target_from_filename("efficientvit_b1.pt")
    assert len({t.name for t in all_targets()}) == len(all_targets()) == 38
