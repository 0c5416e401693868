"""`evit-hf app` in a real headless Chromium: start the server, upload an image, click, get a mask back.

The server runs as a user starts it (`evit-hf app ...` in a subprocess, small random-weight models, offline),
Playwright drives Debian's `/usr/bin/chromium` (never a downloaded browser). Screenshots go to
`artifacts/app/` (or `$EVIT_HF_ARTIFACTS`). Skipped, with the reason, where Gradio, Playwright or Chromium
is missing. `python tests/test_app_browser.py docs/app.png` regenerates the screenshot of docs/app.md.
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("EVIT_HF_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(os.environ.get("EVIT_HF_ARTIFACTS", REPO / "artifacts")) / "app"
TIMEOUT_MS = 60_000


def _missing() -> str | None:
    for module, extra in (("gradio", 'the app extra: pip install -e ".[app]"'),
                          ("playwright", 'the Python package playwright: pip install -e ".[app,test]"')):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed ({extra})"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; or set EVIT_HF_CHROMIUM)"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=f"browser test skipped: {_missing()}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def save_models(root: Path) -> dict[str, str]:
    """A tiny random-weight SAM and segmentation model saved like `evit-hf convert` output."""
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from evit_hf import EfficientViTSegImageProcessor
    from evit_hf.models.efficientvit import EfficientViTForSemanticSegmentation
    from evit_hf.models.efficientvit.image_processing_efficientvit_sam import EfficientViTSamImageProcessor
    from evit_hf.models.efficientvit.modeling_efficientvit_sam import EfficientViTSamModel
    from test_sam import tiny_sam_config
    from test_segmentation import tiny_config

    torch.manual_seed(0)
    config = tiny_sam_config()
    EfficientViTSamModel(config).save_pretrained(root / "sam")
    EfficientViTSamImageProcessor.for_config(config).save_pretrained(root / "sam")
    EfficientViTForSemanticSegmentation(tiny_config()).save_pretrained(root / "seg")
    processor = EfficientViTSegImageProcessor.for_dataset("ade20k")
    processor.size = {"shortest_edge": 64}
    processor.save_pretrained(root / "seg")
    return {"sam": str(root / "sam"), "seg": str(root / "seg")}


def save_image(path: Path, size: tuple[int, int]) -> Path:
    from skimage.data import astronaut

    Image.fromarray(astronaut()).resize(size, Image.BILINEAR).save(path)
    return path


class Server:
    """`evit-hf app` in a subprocess on a free localhost port; `stop()` ends it (and only it)."""

    def __init__(self, *args: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
               "PYTHONUNBUFFERED": "1"}
        self.log = log
        self._log_file = log.open("w")
        self.process = subprocess.Popen([sys.executable, "-m", "evit_hf.cli", "app", *args, "--port", str(self.port)],
                                        stdout=self._log_file, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"evit-hf app exited with {self.process.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"evit-hf app did not answer on {self.url} within 120 s:\n{self.output()}")

    def output(self) -> str:
        self._log_file.flush()
        return self.log.read_text()[-5000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()


def open_page(browser, url: str):
    """A page on the demo, with requests to anything but the demo refused (the demo must work offline)."""
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    outside: list[str] = []

    def route(request_route):
        request = request_route.request
        if request.url.startswith(url) or request.url.startswith(("data:", "blob:")):
            request_route.continue_()
        else:
            outside.append(request.url)
            request_route.abort()

    page.route("**/*", route)
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector("#sam-input input[type=file]", state="attached", timeout=TIMEOUT_MS)
    return page, outside


def wait_for_text(page, selector: str, text: str) -> str:
    page.wait_for_function("([sel, text]) => (document.querySelector(sel)?.innerText || '').includes(text)",
                           arg=[selector, text], timeout=TIMEOUT_MS)
    return page.inner_text(selector)


def output_image(page, selector: str) -> Image.Image:
    """The image an output component shows, fetched the way the browser got it."""
    page.wait_for_function("(sel) => { const img = document.querySelector(sel + ' img');"
                           " return img && img.complete && img.naturalWidth > 0; }", arg=selector, timeout=TIMEOUT_MS)
    src = page.locator(f"{selector} img").first.get_attribute("src")
    response = page.request.get(src)
    assert response.ok, f"{src}: HTTP {response.status}"
    return Image.open(io.BytesIO(response.body())).convert("RGB")


def click_image(page, selector: str, fx: float, fy: float) -> None:
    """Click at a fraction of the displayed image's width / height."""
    image = page.locator(f"{selector} img").first
    box = image.bounding_box()
    image.click(position={"x": box["width"] * fx, "y": box["height"] * fy})


def settle(page) -> None:
    """Let pending transitions (Gradio fades outputs while they update) finish before a screenshot."""
    page.wait_for_function("() => !document.querySelector('.pending, .translucent')", timeout=TIMEOUT_MS)
    page.wait_for_timeout(400)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("app_browser")
    models = save_models(root)
    server = Server("--sam-model", models["sam"], "--seg-model", models["seg"], "--sr-model", "sr-light-x2",
                    log=root / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as err:  # noqa: BLE001 - a Chromium that cannot start here: skip, say why
            pytest.skip(f"browser test skipped: {CHROMIUM} does not start ({str(err).splitlines()[0]})")
        yield chromium
        chromium.close()


def test_upload_click_mask(server, browser, tmp_path):
    image_path = save_image(tmp_path / "astronaut.png", (160, 120))
    page, outside = open_page(browser, server.url)
    page.set_input_files("#sam-input input[type=file]", str(image_path))
    status = wait_for_text(page, "#sam-status", "Image embedding")
    assert "ms" in status

    click_image(page, "#sam-input", 0.5, 0.4)
    status = wait_for_text(page, "#sam-status", "Mask decoder")
    x, y = (int(v) for v in re.search(r"Positive point at \((\d+), (\d+)\)", status).groups())
    assert abs(x - 80) <= 1 and abs(y - 48) <= 1 and "cached" in status  # image pixels, not screen pixels
    mask = output_image(page, "#sam-output")
    original = np.asarray(Image.open(image_path).convert("RGB"), dtype=np.int16)
    shown = np.asarray(mask, dtype=np.int16)
    assert shown.shape == original.shape and shown.any() and (shown != original).any()

    page.get_by_label("Negative point").check()
    click_image(page, "#sam-output", 0.1, 0.1)  # the mask image is clickable too
    status = wait_for_text(page, "#sam-status", "1 negative point")
    assert "1 positive" in status

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    settle(page)
    page.screenshot(path=str(ARTIFACTS / "sam_click.png"), full_page=True)
    assert "Traceback" not in page.content()
    assert not outside, f"the page tried to reach the internet: {outside}"
    page.close()


def test_bad_input_shows_a_message(server, browser, tmp_path):
    page, _ = open_page(browser, server.url)
    page.get_by_role("tab", name="Semantic segmentation").click()
    page.locator("#seg-run").click()  # no image
    assert "No image: upload an image first." in wait_for_text(page, "#seg-status", "No image")

    wide = tmp_path / "wide.png"
    Image.new("RGB", (4200, 300), (40, 120, 200)).save(wide)
    page.get_by_role("tab", name="Segment anything (SAM)").click()
    page.set_input_files("#sam-input input[type=file]", str(wide))
    status = wait_for_text(page, "#sam-status", "downscaled")
    assert "4200x300" in status and "4096x292" in status

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    page.get_by_role("tab", name="Super-resolution").click()
    page.set_input_files("#sr-input input[type=file]", str(broken))
    page.locator("#sr-run").click()
    wait_for_text(page, "body", "could not be read")  # Gradio's own upload check or ours: a message either way
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "bad_input.png"), full_page=True)
    assert "Traceback" not in page.content()
    page.close()


def test_segmentation_and_super_resolution_tabs(server, browser, tmp_path):
    image_path = save_image(tmp_path / "small.png", (48, 40))
    page, _ = open_page(browser, server.url)
    page.get_by_role("tab", name="Semantic segmentation").click()
    page.set_input_files("#seg-input input[type=file]", str(image_path))
    assert "classes present" in wait_for_text(page, "#seg-status", "classes present")
    overlay = output_image(page, "#seg-output")
    assert overlay.height >= 40 and overlay.width > 48  # the legend is on the right

    page.get_by_role("tab", name="Super-resolution").click()
    page.set_input_files("#sr-input input[type=file]", str(image_path))
    assert "48x40 -> 96x80" in wait_for_text(page, "#sr-status", "->")
    assert output_image(page, "#sr-output").size == (96 + 8 + 96, 24 + 80)
    page.close()


def make_readme_screenshot(out: Path) -> None:
    """The picture of docs/app.md: `evit-hf app --sam-model random:sam-l0` (random weights: no trained SAM offline),
    two clicks."""
    import tempfile

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        image_path = save_image(Path(tmp) / "astronaut.png", (512, 512))
        server = Server("--sam-model", "random:sam-l0", "--seg-model", "random:seg-b1-cityscapes",
                        log=Path(tmp) / "server.log")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page, _ = open_page(browser, server.url)
                page.set_viewport_size({"width": 1280, "height": 800})
                page.set_input_files("#sam-input input[type=file]", str(image_path))
                wait_for_text(page, "#sam-status", "Image embedding")
                click_image(page, "#sam-input", 0.5, 0.35)
                wait_for_text(page, "#sam-status", "Mask decoder")
                page.get_by_label("Negative point").check()
                click_image(page, "#sam-output", 0.12, 0.2)
                print(wait_for_text(page, "#sam-status", "1 negative point"))
                settle(page)
                out.parent.mkdir(parents=True, exist_ok=True)
                shot = Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB")
                shot.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(out, optimize=True)  # ~4x smaller
                browser.close()
        finally:
            server.stop()
    print(f"wrote {out}")


if __name__ == "__main__":
    if _missing():
        sys.exit(_missing())
    make_readme_screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "docs" / "app.png"))
