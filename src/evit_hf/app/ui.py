"""The web demo's page: Gradio Blocks with three tabs wired to the handlers, and how it is launched.

This module owns the layout (SAM: clickable input and output images, prompt mode, undo / clear, segment
everything; semantic segmentation: image + model dropdown; super-resolution: image -> bicubic | model), the
translation of a handler's `Reply` into page updates (errors become a warning toast plus a message in the
tab's status line, never a stack trace: unexpected exceptions are logged on the server and summarised in the
page), and `launch` (local by default, no share link, no analytics, every model event queued one at a time so a
CPU is not oversubscribed). Box prompts are two clicks on opposite corners (stock Gradio images report clicks,
not drags).
"""

import os
import sys
import traceback
from collections.abc import Callable

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no calls home

import gradio as gr  # noqa: E402

from . import handlers  # noqa: E402
from .handlers import (  # noqa: E402
    BOX,
    INTERACTIVE_POINTS_PER_SIDE,
    MAX_POINTS_PER_SIDE,
    MODES,
    NEGATIVE,
    POSITIVE,
    Reply,
    SamPrompts,
)
from .state import DemoState, ModelStatus  # noqa: E402

CPU = "model"  # one concurrency group: model calls run one at a time
OUTPUT_BUTTONS = ["download", "fullscreen"]  # no "share": it uploads to the Hub
CSS = """
#sam-status, #seg-status, #sr-status {min-height: 3em}
.evit-unavailable {color: #b45309}
"""
INTRO = (
    "# EfficientViT demo\n"
    "EfficientViT (multi-scale linear attention) as Hugging Face models: click-to-segment with EfficientViT-SAM, "
    "semantic segmentation and x2 super-resolution, running on this machine."
)
SAM_HELP = (
    f"Upload an image; its embedding is computed once, then every click only runs the small mask decoder. "
    f"**{POSITIVE}**: part of the object · **{NEGATIVE}**: not part of it · **{BOX}**: click two opposite corners "
    f"of a box. You can click on the input or on the mask image."
)


def _status_markdown(statuses: list[ModelStatus]) -> str:
    lines = []
    for status in statuses:
        if status.available:
            lines.append(f"Model: {status.note}.")
        else:
            lines.append(f"⚠️ **Model not available: {status.note}**")
    return "\n\n".join(lines)


def _message(reply: Reply) -> str:
    """The status line of a reply; errors also raise a warning toast."""
    if reply.error:
        gr.Warning(reply.message, duration=8)
        return f"⚠️ **{reply.message}**"
    return reply.message


def _image(reply: Reply):
    """The reply's image; an error without one leaves the image on the page as it was."""
    return gr.skip() if reply.error and reply.image is None else reply.image


def _path(value) -> str | None:
    """The file of an image input that was not preprocessed (Gradio's `ImageData`, or its dict form)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):
        return value.get("path")
    return getattr(value, "path", None)


def _safe(handler: Callable[..., Reply]) -> Callable[..., Reply]:
    """`handler`, with any unexpected exception logged on the server and turned into a readable reply."""

    def call(*args, **kwargs) -> Reply:
        try:
            return handler(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - the page gets a message, the terminal the traceback
            traceback.print_exc(file=sys.stderr)
            summary = str(err).strip().splitlines()[0] if str(err).strip() else ""
            return Reply(None, f"Unexpected error: {type(err).__name__}{': ' + summary if summary else ''}. "
                               f"The details are in the server's terminal.", True)

    return call


def build_demo(state: DemoState) -> gr.Blocks:
    """The Gradio Blocks of the demo (not launched)."""
    sam_upload, sam_click = _safe(handlers.sam_upload), _safe(handlers.sam_click)
    sam_undo, sam_clear = _safe(handlers.sam_undo), _safe(handlers.sam_clear)
    sam_everything, seg_run, sr_run = (_safe(handlers.sam_everything), _safe(handlers.seg_run),
                                       _safe(handlers.sr_run))

    with gr.Blocks(title="EfficientViT demo", analytics_enabled=False) as demo:
        gr.Markdown(INTRO)
        with gr.Tabs():
            # ----------------------------------------------------------------------------- SAM
            with gr.Tab("Segment anything (SAM)", id="sam"):
                gr.Markdown(_status_markdown(state.status_of("sam")), elem_id="sam-model-status")
                gr.Markdown(SAM_HELP)
                prompts = gr.State(SamPrompts())
                with gr.Row():
                    with gr.Column():
                        sam_input = gr.Image(label="Image (click to add a prompt)", type="filepath", image_mode=None,
                                             sources=["upload", "clipboard"], elem_id="sam-input")
                        mode = gr.Radio(list(MODES), value=POSITIVE, label="A click adds", elem_id="sam-mode")
                        with gr.Row():
                            undo = gr.Button("Undo last prompt", elem_id="sam-undo")
                            clear = gr.Button("Clear prompts", elem_id="sam-clear")
                        with gr.Accordion("Segment everything", open=False):
                            points_per_side = gr.Slider(2, MAX_POINTS_PER_SIDE, value=INTERACTIVE_POINTS_PER_SIDE,
                                                        step=1, label="Points per side",
                                                        info="a grid of point prompts on the image's embedding, "
                                                             "decoded in batches; the time is shown")
                            pred_iou = gr.Slider(0.0, 1.0, value=0.88, step=0.01, label="Predicted IoU threshold")
                            stability = gr.Slider(0.0, 1.0, value=0.95, step=0.01, label="Stability threshold")
                            everything = gr.Button("Segment everything", elem_id="sam-everything")
                    with gr.Column():
                        sam_output = gr.Image(label="Mask (click here too)", type="pil", format="png",
                                              interactive=False, elem_id="sam-output", buttons=OUTPUT_BUTTONS)
                        sam_status = gr.Markdown("Upload an image, then click on an object.", elem_id="sam-status")

                def on_upload(image):
                    reply = sam_upload(state, _path(image))
                    return _image(reply), _message(reply), reply.prompts

                def on_input_click(image, current: SamPrompts, click_mode: str, evt: gr.SelectData):
                    reply = sam_click(state, _path(image), current, click_mode, evt.index)
                    return _image(reply), _message(reply), reply.prompts or current

                def on_output_click(image, current: SamPrompts, click_mode: str, evt: gr.SelectData):
                    reply = sam_click(state, _path(image), current, click_mode, evt.index, on_output=True)
                    return _image(reply), _message(reply), reply.prompts or current

                def on_undo(image, current: SamPrompts):
                    reply = sam_undo(state, _path(image), current)
                    return _image(reply), _message(reply), reply.prompts or current

                def on_clear(image, current: SamPrompts):
                    reply = sam_clear(state, _path(image), current)
                    return _image(reply), _message(reply), reply.prompts or current

                def on_everything(image, side, iou, stable):
                    reply = sam_everything(state, _path(image), side, iou, stable)
                    return _image(reply), _message(reply)

                sam_outputs = [sam_output, sam_status, prompts]
                # preprocess=False: the handlers get the uploaded file and open it themselves, so an unreadable or
                # oversized image is their readable message, not Gradio's "could not preprocess" error
                events = dict(concurrency_id=CPU, concurrency_limit=1, preprocess=False)
                sam_input.change(on_upload, sam_input, sam_outputs, api_name="sam_upload", **events)
                sam_input.select(on_input_click, [sam_input, prompts, mode], sam_outputs, api_name="sam_click",
                                 **events)
                sam_output.select(on_output_click, [sam_input, prompts, mode], sam_outputs, **events)
                undo.click(on_undo, [sam_input, prompts], sam_outputs, api_name="sam_undo", **events)
                clear.click(on_clear, [sam_input, prompts], sam_outputs, api_name="sam_clear", **events)
                everything.click(on_everything, [sam_input, points_per_side, pred_iou, stability],
                                 [sam_output, sam_status], api_name="sam_everything", **events)

            # -------------------------------------------------------------------- segmentation
            with gr.Tab("Semantic segmentation", id="seg"):
                gr.Markdown(_status_markdown(state.status_of("seg")), elem_id="seg-model-status")
                with gr.Row():
                    with gr.Column():
                        seg_input = gr.Image(label="Image", type="filepath", image_mode=None,
                                             sources=["upload", "clipboard"], elem_id="seg-input")
                        names = list(state.seg)
                        seg_model = gr.Dropdown(names, value=names[0] if names else None, label="Model",
                                                elem_id="seg-model")
                        seg_button = gr.Button("Segment", variant="primary", elem_id="seg-run")
                    with gr.Column():
                        seg_output = gr.Image(label="Classes (overlay and legend)", type="pil", format="png",
                                              interactive=False, elem_id="seg-output", buttons=OUTPUT_BUTTONS)
                        seg_status = gr.Markdown("Upload an image and pick a model.", elem_id="seg-status")

                def on_segment(image, name):
                    if image is None:
                        return None, "Upload an image and pick a model."
                    reply = seg_run(state, _path(image), name)
                    return _image(reply), _message(reply)

                def on_segment_button(image, name):
                    reply = seg_run(state, _path(image), name)
                    return _image(reply), _message(reply)

                seg_button.click(on_segment_button, [seg_input, seg_model], [seg_output, seg_status],
                                 api_name="segment", **events)
                seg_input.change(on_segment, [seg_input, seg_model], [seg_output, seg_status],
                                 **events)
                seg_model.change(on_segment, [seg_input, seg_model], [seg_output, seg_status],
                                 **events)

            # ------------------------------------------------------------------ super-resolution
            with gr.Tab("Super-resolution", id="sr"):
                gr.Markdown(_status_markdown(state.status_of("sr")), elem_id="sr-model-status")
                with gr.Row():
                    with gr.Column(scale=1):
                        sr_input = gr.Image(label=f"Image (up to {state.config.sr_max_megapixels:g} MP)",
                                            type="filepath", image_mode=None, sources=["upload", "clipboard"],
                                            elem_id="sr-input")
                        sr_button = gr.Button("Upscale", variant="primary", elem_id="sr-run")
                    with gr.Column(scale=2):
                        sr_output = gr.Image(label="Bicubic (left) vs EfficientViT-SR (right)", type="pil",
                                             format="png", interactive=False, elem_id="sr-output",
                                             buttons=OUTPUT_BUTTONS)
                        sr_status = gr.Markdown("Upload an image to upscale it.", elem_id="sr-status")

                def on_upscale(image):
                    if image is None:
                        return None, "Upload an image to upscale it."
                    reply = sr_run(state, _path(image))
                    return _image(reply), _message(reply)

                def on_upscale_button(image):
                    reply = sr_run(state, _path(image))
                    return _image(reply), _message(reply)

                sr_button.click(on_upscale_button, sr_input, [sr_output, sr_status], api_name="upscale", **events)
                sr_input.change(on_upscale, sr_input, [sr_output, sr_status], **events)
    return demo


def theme() -> gr.themes.Base:
    """Gradio's default look with fonts served locally or by the system (nothing fetched from the internet)."""
    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "Consolas", "monospace"])


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = None, share: bool = False,
           block: bool = True, quiet: bool = False):
    """Serve the demo (queued, errors shown in the page); `block=False` returns at once (tests)."""
    demo.queue(default_concurrency_limit=1)
    return demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        show_error=True,
        prevent_thread_lock=not block,
        quiet=quiet,
        ssr_mode=False,
        max_file_size="64mb",
        footer_links=[],
        theme=theme(),
        css=CSS,
    )
