"""`evit-hf bench pipeline`: what a pipeline user gets, end to end, next to the model's own forward pass.

Owns the pipeline benchmark. Per task (classification, Cityscapes and ADE20K segmentation, SAM with one point
or one box, super-resolution) and per process environment, a fresh Python process (OpenMP and glibc read their
settings when they load) builds the task's public path on a photograph scikit-image ships (random weights),
and times round-robin, in that one process: the whole pipeline call, the model's forward pass alone (on the
processor's inputs), the pre-processing and the post-processing. The environments:

- "evit-hf defaults": a plain `import evit_hf` (it applies `evit_hf.cpu_defaults`);
- "tuned by hand": the benchmarks' setting, `GOMP_SPINCOUNT=10000000` before Python starts and
  `tune_cpu_allocator()` (evit-hf's defaults switched off, so only the hand tuning acts);
- "no tuning": `EVIT_HF_CPU_DEFAULTS=0`, what users got before the defaults.

The rows carry end-to-end / forward and, per task, the defaults' end-to-end time over the hand-tuned one, and
the 1-minute load average before and after each process (the machine may be shared: compare ratios).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass

from ..cpu_defaults import OPT_OUT_ENV
from .core import fresh_process_row, markdown_table, time_round_robin


@dataclass(frozen=True)
class PipelineCase:
    """One task as a user runs it: a random-weights preset, a photograph and its size (width, height)."""

    task: str
    preset: str
    photo: str
    size: tuple[int, int]
    prompt: str = ""


CASES: dict[str, PipelineCase] = {
    "cls": PipelineCase("image-classification", "b1", "chelsea", (451, 300)),
    "seg-cityscapes": PipelineCase("image-segmentation", "seg-b1-cityscapes", "astronaut", (2048, 1024)),
    "seg-ade20k": PipelineCase("image-segmentation", "seg-b1-ade20k", "coffee", (600, 400)),
    "sam-point": PipelineCase("mask-generation", "sam-l0", "astronaut", (512, 512), "point"),
    "sam-box": PipelineCase("mask-generation", "sam-l0", "astronaut", (512, 512), "box"),
    "sr": PipelineCase("image-super-resolution", "sr-light-x2", "astronaut", (512, 512)),
}

# name -> (environment overrides, call tune_cpu_allocator in the process)
ENVIRONMENTS: dict[str, tuple[dict[str, str], bool]] = {
    "evit-hf defaults": ({}, False),
    "tuned by hand": ({"GOMP_SPINCOUNT": "10000000", OPT_OUT_ENV: "0"}, True),
    "no tuning": ({OPT_OUT_ENV: "0"}, False),
}


def photograph(name: str, size: tuple[int, int]):
    """scikit-image's photograph `name` as an RGB PIL image of `size` (width, height), bicubic."""
    import PIL.Image
    from skimage import data

    return PIL.Image.fromarray(getattr(data, name)()).convert("RGB").resize(size, PIL.Image.Resampling.BICUBIC)


def stage_functions(case: PipelineCase) -> dict[str, Callable[[], object]]:
    """The four timed calls of `case`: "end to end", "forward", "pre", "post" (random weights, seed 0)."""
    import warnings

    import torch

    from ..resolve import load_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, processor, _ = load_model(f"random:{case.preset}", seed=0)
    image = photograph(case.photo, case.size)
    if case.task == "mask-generation":  # no transformers pipeline takes prompts: processor -> model -> masks
        width, height = case.size
        prompt = ({"input_points": [[[[width // 2, height // 2]]]]} if case.prompt == "point"
                  else {"input_boxes": [[[width // 4, height // 4, 3 * width // 4, 3 * height // 4]]]})

        def pre():
            return processor(images=image, return_tensors="pt", **prompt)

        def forward(inputs):
            with torch.inference_mode():
                return model(**inputs)

        def post(inputs, outputs):
            return processor.post_process_masks(outputs.pred_masks, inputs["original_sizes"],
                                                inputs["reshaped_input_sizes"])

        inputs = pre()
        outputs = forward(inputs)
        return {"end to end": lambda: post(inputs, forward(pre())), "forward": lambda: forward(inputs),
                "pre": pre, "post": lambda: post(inputs, outputs)}
    from transformers import pipeline

    pipe = pipeline(case.task, model=model, image_processor=processor)
    inputs = processor(image, return_tensors="pt")

    def model_forward():
        with torch.inference_mode():
            return model(pixel_values=inputs["pixel_values"])

    outputs = pipe.forward(pipe.preprocess(image))
    return {"end to end": lambda: pipe(image), "forward": model_forward, "pre": lambda: pipe.preprocess(image),
            "post": lambda: pipe.postprocess(outputs)}


def time_stages(functions: dict[str, Callable[[], object]], budget_s: float, min_rounds: int = 2,
                max_rounds: int = 20) -> dict[str, float | int]:
    """Median ms of every function, timed round-robin after one warm-up call each, until the budget is spent."""
    for fn in functions.values():
        fn()
    times = time_round_robin(functions, budget_s, max_rounds, min_rounds)
    return {**{f"{name.replace(' ', '_')}_ms": statistics.median(values) for name, values in times.items()},
            "rounds": len(times["forward"])}


def _child(case_name: str, budget_s: float, tune: bool) -> dict:
    """The measurement inside one fresh process (run with `python -m evit_hf.bench.pipeline CASE BUDGET TUNE`)."""
    import evit_hf
    from evit_hf.cpu_defaults import tune_cpu_allocator

    tuned_by_hand = tune_cpu_allocator() if tune else False
    import torch

    row = time_stages(stage_functions(CASES[case_name]), budget_s)
    return {**row, "threads": torch.get_num_threads(), "allocator_tuned": bool(
        tuned_by_hand or evit_hf.CPU_DEFAULTS["allocator"]), "spin": os.environ.get("GOMP_SPINCOUNT", "unset")}


def run(cases: list[str] | None = None, environments: list[str] | None = None, budget_s: float = 10.0) -> list[dict]:
    """One row per (case, environment), each measured in a fresh process; cases' rows next to each other."""
    cases = cases or list(CASES)
    environments = environments or list(ENVIRONMENTS)
    unknown = [c for c in cases if c not in CASES] + [e for e in environments if e not in ENVIRONMENTS]
    if unknown:
        raise ValueError(f"Unknown case / environment {unknown}; cases: {', '.join(CASES)}; environments: "
                         f"{', '.join(ENVIRONMENTS)}.")
    rows = []
    for case_name in cases:
        case = CASES[case_name]
        for environment in environments:
            overrides, tune = ENVIRONMENTS[environment]
            load_before = os.getloadavg()[0]
            row = fresh_process_row(["-m", "evit_hf.bench.pipeline", case_name, str(budget_s), "1" if tune else "0"],
                                    overrides, f"{case_name} ({environment})")
            row.update(case=case_name, model=case.preset, input=f"{case.size[0]}x{case.size[1]} {case.photo}",
                       environment=environment, load_1min=f"{load_before:.1f} / {os.getloadavg()[0]:.1f}")
            row["end_to_end_per_forward"] = row["end_to_end_ms"] / row["forward_ms"]
            rows.append(row)
        tuned = [r for r in rows if r["case"] == case_name and r["environment"] == "tuned by hand"]
        for row in rows:
            if row["case"] == case_name and tuned:
                row["vs_tuned"] = row["end_to_end_ms"] / tuned[0]["end_to_end_ms"]
    return rows


# The results file of a run (`evit-hf bench pipeline --json FILE`, docs/results/bench-pipeline.json).
TITLE = "Pipelines end to end against their forward pass, in a default and a tuned process"
SETTING = ("random weights (seed 0), batch 1, fp32, eval, torch.inference_mode, torch's default threads; each row a "
           "fresh process timing its four calls round-robin (medians; warm-up not timed); photographs from "
           "scikit-image resized to the listed size; SAM: processor with one point (centre) or one box (central "
           "half), model, post_process_masks; SR: the pipeline's default tiles (512)")
NOTES = ["pipeline / tuned: this process's pipeline time over the hand-tuned process's, for the same task; it "
         "compares separate processes, so on a shared machine it carries the load of the moment (last column), "
         "where pipeline / forward is measured within one process."]


COLUMNS = [
    ("case", "task"), ("model", "model (random weights)"), ("input", "image"), ("environment", "process"),
    ("end_to_end_ms", "pipeline ms"), ("forward_ms", "forward ms"), ("pre_ms", "pre ms"), ("post_ms", "post ms"),
    ("end_to_end_per_forward", "pipeline / forward"), ("vs_tuned", "pipeline / tuned pipeline"),
    ("rounds", "rounds"), ("load_1min", "load (1 min, before / after)"),
]


def format_table(rows: list[dict]) -> str:
    return markdown_table(rows, COLUMNS) + (
        "\n\nEach row: a fresh process; its four timings round-robin in that process (medians). "
        "evit-hf defaults: plain `import evit_hf`; tuned by hand: GOMP_SPINCOUNT=10000000 + tune_cpu_allocator(); "
        "no tuning: EVIT_HF_CPU_DEFAULTS=0.")


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1], float(sys.argv[2]), sys.argv[3] == "1")))


__all__ = ["CASES", "COLUMNS", "ENVIRONMENTS", "NOTES", "SETTING", "TITLE", "PipelineCase", "format_table",
           "photograph", "run", "stage_functions", "time_stages"]
