"""EfficientViT-SAM latency against transformers' SAM ViT-B, measured in the same run (`evit-hf bench sam`),
and "segment everything" against transformers' pipeline and the original's generator (`--everything`).

This module owns the SAM benchmarks. `run()` returns rows and `format_table()` renders them. Rows of kind
`encoder`: image-encoder latency (batch 1, fp32, eval, `torch.inference_mode`) of each EfficientViT-SAM
variant at its own resolution (L: 512, XL: 1024) and of SAM ViT-B (`reference.peers.sam_vit_b_model`) at 1024,
random weights, its `get_image_embeddings`; `speedup_vs_vitb` is ViT-B ms / ours ms; params and encoder GMACs
(counted on the meta device). Rows of kind `prompt`: prompt to mask (one point with multimask output, one box)
from precomputed embeddings. ViT-B on a 2-core CPU takes tens of seconds per call: every timing does one
warm-up call and then at least one timed call, more while `budget_s` lasts.

`run_everything()` times automatic mask generation on one image (the astronaut photograph, 512x512) with one
model's weights (`randomize_`, seed 0) through three implementations in one process: evit-hf's
`SamAutomaticMaskGenerator`, transformers' `MaskGenerationPipeline` (the stock class) and mit-han-lab's
`EfficientViTSamAutomaticMaskGenerator` (`efficientsam`, where importable), each split into image embedding,
decoder (prompt encoder + mask decoder calls) and post-processing (the rest: upsampling, filters, RLE, NMS). Its
`floor` row holds the decoder's compute floor: the stock decoder's MACs per prompt (counted on the meta device)
times the prompts, over the fp32 GEMM rate measured at the start and the end of the run, with our decoder's
MACs per prompt beside it; and the load of the machine during the run (load average, CPU seconds of other
processes per second).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import torch

from ..progress import track
from ..reference.peers import sam_vit_b_model
from ..resolve import preset_model
from .core import count_call_macs, count_parameters, gmacs, markdown_table, time_callable

DEFAULT_PRESETS = ("sam-l0", "sam-l1", "sam-l2", "sam-xl0", "sam-xl1")
REFERENCE = "SAM ViT-B (transformers)"


def _time(fn: Callable[[], object], budget_s: float) -> dict[str, float]:
    with torch.inference_mode():
        return time_callable(fn, warmup=1, budget_s=budget_s, min_runs=1)


def _encode(model: torch.nn.Module, pixels: torch.Tensor, store: dict) -> torch.Tensor:
    store["embeddings"] = model.get_image_embeddings(pixels)
    return store["embeddings"]


def _prompt_rows(name: str, model: torch.nn.Module, embeddings: torch.Tensor, budget_s: float) -> list[dict]:
    """Point and box prompt -> masks latency from precomputed embeddings (prompt frame 1024)."""
    point = torch.tensor([[[[512.0, 384.0]]]])
    label = torch.ones(1, 1, 1, dtype=torch.long)
    box = torch.tensor([[[200.0, 150.0, 700.0, 600.0]]])
    cases = {
        "1 point (multimask)": lambda: model(
            image_embeddings=embeddings, input_points=point, input_labels=label, multimask_output=True
        ),
        "1 box": lambda: model(image_embeddings=embeddings, input_boxes=box, multimask_output=False),
    }
    return [{"kind": "prompt", "model": name, "prompt": prompt, **_time(fn, budget_s)} for prompt, fn in cases.items()]


def run(
    presets: list[str] | tuple[str, ...] | None = None,
    budget_s: float = 5.0,
    reference: bool = True,
    prompt_preset: str | None = None,
) -> list[dict]:
    """Benchmark rows (see the module docstring); `reference=False` skips ViT-B.

    `prompt_preset` (default: the first preset) is the variant whose prompt-to-mask latency is measured.
    """
    from ..models.efficientvit import SAM_PRESETS

    presets = list(presets or DEFAULT_PRESETS)
    unknown = [p for p in presets if p not in SAM_PRESETS]
    if unknown:
        raise ValueError(f"unknown SAM preset(s) {unknown}; choose from {sorted(SAM_PRESETS)}.")
    prompt_preset = prompt_preset or presets[0]
    rows: list[dict] = []
    prompt_rows: list[dict] = []
    store: dict[str, torch.Tensor] = {}  # the last image embeddings, reused for the prompt rows
    torch.manual_seed(0)
    if reference:
        sam = sam_vit_b_model()
        pixels = torch.randn(1, 3, 1024, 1024)
        rows.append({
            "kind": "encoder",
            "model": REFERENCE,
            "resolution": 1024,
            "params_m": count_parameters(sam.vision_encoder) / 1e6,
            "gmacs": gmacs(sam.vision_encoder, (1, 3, 1024, 1024)),
            **_time(lambda: _encode(sam, pixels, store), budget_s),
        })
        prompt_rows += _prompt_rows(REFERENCE, sam, store["embeddings"], budget_s)
        del sam
    for preset in track(presets, "bench sam", unit="model"):
        model = preset_model(preset)
        resolution = model.config.encoder_image_size
        pixels = torch.randn(1, 3, resolution, resolution)
        name = f"EfficientViT-SAM-{preset.removeprefix('sam-').upper()}"
        rows.append({
            "kind": "encoder",
            "model": name,
            "resolution": resolution,
            "params_m": count_parameters(model.vision_encoder) / 1e6,
            "gmacs": gmacs(model.vision_encoder, (1, 3, resolution, resolution)),
            **_time(lambda m=model, x=pixels: _encode(m, x, store), budget_s),
        })
        if preset == prompt_preset:
            prompt_rows += _prompt_rows(name, model, store["embeddings"], budget_s)
    if reference:
        vitb_ms = rows[0]["median_ms"]
        for row in rows:
            row["speedup_vs_vitb"] = vitb_ms / row["median_ms"]
    return rows + prompt_rows


def format_table(rows: list[dict]) -> str:
    """Markdown tables: image encoders (with the ViT-B ratio), prompt-to-mask latency; or segment everything."""
    if any(r.get("kind") == "everything" for r in rows):
        return format_everything(rows)
    parts = []
    encoder = [r for r in rows if r.get("kind", "encoder") == "encoder"]
    if encoder:
        parts.append(markdown_table(encoder, [
            ("model", "image encoder"), ("resolution", "input"), ("params_m", "params (M)"), ("gmacs", "GMACs"),
            ("median_ms", "median ms"), ("min_ms", "min ms"), ("runs", "runs"),
            ("speedup_vs_vitb", "speed-up vs ViT-B"),
        ]))
    prompt = [r for r in rows if r.get("kind") == "prompt"]
    if prompt:
        parts.append(markdown_table(prompt, [
            ("model", "prompt -> masks (precomputed embeddings)"), ("prompt", "prompt"), ("median_ms", "median ms"),
            ("min_ms", "min ms"), ("runs", "runs"),
        ]))
    return "\n\n".join(parts)


# ------------------------------------------------------------------------------------------ segment everything
EVERYTHING_COLUMNS = [
    ("implementation", "segment everything"), ("grid", "grid"), ("masks", "masks"), ("total_ms", "total ms"),
    ("embedding_ms", "embedding ms"), ("decoder_ms", "decoder ms"), ("postprocess_ms", "post-processing ms"),
    ("speedup_vs_pipeline", "speed-up vs transformers"), ("vs_floor", "total / decoder floor"),
    ("cpu_s", "CPU s"), ("cpu_speedup_vs_pipeline", "speed-up in CPU s"), ("cpu_vs_floor", "CPU s / floor"),
]
OURS, PIPELINE, ORIGINAL = ("evit-hf SamAutomaticMaskGenerator", "transformers MaskGenerationPipeline",
                            "original EfficientViTSamAutomaticMaskGenerator")


class _PhaseTimer:
    """Wall time spent inside given modules' forward calls (hooks), summed, in ms."""

    def __init__(self, modules: list[torch.nn.Module]) -> None:
        self.ms = 0.0
        self._depth = 0
        self._handles = []
        for module in modules:
            self._handles.append(module.register_forward_pre_hook(self._enter))
            self._handles.append(module.register_forward_hook(self._exit))

    def _enter(self, *args) -> None:
        if self._depth == 0:
            self._start = time.perf_counter()
        self._depth += 1

    def _exit(self, *args) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.ms += (time.perf_counter() - self._start) * 1e3

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def _timed(fn: Callable[[], object], embedding: list[torch.nn.Module], decoder: list[torch.nn.Module]) -> dict:
    """One call of `fn` split by forward hooks into embedding / decoder / post-processing ms."""
    timers = _PhaseTimer(embedding), _PhaseTimer(decoder)
    try:
        start = time.perf_counter()
        result = fn()
        total = (time.perf_counter() - start) * 1e3
    finally:
        for timer in timers:
            timer.remove()
    return {"result": result, "total_ms": total, "embedding_ms": timers[0].ms, "decoder_ms": timers[1].ms,
            "postprocess_ms": total - timers[0].ms - timers[1].ms}


def _pipeline_run(model, processor, image, points_per_side: int, points_per_batch: int) -> dict:
    """transformers' stock `MaskGenerationPipeline` (not the class evit-hf registers for the task)."""
    from transformers.pipelines.mask_generation import MaskGenerationPipeline

    pipeline = MaskGenerationPipeline(model=model, image_processor=processor, points_per_batch=points_per_batch)
    timed = _timed(lambda: pipeline(image, points_per_crop=points_per_side), [model.vision_encoder],
                   [model.prompt_encoder, model.mask_decoder])
    timed["masks"] = len(timed.pop("result")["masks"])
    return timed


def _original_run(model, processor, image, preset: str, points_per_side: int, points_per_batch: int) -> dict:
    from ..reference.mask_generation import as_array, original_mask_generator

    generator = original_mask_generator(model, processor, variant=preset, points_per_side=points_per_side,
                                        points_per_batch=points_per_batch)
    sam = generator.predictor.model
    timed = _timed(lambda: generator.generate(as_array(image)), [sam.image_encoder],
                   [sam.prompt_encoder, sam.mask_decoder])
    timed["masks"] = len(timed.pop("result"))
    return timed


def _ours_run(model, processor, image, points_per_side: int, progress: bool) -> dict:
    from ..predict import SamAutomaticMaskGenerator

    start = time.perf_counter()
    result = SamAutomaticMaskGenerator(model, processor, points_per_side, progress=progress).generate(image)
    total = (time.perf_counter() - start) * 1e3
    return {"total_ms": total, "embedding_ms": result.embedding_ms, "decoder_ms": result.decoder_ms,
            "postprocess_ms": total - result.embedding_ms - result.decoder_ms, "masks": len(result.masks),
            "candidates": result.num_candidates}


def _with_cpu_time(run: Callable[[], dict]) -> dict:
    """`run()`'s row with `cpu_s`, the CPU seconds this process spent in it (all threads): unlike wall time, it
    leaves out the time other processes held the cores, so ratios of it hold on a shared machine."""
    start = time.process_time()
    row = run()
    return {**row, "cpu_s": time.process_time() - start}


def _gemm_gmacs_per_cpu_second(size: int = 2048, runs: int = 5) -> float:
    """The fp32 GEMM rate per CPU second of this process (all threads): the floor's rate in `cpu_s` terms."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    with torch.inference_mode():
        a @ b
        start = time.process_time()
        for _ in range(runs):
            a @ b
        return runs * size**3 / (time.process_time() - start) / 1e9


def decoder_gmacs(config, prompts: int = 8) -> dict[str, float]:
    """GMACs of the SAM decoder of an EfficientViT-SAM `config`, counted on the meta device: per point prompt
    of the stock decoder (the model's forward on image embeddings, multimask), and of `PromptBatchDecoder`:
    once per image (`prepare`), per prompt (transformer and IoUs), per prompt with a kept mask (upscaling)."""
    from ..models.efficientvit import EfficientViTSamModel
    from ..predict import PromptBatchDecoder

    with torch.device("meta"):  # no grad-requiring weights: FlopCounterMode's module tracking under no_grad
        model = EfficientViTSamModel(config).eval().requires_grad_(False)
    side, width = config.prompt_encoder_config.image_embedding_size, config.prompt_encoder_config.hidden_size
    embeddings = torch.empty(1, width, side, side, device="meta")
    points = torch.empty(prompts, 1, 2, device="meta")
    decoder = PromptBatchDecoder(model)
    with torch.no_grad():
        stock = count_call_macs(
            lambda: model(image_embeddings=embeddings, input_points=points[None], multimask_output=True))
        context = decoder.prepare(embeddings)
        sparse = decoder.sparse_embeddings(points)
        decoded = decoder.decode(context, sparse, True)
        return {"stock_gmacs_per_prompt": stock / prompts / 1e9,
                "ours_prepare_gmacs": count_call_macs(lambda: decoder.prepare(embeddings)) / 1e9,
                "ours_tokens_gmacs_per_prompt":
                    count_call_macs(lambda: decoder.decode(context, sparse, True)) / prompts / 1e9,
                "ours_masks_gmacs_per_kept_prompt": count_call_macs(lambda: decoder.masks(decoded)) / prompts / 1e9}


def _busy_seconds() -> float | None:
    """CPU seconds all processes spent busy since boot (/proc/stat), or `None` where it cannot be read."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def run_everything(preset: str = "sam-l0", points_per_side: int = 32, threads: int | None = 2,
                   pipeline: bool = True, original: bool = True, points_per_batch: int = 64,
                   progress: bool = False, tune: bool = True) -> list[dict]:
    """Rows of kind `everything` (one per implementation) and one `floor` row (module docstring). `tune`: glibc
    allocator tuning for the whole run, as `bench cpu` (`tune_cpu_allocator`: every implementation allocates
    hundreds of MB per prompt batch; mmap'ed and page-faulted back in each time, they cost 1.6x the CPU time of
    evit-hf's decoder and of the stock one alike, measured on SAM-L0 with 2 threads)."""
    from PIL import Image

    from ..models.efficientvit import SAM_PRESETS
    from ..optimization import tune_cpu_allocator
    from ..predict.sam import default_processor
    from ..reference.original import OriginalUnavailable
    from .core import intra_op_threads
    from .inference import gemm_peak_gmacs

    if preset not in SAM_PRESETS:
        raise ValueError(f"unknown SAM preset {preset!r}; choose from {sorted(SAM_PRESETS)}.")
    if points_per_side < 1:
        raise ValueError(f"points_per_side must be at least 1, got {points_per_side}.")
    try:
        from skimage.data import astronaut

        image = Image.fromarray(astronaut())
    except ImportError:
        image = Image.new("RGB", (512, 512), (120, 90, 60))
    tuned = tune_cpu_allocator() if tune else False
    model = preset_model(preset, seed=0)
    processor = default_processor(model)
    grid = f"{points_per_side}x{points_per_side}"
    common = {"model": f"EfficientViT-SAM-{preset.removeprefix('sam-').upper()}", "grid": grid,
              "image": f"{image.width}x{image.height}", "prompts": points_per_side**2, "allocator_tuned": tuned}
    rows = []
    with intra_op_threads(threads), torch.inference_mode():
        load_before, busy_before, cpu_before, wall_before = os.getloadavg(), _busy_seconds(), time.process_time(), \
            time.perf_counter()
        gemm_start, gemm_cpu_start = gemm_peak_gmacs(), _gemm_gmacs_per_cpu_second()
        _ours_run(model, processor, image, 2, False)  # warm-up (kernel choice, first allocations): not timed
        rows.append({"kind": "everything", "implementation": OURS, **common,
                     **_with_cpu_time(lambda: _ours_run(model, processor, image, points_per_side, progress))})
        if pipeline:
            rows.append({"kind": "everything", "implementation": PIPELINE, **common, **_with_cpu_time(
                lambda: _pipeline_run(model, processor, image, points_per_side, points_per_batch))})
        if original:
            try:
                rows.append({"kind": "everything", "implementation": ORIGINAL, **common, **_with_cpu_time(
                    lambda: _original_run(model, processor, image, preset, points_per_side, points_per_batch))})
            except OriginalUnavailable as err:
                rows.append({"kind": "everything", "implementation": ORIGINAL, **common, "skipped": str(err)})
        gemm_end, gemm_cpu_end = gemm_peak_gmacs(), _gemm_gmacs_per_cpu_second()
        wall = time.perf_counter() - wall_before
        busy_after, load_after = _busy_seconds(), os.getloadavg()
        own_cpu = time.process_time() - cpu_before
    gemm = (gemm_start + gemm_end) / 2
    macs = decoder_gmacs(model.config)
    floor_ms = macs["stock_gmacs_per_prompt"] * points_per_side**2 / gemm * 1e3
    gemm_cpu = (gemm_cpu_start + gemm_cpu_end) / 2
    floor_cpu_s = macs["stock_gmacs_per_prompt"] * points_per_side**2 / gemm_cpu
    others = None if busy_before is None or busy_after is None else (busy_after - busy_before - own_cpu) / wall
    rows.append({"kind": "floor", **common, "gemm_gmacs_start": gemm_start, "gemm_gmacs_end": gemm_end,
                 "gemm_gmacs": gemm, "gemm_gmacs_per_cpu_s_start": gemm_cpu_start,
                 "gemm_gmacs_per_cpu_s_end": gemm_cpu_end, **macs, "floor_ms": floor_ms, "floor_cpu_s": floor_cpu_s,
                 "threads": torch.get_num_threads() if threads is None else threads,
                 "loadavg_before": load_before[0], "loadavg_after": load_after[0],
                 "other_processes_cores": others, "run_s": wall})
    stock = next((r for r in rows if r.get("implementation") == PIPELINE and "total_ms" in r), None)
    for row in rows:
        if row["kind"] == "everything" and "total_ms" in row:
            row["vs_floor"] = row["total_ms"] / floor_ms
            row["decoder_vs_floor"] = row["decoder_ms"] / floor_ms
            row["cpu_vs_floor"] = row["cpu_s"] / floor_cpu_s
            if stock is not None:
                row["speedup_vs_pipeline"] = stock["total_ms"] / row["total_ms"]
                row["cpu_speedup_vs_pipeline"] = stock["cpu_s"] / row["cpu_s"]
    return rows


EVERYTHING_TITLE = "Segment everything: evit-hf's generator against transformers' pipeline and the original's"


def everything_setting(rows: list[dict]) -> str:
    """What a `run_everything` run measured, for its results file (`evit-hf bench sam --everything --json`)."""
    floor = next(r for r in rows if r["kind"] == "floor")
    allocator = "glibc allocator tuned (tune_cpu_allocator)" if floor["allocator_tuned"] else "default allocator"
    return (f"{floor['model']} with random weights (randomize_, seed 0), the astronaut photograph ({floor['image']}), "
            f"a {floor['grid']} point grid, segment-anything's default thresholds (pred_iou 0.88, stability 0.95, "
            f"box NMS 0.7), fp32, {floor['threads']} threads, {allocator}, one call per implementation in one "
            "process; wall ms split by phase, CPU seconds of the process per call")


def format_everything(rows: list[dict]) -> str:
    """The segment-everything table, then the floor and the load of the run."""
    table = markdown_table([r for r in rows if r["kind"] == "everything"], EVERYTHING_COLUMNS)
    floor = next((r for r in rows if r["kind"] == "floor"), None)
    if floor is None:
        return table
    other = floor["other_processes_cores"]
    other = "" if other is None else f", other processes {other:.2f} cores"
    return table + (
        f"\n\nDecoder floor: {floor['stock_gmacs_per_prompt']:.2f} GMACs per prompt (stock decoder) x "
        f"{floor['prompts']} prompts / {floor['gemm_gmacs']:.1f} GMAC/s (fp32 GEMM, "
        f"{floor['gemm_gmacs_start']:.1f} at the start, {floor['gemm_gmacs_end']:.1f} at the end) = "
        f"{floor['floor_ms'] / 1e3:.1f} s ({floor['floor_cpu_s']:.1f} CPU s at the GEMM's rate per CPU second). "
        f"evit-hf's decoder: {floor['ours_tokens_gmacs_per_prompt']:.2f} GMACs "
        f"per prompt + {floor['ours_masks_gmacs_per_kept_prompt']:.2f} per prompt with a kept mask. "
        f"{floor['threads']} threads; load average {floor['loadavg_before']:.2f} -> {floor['loadavg_after']:.2f}"
        f"{other}."
    )
