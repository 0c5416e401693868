"""`evit-hf app`: the interactive web demo (an optional extra: `pip install "evit-hf[app]"`, Gradio).

This package owns the demo: `state` (configuration, lazily loaded models, the SAM embedding cache; no Gradio),
`handlers` (what each click and button does, as plain functions returning an image and a message) and `ui` (the
Gradio page and its launch). Importing this package does not import Gradio; `build_demo` and `launch` do.
"""

from __future__ import annotations

from .state import AppConfig, DemoState, InputError, ModelUnavailable


def build_demo(config: AppConfig | None = None, state: DemoState | None = None):
    """The Gradio Blocks of the demo for `config` (default: the released models) or a prepared `state`."""
    from .ui import build_demo as build

    return build(state or DemoState.create(config or AppConfig()))


def launch(demo, host: str = "127.0.0.1", port: int | None = None, share: bool = False, block: bool = True,
           quiet: bool = False):
    """Serve a demo built by `build_demo` (local only unless `share`)."""
    from .ui import launch as serve

    return serve(demo, host=host, port=port, share=share, block=block, quiet=quiet)


__all__ = ["AppConfig", "DemoState", "InputError", "ModelUnavailable", "build_demo", "launch"]
