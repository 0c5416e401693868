# Two commands on a fresh machine: `make demo` and `make test` (no venv or caches needed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
COMPAT := .venv-tf457
# The CPU wheel on local disk; an unpinned torch would pull a multi-GB CUDA build, so it is installed first.
TORCH := torch==2.13.0
# Reference implementations for the fidelity tests. They import torchvision at import time, which cannot be
# installed beside the CPU wheel, so they go in without dependencies (tests stub torchvision), and into their
# own folder, never the venv: accelerate's CLI imports timm whenever timm is importable, so a timm without
# torchvision in .venv would stop every `accelerate launch`. The parity tests and `evit-hf bench` put the
# folder on sys.path (evit_hf.reference.packages, $EVIT_HF_REFERENCES; tests/conftest.py points it here).
REFERENCES := efficientsam==1.0.0 timm==1.0.31 segment-anything==1.0
REFERENCE_DIR := .references
# Set-ups made before the folder existed installed them into .venv: `make` takes them out again.
LEAKED_REFERENCES := efficientsam timm segment-anything
PIP := $(BIN)/pip install --disable-pip-version-check --progress-bar off -q
PYTEST_ARGS ?=

.PHONY: demo test test-main test-compat test-tflite lint install clean docs docs-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Everything the README shows: the library and CLI, training (`accelerate launch`) and export (ONNX).
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(PIP) $(TORCH)
	$(PIP) -e ".[train,export]"
	$(BIN)/pip uninstall --disable-pip-version-check -y -q $(LEAKED_REFERENCES) 2>/dev/null || true
	touch $@

$(REFERENCE_DIR)/.installed: $(BIN)/python
	rm -rf $(REFERENCE_DIR)
	$(PIP) --no-deps --target $(REFERENCE_DIR) $(REFERENCES)
	touch $@

# The browser test of `evit-hf app` drives Debian's Chromium; where it cannot be installed (not root, no apt-get,
# no network) the test skips and says why.
CHROMIUM := /usr/bin/chromium

$(VENV)/.test-installed: $(VENV)/.installed $(REFERENCE_DIR)/.installed
	$(PIP) -e ".[train,export,test,app,docs]"
	@if [ ! -x $(CHROMIUM) ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium could not be installed: tests/test_app_browser.py will be skipped"; fi
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/evit-hf demo

# The docs site (mkdocs.yml): every measured table of README.md, docs/ and hub_cards/ rendered from
# docs/results/*.json, then `mkdocs build --strict` (a broken link or anchor, or a page missing from nav, fails).
$(VENV)/.docs-installed: $(VENV)/.installed
	$(PIP) -e ".[docs]"
	touch $@

docs: $(VENV)/.docs-installed
	$(BIN)/python -m evit_hf.release.render
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# CI: nothing rendered may differ from its data, and the site must build.
docs-check: $(VENV)/.test-installed
	$(BIN)/python -m evit_hf.release.render --check
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

lint: $(VENV)/.test-installed
	$(BIN)/ruff check src tests training

# Everything runs in CI, the `slow` full-size XL parity tests too (about 1 of the 4 minutes).
test-main: $(VENV)/.test-installed
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The configuration and modeling code must also run on transformers 4.57, where the Optimum ONNX exporter
# (optimum-onnx pins transformers<4.58) runs `evit-optimum-cli export onnx` (tests/test_export_optimum.py).
$(COMPAT)/.installed: pyproject.toml
	$(PYTHON) -m venv $(COMPAT)
	$(COMPAT)/bin/pip install --disable-pip-version-check --progress-bar off -q $(TORCH)
	$(COMPAT)/bin/pip install --disable-pip-version-check --progress-bar off -q "transformers==4.57.6" \
		$(TORCH) pytest scikit-image "optimum-onnx==0.1.0" onnx onnxruntime -e .
	touch $@

test-compat: $(COMPAT)/.installed
	$(COMPAT)/bin/python -m pytest -q -m "not slow" tests/test_model.py tests/test_convert.py \
		tests/test_segmentation.py tests/test_sam.py tests/test_sr.py tests/test_export_optimum.py \
		-k "not timm and not efficientsam"  # the reference implementations are checked in test-main

# TFLite export (litert-torch, 1.3 GB with jax) lives in its own venv: it pins typing-extensions<4.13 and pulls
# its own transformers. tests/test_export_tflite.py converts and runs every task in the LiteRT interpreter.
LITERT := .venv-litert

$(LITERT)/.installed: pyproject.toml
	$(PYTHON) -m venv $(LITERT)
	$(LITERT)/bin/pip install --disable-pip-version-check --progress-bar off -q $(TORCH)
	$(LITERT)/bin/pip install --disable-pip-version-check --progress-bar off -q $(TORCH) -e ".[tflite]" \
		pytest scikit-image
	touch $@

test-tflite: $(LITERT)/.installed
	$(LITERT)/bin/python -m pytest -q -m "not slow" tests/test_export_tflite.py

test: lint docs-check test-main test-compat test-tflite

clean:
	rm -rf $(VENV) $(COMPAT) $(LITERT) $(REFERENCE_DIR) .pytest_cache site
