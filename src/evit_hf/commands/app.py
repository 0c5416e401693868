"""`evit-hf app [--sam-model M] [--seg-model M ...] [--sr-model M] [--host H] [--port P] [--share]`: the web demo.

This module owns the `app` subcommand: it checks which models can be loaded here (a released model is
downloaded and converted the first time, not loaded), stops with a one-line error when a model named on the
command line cannot be, says on stderr which default is missing and what to pass instead, then serves the
Gradio page (`evit_hf.app`) until Ctrl-C. Models load on first use in their tab. Defaults: the released models
`efficientvit-sam-l0`, `efficientvit-seg-b1-cityscapes` and `efficientvit-seg-b1-ade20k` (the authors'
checkpoints) and the x2 super-resolution checkpoint shipped in the package. Offline, pass folders written by
`evit-hf convert`, or `random:PRESET` names (random weights) to try the page.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

from . import add_command

SUMMARY = "Interactive web demo: click-to-segment (SAM), semantic segmentation, super-resolution."
DESCRIPTION = (
    "Serve the EfficientViT web demo (Gradio; needs the `app` extra). Models are released models (`evit-hf "
    "models`), saved folders (`evit-hf convert`), Hub ids, or random:PRESET (random weights); they load on first "
    "use."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "app", run, SUMMARY, DESCRIPTION)
    parser.add_argument("--sam-model", default=None,
                        help="EfficientViT-SAM model (default: efficientvit-sam-l0; offline: a converted folder, or "
                        "random:sam-l0 for random weights)")
    parser.add_argument("--seg-model", action="append", default=None, metavar="M",
                        help="segmentation model(s) for the dropdown: repeat the flag or give a comma list "
                        "(default: efficientvit-seg-b1-cityscapes, efficientvit-seg-b1-ade20k)")
    parser.add_argument("--sr-model", default=None,
                        help="super-resolution model (default: the x2 checkpoint shipped in evit-hf)")
    parser.add_argument("--seg-short-side", type=int, default=None,
                        help="segment at this short side (long side to a multiple of 32) instead of the model's "
                        "own size; smaller is faster")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to serve on (default 127.0.0.1: this machine only; 0.0.0.0: the network)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--share", action="store_true",
                        help="also open a public *.gradio.live link (off by default; needs the internet)")


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("gradio") is None:
        raise ValueError('the web demo needs Gradio: pip install "evit-hf[app]" (or pip install gradio).')
    if not 1 <= args.port <= 65535:
        raise ValueError(f"--port must be in 1-65535, got {args.port}.")
    from ..app import AppConfig, DemoState, build_demo, launch

    config = AppConfig(sam_model=args.sam_model or "", seg_models=tuple(args.seg_model or ()),
                       sr_model=args.sr_model, seg_short_side=args.seg_short_side)
    _check_given(args, config)
    state = DemoState.create(config)
    for status in state.statuses:
        kind = {"sam": "SAM", "seg": "segmentation", "sr": "super-resolution"}[status.kind]
        if status.available:
            print(f"evit-hf app: {kind}: {status.note}", file=sys.stderr)
        else:
            print(f"evit-hf app: warning: {kind} model not available: {status.note}", file=sys.stderr)
    demo = build_demo(state=state)
    try:
        launch(demo, host=args.host, port=args.port, share=args.share)
    except KeyboardInterrupt:
        pass
    except OSError as err:  # e.g. the port is taken
        raise ValueError(f"cannot serve on {args.host}:{args.port}: {err}") from err
    return 0


def _check_given(args: argparse.Namespace, config) -> None:
    """A model named on the command line that cannot be loaded stops the app, before any default is fetched."""
    from ..app.state import SAM_FLAG, SEG_FLAG, SR_FLAG, model_status

    given = [("sam", SAM_FLAG, config.sam_model)] if args.sam_model else []
    given += [("seg", SEG_FLAG, name) for name in config.seg_models] if args.seg_model else []
    given += [("sr", SR_FLAG, config.sr_model)] if args.sr_model else []
    for kind, flag, name in given:
        status = model_status(kind, name)
        if not status.available:
            raise ValueError(f"{flag} {name or args.sr_model}: {status.problem}")
