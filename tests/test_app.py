"""`evit-hf app`: the demo's handlers without a browser (SAM clicks on a cached embedding, segment everything,
segmentation overlay, super-resolution side by side, bad input as messages), its configuration and the CLI."""

from __future__ import annotations

import importlib.util
import inspect
import re

import numpy as np
import pytest
import torch
from PIL import Image

from evit_hf.app import AppConfig, DemoState
from evit_hf.app import handlers as h
from evit_hf.app.state import LazyModel, ModelUnavailable, fit_size, model_status, split_names
from evit_hf.models.efficientvit import EfficientViTForSemanticSegmentation
from evit_hf.models.efficientvit.image_processing_efficientvit_sam import EfficientViTSamImageProcessor
from evit_hf.models.efficientvit.modeling_efficientvit_sam import EfficientViTSamModel
from evit_hf.predict import SamPredictor
from evit_hf.predict.drawing import PROMPT_COLOUR, draw_masks, draw_prompts
from evit_hf.resolve import load_model
from test_sam import tiny_sam_config
from test_segmentation import tiny_config

WIDTH, HEIGHT = 120, 90  # not square: catches swapped x / y
OFFLINE = lambda: False  # noqa: E731 - the Hub is never asked


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, str]:
    """Tiny random-weight SAM and two segmentation folders, as `evit-hf convert` would write them."""
    from evit_hf import EfficientViTSegImageProcessor

    root = tmp_path_factory.mktemp("app_models")
    torch.manual_seed(0)
    config = tiny_sam_config()
    EfficientViTSamModel(config).save_pretrained(root / "sam")
    EfficientViTSamImageProcessor.for_config(config).save_pretrained(root / "sam")
    for name, labels in (("seg", {0: "sky", 1: "person", 2: "tree"}), ("seg2", {0: "road", 1: "car"})):
        EfficientViTForSemanticSegmentation(tiny_config(id2label=labels)).save_pretrained(root / name)
        processor = EfficientViTSegImageProcessor.for_dataset("ade20k")
        processor.size = {"shortest_edge": 64}
        processor.save_pretrained(root / name)
    return {name: str(root / name) for name in ("sam", "seg", "seg2")}


@pytest.fixture(scope="module")
def image_path(tmp_path_factory) -> str:
    from skimage.data import astronaut

    path = tmp_path_factory.mktemp("app_images") / "astronaut.png"
    Image.fromarray(astronaut()).resize((WIDTH, HEIGHT), Image.BILINEAR).save(path)
    return str(path)


def make_state(folders, **config) -> DemoState:
    config = {"sam_model": folders["sam"], "seg_models": (folders["seg"], folders["seg2"]), **config}
    return DemoState.create(AppConfig(**config), online=OFFLINE)


@pytest.fixture(scope="module")
def state(folders) -> DemoState:
    return make_state(folders)  # super-resolution: the x2 checkpoint shipped in the package


def _pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


# ------------------------------------------------------------------------------------------------- SAM
def predict_mask(image, model, processor, points=None, labels=None, box=None) -> np.ndarray:
    """The best mask of one prompt from a fresh predictor (its own encoder run)."""
    predictor = SamPredictor(model, processor)
    predictor.set_image(image)
    return predictor.predict(points, labels, box).best()[0].numpy()


def test_cached_embedding_gives_the_masks_of_a_fresh_predictor(folders, image_path):
    model, processor, _ = load_model(folders["sam"], "mask-generation")
    image = Image.open(image_path).convert("RGB")
    embedding = SamPredictor(model, processor).set_image(image)
    assert embedding.original_size == (HEIGHT, WIDTH) and embedding.encode_ms > 0
    cached = SamPredictor(model, processor)
    cached.set_embedding(embedding)
    for prompts in ({"points": [[60.0, 40.0], [10.0, 80.0]], "labels": [1, 0]}, {"box": [20.0, 10.0, 100.0, 80.0]},
                    {"points": [[60.5, 40.25]], "labels": [1], "box": [5.0, 5.0, 115.0, 85.0]}):
        mask = cached.predict(prompts.get("points"), prompts.get("labels"), prompts.get("box")).best()[0].numpy()
        expected = predict_mask(image, model, processor, **prompts)
        assert mask.shape == (HEIGHT, WIDTH) and (mask == expected).all()
    with pytest.raises(ValueError, match="outside"):
        cached.predict([[WIDTH + 5.0, 1.0]], [1])


def test_sam_clicks_reuse_one_embedding(folders, image_path):
    state = make_state(folders)
    model, processor = state.sam.model.get()
    calls = []
    encoder = model.get_image_embeddings
    model.get_image_embeddings = lambda *a, **k: calls.append(1) or encoder(*a, **k)

    upload = h.sam_upload(state, image_path)
    assert not upload.error and "Image embedding" in upload.message and upload.image.size == (WIDTH, HEIGHT)
    positive = h.sam_click(state, image_path, upload.prompts, h.POSITIVE, (60, 40))
    negative = h.sam_click(state, image_path, positive.prompts, h.NEGATIVE, (10, 80))
    assert not positive.error and not negative.error
    assert len(calls) == 1 and state.sam.encoder_runs == 1  # upload + two clicks: the encoder ran once
    assert "Mask decoder" in negative.message and "cached" in negative.message and "ms" in negative.message
    assert negative.prompts.points == [[60.0, 40.0], [10.0, 80.0]] and negative.prompts.labels == [1, 0]
    assert positive.prompts.points == [[60.0, 40.0]]  # replies do not modify the prompts they were given

    # the page shows exactly the model's best mask of the prompts, drawn with them
    image = Image.open(image_path).convert("RGB")
    mask = predict_mask(image, model, processor, [[60.0, 40.0], [10.0, 80.0]], [1, 0])
    expected = draw_prompts(draw_masks(image, [mask], [PROMPT_COLOUR]), [[60.0, 40.0], [10.0, 80.0]], [1, 0])
    assert negative.image.size == (WIDTH, HEIGHT)
    assert (_pixels(negative.image) == _pixels(expected)).all() and (_pixels(negative.image) != _pixels(image)).any()

    # box: two clicks on opposite corners (any order)
    del calls[:]  # the direct predict_mask calls above ran the encoder; the app's clicks must not
    corner = h.sam_click(state, image_path, negative.prompts, h.BOX, (100, 80))
    assert not corner.error and "opposite corner" in corner.message and corner.prompts.box is None
    boxed = h.sam_click(state, image_path, corner.prompts, h.BOX, (20, 10))
    assert boxed.prompts.box == [20.0, 10.0, 100.0, 80.0] and boxed.prompts.corner is None
    assert not calls and state.sam.encoder_runs == 1
    box_mask = predict_mask(image, model, processor, [[60.0, 40.0], [10.0, 80.0]], [1, 0], [20.0, 10.0, 100.0, 80.0])
    assert (_pixels(boxed.image) != _pixels(image))[box_mask].any(axis=-1).mean() > 0.9
    del calls[:]

    # the same pixels uploaded again (another file) hit the cache; another image runs the encoder
    copy = image_path.replace(".png", "_copy.png")
    image.save(copy)
    assert "reused from the cache" in h.sam_upload(state, copy).message and not calls
    flipped = image_path.replace(".png", "_flipped.png")
    image.transpose(Image.FLIP_LEFT_RIGHT).save(flipped)
    assert not h.sam_upload(state, flipped).error and len(calls) == 1 and state.sam.encoder_runs == 2


def test_sam_box_only_undo_and_clear(state, image_path):
    first = h.sam_click(state, image_path, None, h.BOX, (5, 5))
    box = h.sam_click(state, image_path, first.prompts, h.BOX, (110, 85))
    assert not box.error and box.prompts.box == [5.0, 5.0, 110.0, 85.0] and not box.prompts.points
    assert box.image.size == (WIDTH, HEIGHT) and "1 box" in box.message
    point = h.sam_click(state, image_path, box.prompts, h.NEGATIVE, (3, 3))
    undone = h.sam_undo(state, image_path, point.prompts)
    assert undone.prompts.points == [] and undone.prompts.box == [5.0, 5.0, 110.0, 85.0]
    undone = h.sam_undo(state, image_path, undone.prompts)
    assert undone.prompts.empty and "No prompts" in undone.message
    assert (_pixels(undone.image) == _pixels(Image.open(image_path))).all()
    assert "Nothing to undo" in h.sam_undo(state, image_path, undone.prompts).message
    cleared = h.sam_clear(state, image_path, point.prompts)
    assert cleared.prompts.empty and not cleared.error
    pending = h.sam_click(state, image_path, None, h.BOX, (30, 30))
    assert h.sam_undo(state, image_path, pending.prompts).prompts.corner is None


def test_sam_prompts_reset_for_a_new_image(state, image_path, tmp_path):
    point = h.sam_click(state, image_path, None, h.POSITIVE, (60, 40))
    other = tmp_path / "other.png"
    Image.new("RGB", (50, 40), (30, 90, 200)).save(other)
    moved = h.sam_click(state, str(other), point.prompts, h.POSITIVE, (10, 10))
    assert moved.prompts.points == [[10.0, 10.0]] and moved.image.size == (50, 40)


def test_sam_everything_default_grid_is_the_cli_one():
    from evit_hf.cli import build_parser
    from evit_hf.predict import INTERACTIVE_POINTS_PER_SIDE

    default = inspect.signature(h.sam_everything).parameters["points_per_side"].default
    args = build_parser().parse_args(["sam", "x.png", "--everything", "--model", "random:sam-l0"])
    assert default == args.points_per_side == INTERACTIVE_POINTS_PER_SIDE == 16


def test_sam_segment_everything(state, image_path):
    reply = h.sam_everything(state, image_path, 4, -1e9, -1e9)
    assert not reply.error and reply.image.size == (WIDTH, HEIGHT)
    assert "4x4 point grid" in reply.message and "image embedding" in reply.message
    assert re.search(r"in \*\*[\d.,]+ ms\*\* \(mask decoder [\d.,]+ ms for 16 prompts", reply.message)  # the time
    assert (_pixels(reply.image) != _pixels(Image.open(image_path))).any()
    strict = h.sam_everything(state, image_path, 2, 1.1, 1.1)  # nothing can pass
    assert "0 masks" in strict.message and "lower them" in strict.message
    assert h.sam_everything(state, image_path, 0).error


def test_sam_downscales_large_images_and_maps_clicks(folders, image_path):
    state = make_state(folders, max_side=64)
    upload = h.sam_upload(state, image_path)
    assert upload.image.size == (64, 48) and "downscaled to 64x48" in upload.message
    on_input = h.sam_click(state, image_path, upload.prompts, h.POSITIVE, (60, 45))  # page pixels of the upload
    assert on_input.prompts.points == [[32.0, 24.0]] and on_input.image.size == (64, 48)
    on_output = h.sam_click(state, image_path, upload.prompts, h.POSITIVE, (32, 24), on_output=True)
    assert on_output.prompts.points == [[32.0, 24.0]]
    outside = h.sam_click(state, image_path, upload.prompts, h.POSITIVE, (100, 10), on_output=True)
    assert outside.error and "outside the 64x48 image" in outside.message


def test_sam_megapixel_limit_and_exif_rotation(folders, image_path, tmp_path):
    state = make_state(folders, max_megapixels=0.001)  # 1000 pixels
    rotated = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated by 90 degrees: 90x120 in the browser
    Image.open(image_path).save(rotated, quality=95, exif=exif)
    upload = h.sam_upload(state, str(rotated))
    assert upload.image.size == (27, 36) and "is 90x120 (0.0 MP)" in upload.message
    click = h.sam_click(state, str(rotated), upload.prompts, h.POSITIVE, (80, 110))  # inside 90x120, not 120x90
    assert not click.error and click.prompts.points == [[24.0, 33.0]]


# ------------------------------------------------------------------------------- segmentation, SR
def test_segmentation_overlay_and_model_choice(state, folders, image_path):
    reply = h.seg_run(state, image_path, folders["seg"])
    assert not reply.error and reply.image.height >= HEIGHT and reply.image.width > WIDTH  # legend on the right
    assert (_pixels(reply.image.crop((0, 0, WIDTH, HEIGHT))) != _pixels(Image.open(image_path))).any()
    assert "classes present" in reply.message and "ms" in reply.message
    assert any(label in reply.message for label in ("sky", "person", "tree"))
    other = h.seg_run(state, image_path, folders["seg2"])
    assert not other.error and any(label in other.message for label in ("road", "car"))
    assert h.seg_run(state, image_path, None).message.startswith(f"`{folders['seg']}`")  # the first by default
    unknown = h.seg_run(state, image_path, "seg-b0-cityscapes")
    assert unknown.error and "Unknown model" in unknown.message


def test_super_resolution_side_by_side(state, tmp_path):
    path = tmp_path / "small.png"
    rgba = np.zeros((20, 28, 4), dtype=np.uint8)
    rgba[..., :3] = np.random.default_rng(0).integers(0, 255, (20, 28, 3))
    rgba[..., 3] = 255
    rgba[:5, :5, 3] = 0  # transparent corner: composited on white, not black
    Image.fromarray(rgba, "RGBA").save(path)
    reply = h.sr_run(state, str(path))
    assert not reply.error, reply.message
    assert reply.image.size == (56 + 8 + 56, 24 + 40)  # bicubic | gap | model, labels above
    assert "shipped x2 checkpoint" in reply.message and "28x20 -> 56x40" in reply.message
    assert _pixels(reply.image)[24 + 1, 1].min() > 200  # the transparent corner is white


def test_super_resolution_limit(folders, tmp_path):
    state = make_state(folders, sr_model="sr-light-x2", sr_max_megapixels=0.0005)  # 500 pixels
    path = tmp_path / "big.png"
    Image.new("RGB", (50, 40), (200, 100, 50)).save(path)
    reply = h.sr_run(state, str(path))
    assert not reply.error and "downscaled to 25x20" in reply.message and "sr-light-x2" in reply.message


# ------------------------------------------------------------------------------------------ bad input
def test_no_image_gives_a_message(state):
    assert h.sam_upload(state, None).message.startswith("Upload an image")
    for reply in (h.sam_click(state, None, None, h.POSITIVE, (1, 1)), h.sam_everything(state, None),
                  h.seg_run(state, None), h.sr_run(state, None), h.sam_undo(state, None, None)):
        assert reply.error and "No image: upload an image first." in reply.message and reply.image is None
    assert not h.sam_clear(state, None).error


@pytest.mark.parametrize("xy", [(WIDTH, 10), (-1, 10), (10, HEIGHT + 3), (float("nan"), 1), None, "here"])
def test_click_outside_the_image(state, image_path, xy):
    before = h.sam_click(state, image_path, None, h.POSITIVE, (5, 5)).prompts
    reply = h.sam_click(state, image_path, before, h.NEGATIVE, xy)
    assert reply.error and reply.prompts == before
    assert "outside the 120x90 image" in reply.message or "(x, y)" in reply.message


def test_unreadable_and_huge_images(state, image_path, tmp_path, monkeypatch):
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    for reply in (h.sam_upload(state, str(broken)), h.seg_run(state, str(broken)), h.sr_run(state, str(broken))):
        assert reply.error and "could not be read as an image" in reply.message
    wide = tmp_path / "wide.png"
    Image.new("RGB", (5000, 400), (10, 200, 30)).save(wide)
    reply = h.sam_upload(state, str(wide))
    assert not reply.error and reply.image.size == (4096, 327) and "above this demo's limit" in reply.message
    assert fit_size(4000, 4500, 4096, 16.0) == (3640, 4096) and fit_size(5000, 4000, 8192, 16.0) == (4472, 3577)
    thin = tmp_path / "thin.png"
    Image.new("RGB", (5000, 12)).save(thin)
    reply = h.sam_upload(state, str(thin))
    assert reply.error and "5000x12: too thin" in reply.message
    bomb = tmp_path / "bomb.png"
    Image.new("RGB", (60, 50)).save(bomb)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # so that this small file counts as a decompression bomb
    reply = h.seg_run(state, str(bomb))
    assert reply.error and "far too large" in reply.message
    assert h.sam_click(state, image_path, None, "Lasso", (1, 1)).error


def test_missing_models_explain_what_to_pass(folders, image_path, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    config = AppConfig(sam_model="evit-hf/not-cached", seg_models=(str(tmp_path / "empty"),),
                       sr_model="nope/nope")
    state = DemoState.create(config, online=OFFLINE)
    assert [s.available for s in state.statuses] == [False, False, False]
    reply = h.sam_upload(state, image_path)
    assert reply.error and "--sam-model" in reply.message and "sam-l0" in reply.message
    assert "offline" in reply.message and "evit-hf convert" in reply.message
    h.sam_upload(state, image_path)
    assert capsys.readouterr().err.count("evit-hf app:") == 1  # the terminal is told once
    seg = h.seg_run(state, image_path)
    assert seg.error and "no config.json" in seg.message and "--seg-model" in seg.message
    assert h.sr_run(state, image_path).error

    def fails():
        raise OSError("We couldn't connect to 'https://huggingface.co'\nmore detail")

    lazy = LazyModel("sam", "org/x", fails)
    for _ in range(2):  # the failure is remembered: no second download attempt
        with pytest.raises(ModelUnavailable, match=r"could not be loaded \(We couldn't connect.*--sam-model"):
            lazy.get()


def test_model_status(folders, monkeypatch):
    assert model_status("sam", folders["sam"], OFFLINE).available
    preset = model_status("sam", "random:sam-l0", OFFLINE)
    assert preset.available and "RANDOM weights" in preset.note
    released = model_status("sam", "sam-l0", OFFLINE)  # a released model, neither converted nor downloaded here
    assert not released.available and "efficientvit_sam_l0.pt" in released.note and "offline" in released.problem
    assert model_status("sr", None, OFFLINE).available  # the shipped checkpoint
    assert model_status("seg", "evit-hf/x", lambda: True).available  # online: downloaded on first use
    assert not model_status("seg", "evit-hf/x", OFFLINE).available
    assert not model_status("seg", "no-such-thing", OFFLINE).available
    from evit_hf.app.state import hub_reachable

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    assert hub_reachable() is False


# --------------------------------------------------------------------------------- configuration, CLI
def test_config_defaults_and_env(monkeypatch):
    config = AppConfig()  # the released models: the authors' checkpoints, downloaded and converted once
    assert config.sam_model == "efficientvit-sam-l0" and config.sr_model is None
    assert config.seg_models == ("efficientvit-seg-b1-cityscapes", "efficientvit-seg-b1-ade20k")
    env = AppConfig.from_env({"EVIT_HF_SAM_MODEL": "sam-l0", "EVIT_HF_SEG_MODELS": "a, b,a", "EVIT_HF_SR_MODEL": ""})
    assert env.sam_model == "sam-l0" and env.seg_models == ("a", "b") and env.sr_model is None
    assert split_names(["x,y", "z", "y"]) == ("x", "y", "z")
    with pytest.raises(ValueError, match="seg-short-side"):
        AppConfig(seg_short_side=8)


def test_cli_app_arguments(monkeypatch, capsys):
    from evit_hf.cli import build_parser, main

    args = build_parser().parse_args(["app", "--seg-model", "a,b", "--seg-model", "c", "--port", "7999"])
    assert args.seg_model == ["a,b", "c"] and args.port == 7999 and not args.share and args.host == "127.0.0.1"
    assert main(["app", "--port", "0"]) == 2 and "--port" in capsys.readouterr().err
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gradio" else object())
    assert main(["app"]) == 2 and "evit-hf[app]" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("gradio") is None, reason="the app extra (gradio) is not installed")
def test_ui_builds_and_never_shows_a_traceback(state):
    import gradio as gr

    from evit_hf.app import build_demo
    from evit_hf.app.ui import _safe

    demo = build_demo(state=state)
    assert isinstance(demo, gr.Blocks)
    labels = {block.label for block in demo.blocks.values() if hasattr(block, "label")}
    assert {"Segment anything (SAM)", "Semantic segmentation", "Super-resolution"} <= labels

    def broken(*args):
        raise RuntimeError("boom\nTraceback (most recent call last): ...")

    reply = _safe(broken)()
    assert reply.error and reply.message.startswith("Unexpected error: RuntimeError: boom.")
    assert "Traceback" not in reply.message


@pytest.mark.skipif(importlib.util.find_spec("gradio") is None, reason="the app extra (gradio) is not installed")
def test_cli_app_reports_missing_models(monkeypatch, capsys):
    import evit_hf.app
    from evit_hf.cli import main

    served = []
    monkeypatch.setattr(evit_hf.app, "launch", lambda demo, **kwargs: served.append(kwargs))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.delenv("EVIT_HF_ORG", raising=False)
    monkeypatch.setattr("evit_hf.app.build_demo", lambda config=None, state=None: state)
    assert main(["app", "--seg-model", "random:seg-b0-cityscapes", "--port", "7999"]) == 0
    err = capsys.readouterr().err
    assert "warning: SAM model not available" in err and "efficientvit-sam-l0 is not in the local cache" in err
    assert "--sam-model random:sam-l0" in err and "RANDOM weights" in err and "trained weights" in err
    assert served == [{"host": "127.0.0.1", "port": 7999, "share": False}]
    # a model named on the command line that cannot be loaded stops the app with one line
    for flag, name, message in (("--seg-model", "seg-b9-cityscapes", "did you mean 'seg-b3-cityscapes'"),
                                ("--sam-model", "sam-xl1", "efficientvit_sam_xl1.pt")):
        assert main(["app", flag, name, "--port", "7999"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"evit-hf app: error: {flag} {name}: ") and message in err and "\n" not in err
    assert len(served) == 1


@pytest.mark.skipif(importlib.util.find_spec("gradio") is None, reason="the app extra (gradio) is not installed")
def test_space_entry_builds_the_demo(folders, monkeypatch):
    import runpy
    from pathlib import Path

    import gradio as gr

    monkeypatch.setenv("EVIT_HF_SAM_MODEL", folders["sam"])
    monkeypatch.setenv("EVIT_HF_SEG_MODELS", f"{folders['seg']},{folders['seg2']}")
    monkeypatch.setenv("EVIT_HF_SR_MODEL", "sr-light-x2")
    space = runpy.run_path(str(Path(__file__).resolve().parents[1] / "app.py"), run_name="space")
    assert isinstance(space["demo"], gr.Blocks)
    texts = " ".join(str(block.value) for block in space["demo"].blocks.values() if isinstance(block, gr.Markdown))
    assert f"local folder `{folders['sam']}`" in texts and "the x2 checkpoint shipped in evit-hf" in texts
