"""Model cards: the README.md of a release repo, from the templates and what is known about the target.

`render_card` fills `templates.CARD` for one target: YAML front matter (`library_name`, `license`, `tags`,
`pipeline_tag`, `datasets`, `model-index` with the results marked as not verified and their source), the
description, intended use and limitations, two usage snippets (with and without evit-hf), the preprocessing
read from the processor the repo ships, the labels, the results (the original authors' numbers labelled
"reported by the original authors (not re-measured)"; for super-resolution, the numbers the training run
measured here), params and MACs counted from the model, CPU latency from the measurement files
(`docs/results/*.json`, through `latency`) with their setting, provenance, license and citation. `write_cards`
writes one card per repo name.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from string import Template

import yaml

from . import latency, templates
from .catalog import ReleaseTarget, all_targets
from .models import default_config, image_processor
from .reported import SOURCE_NAME, SOURCE_URL, Reported, reported_results
from .stats import STATS_FILE, ModelStats, compute_stats, counted_part, input_size, load_stats, save_stats

REPORTED_LABEL = "reported by the original authors (not re-measured)"

_TASKS = {  # family -> (pipeline tag, model-index task type, task name)
    "cls": ("image-classification", "image-classification", "Image Classification"),
    "seg": ("image-segmentation", "image-segmentation", "Semantic Segmentation"),
    "sam": ("mask-generation", "mask-generation", "Zero-shot instance segmentation (box prompts)"),
    "sr": ("image-to-image", "image-to-image", "Image Super-Resolution"),
}
_DATASETS = {
    "cls": ["imagenet-1k"],
    "seg-cityscapes": ["cityscapes"],
    "seg-ade20k": ["scene_parse_150"],
    "sam": ["sa-1b"],
    "sr": [],
}
_SEG_DATASETS = {  # dataset -> (name, use case, scope, evaluation size)
    "cityscapes": ("Cityscapes", "urban street scenes (a car's forward view)",
                   "street scenes from 50 mostly German cities, daytime, good weather", "1024x2048"),
    "ade20k": ("ADE20K", "indoor and outdoor scenes", "the 150 most frequent ADE20K scene-parsing classes",
               "a short side of 512 pixels"),
}


@dataclass(frozen=True)
class SRRun:
    """What a super-resolution folder says about how it was trained and evaluated (its own files)."""

    config: object
    eval_results: dict | None
    training_args: dict | None

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> SRRun:
        from ..models.efficientvit import EfficientViTSRConfig

        folder = Path(folder)
        eval_path, args_path = folder / "eval_results.json", folder / "training_args.yaml"
        return cls(
            config=EfficientViTSRConfig.from_pretrained(folder),
            eval_results=json.loads(eval_path.read_text()) if eval_path.is_file() else None,
            training_args=yaml.safe_load(args_path.read_text()) if args_path.is_file() else None,
        )


def _gmacs(macs: int) -> str:
    g = macs / 1e9
    return f"{g:.3f}" if g < 1 else f"{g:.2f}" if g < 100 else f"{g:.1f}"


def _size(target: ReleaseTarget, config) -> str:
    height, width = input_size(target, config)
    return f"{height}x{width}"


def _millions(count: int) -> str:
    return f"{count / 1e6:.2f} M"


def _bullets(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


def _fill(template: Template, **fields) -> str:
    return template.substitute(**fields)


def _fields(target: ReleaseTarget, config, sr: SRRun | None) -> dict[str, object]:
    """Values the family templates use ($MODEL, $resolution, $dataset_name, ...)."""
    fields: dict[str, object] = {"MODEL": target.model.upper(), "resolution": target.resolution,
                                 "variant": target.variant}
    if target.family == "seg":
        name, use_case, scope, eval_size = _SEG_DATASETS[target.dataset]
        block = config.segmentation_head_block
        block = {"mb": "MBConv", "fmb": "FusedMBConv"}.get(block, block)
        head = f"{config.segmentation_head_depth} {block} blocks of width {config.segmentation_head_width}"
        if config.segmentation_final_expand:
            head += f", a 1x1 expansion to {config.segmentation_head_width * config.segmentation_final_expand} channels"
        fields.update(dataset_name=name, use_case=use_case, dataset_scope=scope, eval_size=eval_size,
                      head_blocks=head, num_labels=len(config.id2label))
    elif target.family == "sam":
        from ..models.efficientvit import SAM_PRESETS

        fields.update(BACKBONE=SAM_PRESETS[target.variant]["backbone"].upper(),
                      encoder_size=int(config.vision_config.image_size))
    elif target.family == "sr":
        fields.update(upscale=config.upscale, num_blocks=config.num_blocks, hidden_size=config.hidden_size,
                      train_description=_sr_train_description(sr))
    return fields


def _sr_train_description(sr: SRRun | None) -> str:
    args = (sr.training_args or {}) if sr else {}
    if args.get("dataset") == "skimage-photos":
        from ..data.photos import TRAIN_PHOTOS

        return f"the {len(TRAIN_PHOTOS)} photographs that scikit-image ships (a tiny dataset)"
    return f"the `{args['dataset']}` dataset" if args.get("dataset") else "an unrecorded dataset"


def _front_matter(target: ReleaseTarget, results: list[dict]) -> str:
    pipeline_tag = _TASKS[target.family][0]
    datasets = _DATASETS.get(f"seg-{target.dataset}" if target.family == "seg" else target.family, [])
    tags = ["efficientvit", "evit-hf", "vision", pipeline_tag]
    tags += {"seg": ["semantic-segmentation", target.dataset or ""], "sam": ["segment-anything", "sam"],
             "sr": ["super-resolution"], "cls": ["imagenet"]}[target.family]
    meta: dict[str, object] = {"library_name": "transformers", "license": "apache-2.0", "pipeline_tag": pipeline_tag,
                               "tags": tags}
    if datasets:
        meta["datasets"] = datasets
    if results:
        meta["model-index"] = [{"name": target.name, "results": results}]
    return yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)


def _model_index(target: ReleaseTarget, reported: tuple[Reported, ...], sr: SRRun | None) -> list[dict]:
    _, task_type, task_name = _TASKS[target.family]
    results: list[dict] = []
    for dataset in dict.fromkeys((r.dataset, r.dataset_type, r.split) for r in reported):
        metrics = [{"type": r.metric, "value": r.value, "name": f"{r.name}, {REPORTED_LABEL}", "verified": False}
                   for r in reported if (r.dataset, r.dataset_type, r.split) == dataset]
        results.append({
            "task": {"type": task_type, "name": task_name},
            "dataset": {"name": dataset[0], "type": dataset[1], "split": dataset[2]},
            "metrics": metrics,
            "source": {"name": SOURCE_NAME, "url": SOURCE_URL},
        })
    if sr and sr.eval_results:
        scale = sr.config.upscale
        measured = "measured by evit-hf's training run on held-out images, not by the original authors"
        results.append({
            "task": {"type": task_type, "name": task_name},
            "dataset": {"name": _sr_eval_dataset(sr), "type": (sr.training_args or {}).get("dataset", "unknown"),
                        "split": (sr.training_args or {}).get("eval_split", "validation")},
            "metrics": [
                {"type": "psnr", "value": round(sr.eval_results["psnr_y"], 2),
                 "name": f"PSNR-Y dB, border {scale}, {measured}", "verified": False},
                {"type": "ssim", "value": round(sr.eval_results["ssim_y"], 4),
                 "name": f"SSIM-Y, border {scale}, {measured}", "verified": False},
            ],
            "source": {"name": "evit-hf training/sr.py evaluation (eval_results.json in this repo)"},
        })
    return results


def _sr_eval_dataset(sr: SRRun) -> str:
    args = sr.training_args or {}
    if args.get("dataset") == "skimage-photos":
        from ..data.photos import HELD_OUT_PHOTOS

        return f"scikit-image photographs, held out ({', '.join(HELD_OUT_PHOTOS)})"
    return f"{args.get('dataset', 'unknown')} ({args.get('eval_split', 'validation')} split)"


def _results(target: ReleaseTarget, reported: tuple[Reported, ...], sr: SRRun | None) -> str:
    if target.family == "sr":
        if not (sr and sr.eval_results):
            return "No evaluation results were saved with this checkpoint."
        r, scale = sr.eval_results, sr.config.upscale
        return "\n".join([
            f"Measured by evit-hf's training run (`eval_results.json`), not by the original authors: "
            f"{_sr_eval_dataset(sr)}, each downscaled x{scale} with bicubic interpolation and upscaled back; "
            f"PSNR and SSIM on the luma (Y) channel, {scale}-pixel border cropped, mean over {r.get('images', '?')} "
            f"images.",
            "",
            "| method | PSNR-Y (dB) | SSIM-Y |",
            "|---|---|---|",
            f"| bicubic | {r['bicubic_psnr_y']:.2f} | {r['bicubic_ssim_y']:.4f} |",
            f"| this model | {r['psnr_y']:.2f} | {r['ssim_y']:.4f} |",
        ])
    if not reported:
        return (f"The original authors published no accuracy for this checkpoint (EfficientViT-{target.model.upper()} "
                f"is registered in their model zoo but absent from their result tables), so none is given here.")
    lines = [f"Numbers {REPORTED_LABEL}, from the original README:", "",
             "| dataset | split | protocol | metric | value |", "|---|---|---|---|---|"]
    lines += [f"| {r.dataset} | {r.split} | {r.protocol} | {r.name} | {r.value:g} |" for r in reported]
    return "\n".join(lines)


def _preprocessing(target: ReleaseTarget, processor) -> str:
    mean = ", ".join(f"{v:g}" for v in processor.image_mean) if getattr(processor, "image_mean", None) else ""
    std = ", ".join(f"{v:g}" for v in processor.image_std) if getattr(processor, "image_std", None) else ""
    cls_name = f"`{type(processor).__name__}` (`preprocessor_config.json`)"
    if target.family == "cls":
        from ..models.efficientvit.image_processing_efficientvit import CROP_PCT

        short, crop, ratio = processor.size["shortest_edge"], processor.crop_size["height"], CROP_PCT[target.model]
        return (f"{cls_name} reproduces the original evaluation: RGB, bicubic resize of the shorter side to {short} "
                f"(= ceil({crop} / {ratio:g}), crop ratio {ratio:g}), center crop {crop}x{crop}, rescale to [0, 1], "
                f"normalise with mean ({mean}) and std ({std}).")
    if target.family == "seg":
        if "height" in processor.size:
            resize = f"bicubic resize to {processor.size['height']}x{processor.size['width']} (height x width)"
        else:
            resize = (f"bicubic resize of the shorter side to {processor.size['shortest_edge']} and of the longer side "
                      f"to the next multiple of {processor.size_divisor} of its scaled length")
        return (f"{cls_name} reproduces the original evaluation: RGB, {resize}, rescale to [0, 1], normalise with "
                f"mean ({mean}) and std ({std}). `post_process_semantic_segmentation(outputs, target_sizes)` "
                f"upsamples the stride-8 logits (bicubic) and takes the argmax."
                + (" `do_reduce_labels` maps label 0 (\"other\") to the ignore index 255 for training."
                   if processor.do_reduce_labels else ""))
    if target.family == "sam":
        return (f"{cls_name}, as the original predictor: RGB, bilinear resize of the longest side to "
                f"{processor.encoder_size}, rescale to [0, 1], normalise with mean ({mean}) and std ({std}), zero-pad "
                f"bottom/right to {processor.encoder_size}x{processor.encoder_size}. Point and box prompts are given "
                f"in image pixels and mapped to the 1024-pixel prompt frame; `post_process_masks` upsamples the "
                f"256x256 mask logits, crops the padding and resizes them to the image.")
    return (f"{cls_name}: RGB (transparent pixels composited on white, 16-bit images scaled to 8 bits), rescale to "
            f"[0, 1]; no resizing or normalisation. The pipeline crops the optional padding away and returns a "
            f"uint8 PIL image (clamped, rounded).")


def _labels(target: ReleaseTarget, config) -> str:
    if target.family in ("sam", "sr"):
        return ("None: masks are class-agnostic." if target.family == "sam"
                else "None: the model maps images to images.")
    names = [config.id2label[i] for i in range(len(config.id2label))]
    if target.family == "cls":
        return (f"The {len(names)} ImageNet-1k classes in `config.json` (`id2label`, WordNet lemmas in the standard "
                f"index order): 0 `{names[0]}`, 1 `{names[1]}`, 2 `{names[2]}`, ..., {len(names) - 1} `{names[-1]}`.")
    listed = ", ".join(f"{i} `{name}`" for i, name in enumerate(names))
    dataset = _SEG_DATASETS[target.dataset][0]
    if len(names) <= 30:
        return f"The {len(names)} {dataset} classes (`config.json` `id2label`): {listed}."
    return (f"The {len(names)} {dataset} classes in `config.json` (`id2label`).\n\n<details><summary>All "
            f"{len(names)} names</summary>\n\n{listed}\n\n</details>")


def _size_speed(target: ReleaseTarget, stats: ModelStats, config) -> str:
    lines = [f"Parameters: {stats.params:,} ({_millions(stats.params)}), counted from the model."]
    if stats.encoder_params is not None:
        lines.append(f"Image encoder parameters: {stats.encoder_params:,} ({_millions(stats.encoder_params)}).")
    lines.append(f"MACs: {_gmacs(stats.macs)} G at {_size(target, config)} input ({counted_part(target)}), "
                 "counted with `torch.utils.flop_counter.FlopCounterMode` (convs, matmuls and linears; "
                 "interpolation and elementwise ops excluded).")
    bench_model = target.model if target.family == "cls" else target.variant
    table, rows = latency.timings(target.family, bench_model)
    text = _bullets(lines)
    if not rows:
        return text + "\n\nNo CPU latency was measured for this model."
    text += (f"\n\nCPU latency measured by `{table.command}` on {table.results.date} (evit-hf's "
             f"`docs/results/{table.results.name}.json`, on its benchmarks page): {table.setting}.\n\n"
             "| input | median ms | min ms | runs | compared with |\n|---|---|---|---|---|\n")
    text += "\n".join(f"| {r.input} | {r.median_ms:.1f} | {r.min_ms:.1f} | {r.runs} | {r.comparison or '-'} |"
                      for r in rows)
    notes = [table.note]
    if any(r.comparison for r in rows):
        notes.insert(0, "Ratios are a peer's latency divided by this model's, both measured in the same run (above 1: "
                        "this model is faster).")
    if target.family == "sr" and config.hidden_act != _preset_act(target):
        notes.append(f"This checkpoint's config uses `{config.hidden_act}`, not the preset's "
                     f"`{_preset_act(target)}` that was timed (evit-hf's super-resolution docs note that exact GELU "
                     f"is 4x faster on CPU): expect this checkpoint to run slower than the table.")
    return text + "\n\n" + " ".join(notes)


def _preset_act(target: ReleaseTarget) -> str:
    return default_config(target).hidden_act


def _provenance(target: ReleaseTarget, sr: SRRun | None) -> str:
    if target.family == "sr":
        args = (sr.training_args or {}) if sr else {}
        results = (sr.eval_results or {}) if sr else {}
        if not args:
            return "Saved with evit-hf; the folder came without a record of its training run."
        steps, seconds = results.get("global_step"), results.get("train_seconds")
        run = [f"Trained from scratch by evit-hf's `training/sr.py` on {_sr_train_description(sr)}",
               f"{args.get('patch_size')}x{args.get('patch_size')} high-resolution patches, low-resolution inputs "
               f"by bicubic downscaling",
               f"batch {args.get('batch_size')}, AdamW lr {args.get('learning_rate'):g}, "
               f"{args.get('num_epochs')} epochs" + (f" ({steps} steps)" if steps else ""),
               "L1 loss" + (f", {seconds / 60:.0f} minutes of training" if seconds else "")]
        return ("; ".join(run) + ". `training_args.yaml` and `eval_results.json` in this repo are the run's own "
                "records. The original EfficientViT authors released no super-resolution code or weights.")
    command = f"evit-hf release --variant {target.variant}"
    if target.family == "cls":
        command += f" --resolution {target.resolution}"
    command += f" --checkpoint {target.original_file}"
    return (f"Converted from the original checkpoint [`{target.original_file}`]({target.original_url}) "
            f"(mit-han-lab/efficientvit) with `{command}`. The converter renames the original keys by rule and "
            f"loads them strictly (every tensor used, none missing). evit-hf's test suite compares the converted "
            f"models with the original implementation on deterministic full-size weights for every released "
            f"variant (max abs difference of the outputs below 1e-4).")


def _title(target: ReleaseTarget, config) -> str:
    if target.family == "cls":
        return f"EfficientViT-{target.model.upper()} (ImageNet-1k, {target.resolution}x{target.resolution})"
    if target.family == "seg":
        return f"EfficientViT-Seg-{target.model.upper()} ({_SEG_DATASETS[target.dataset][0]})"
    if target.family == "sam":
        return f"EfficientViT-SAM-{target.model.upper()}"
    return f"EfficientViT-SR {target.variant} (x{config.upscale} super-resolution)"


def _facts(target: ReleaseTarget, stats: ModelStats, config) -> str:
    task = {"cls": "image classification (ImageNet-1k, 1000 classes)",
            "seg": f"semantic segmentation ({_SEG_DATASETS.get(target.dataset, ('',))[0]})",
            "sam": "promptable segmentation (segment anything)",
            "sr": "image super-resolution"}[target.family]
    rows = [("task", task), ("evit-hf variant", f"`{target.variant}`"),
            ("parameters", _millions(stats.params)),
            ("MACs", f"{_gmacs(stats.macs)} G at {_size(target, config)} ({counted_part(target)})")]
    if target.original_file:
        rows.append(("original checkpoint", f"[`{target.original_file}`]({target.original_url})"))
    rows.append(("license", "Apache-2.0"))
    return "| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def render_card(
    target: ReleaseTarget, stats: ModelStats, org: str | None = None, sr: SRRun | None = None
) -> str:
    """The README.md of `target`'s repo. `sr` (super-resolution only) is what the released folder records."""
    if target.family == "sr" and sr is None:
        raise ValueError("A super-resolution card needs the released folder's config (SRRun.from_folder).")
    config = sr.config if sr else default_config(target)
    reported = reported_results(target.variant, target.resolution)
    fields = _fields(target, config, sr)
    repo_id = target.repo_id(org)
    origin = ("trained and saved by evit-hf" if target.family == "sr"
              else "trained by the original authors (MIT Han Lab), converted by evit-hf")
    summary = (f"`{repo_id}`: {origin} to the Hugging Face `transformers` format: safetensors weights, "
               f"`config.json`, the image processor, and the model code, so it loads with `from_pretrained` with "
               f"evit-hf installed or with `trust_remote_code=True` without it.")
    return templates.CARD.substitute(
        front_matter=_front_matter(target, _model_index(target, reported, sr)),
        title=_title(target, config),
        summary=summary,
        facts=_facts(target, stats, config),
        description=_fill(templates.DESCRIPTION[target.family], **fields),
        intended_use=_fill(templates.INTENDED_USE[target.family], **fields),
        snippet=_fill(templates.SNIPPET[target.family], repo_id=repo_id, **fields),
        snippet_remote=_fill(templates.SNIPPET_REMOTE[target.family], repo_id=repo_id),
        preprocessing=_preprocessing(target, image_processor(target)),
        labels=_labels(target, config),
        results=_results(target, reported, sr),
        size_speed=_size_speed(target, stats, config),
        provenance=_provenance(target, sr),
        citation=templates.CITATION_EFFICIENTVIT
        + ("\n\n" + templates.CITATION_SAM if target.family == "sam" else ""),
    )


def write_cards(
    out: str | os.PathLike,
    org: str | None = None,
    sr_folders: dict[str, Path] | None = None,
    reuse_stats: bool = True,
) -> list[Path]:
    """Write `out/<repo name>/README.md` for every release target, and `out/model_stats.json`.

    Stats already in `out/model_stats.json` are reused when `reuse_stats` (counting all of them takes ~20 s);
    `sr_folders` maps SR presets to their checkpoint folders (default: the x2 checkpoint shipped in evit-hf).
    """
    from ..sr_utils import embedded_sr_checkpoint

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sr_folders = {"sr-light-x2": embedded_sr_checkpoint(), **(sr_folders or {})}
    stored = load_stats(out / STATS_FILE) if reuse_stats else {}
    stats, written = {}, []
    for target in all_targets():
        sr = SRRun.from_folder(sr_folders[target.variant]) if target.family == "sr" else None
        stats[target.name] = stored.get(target.name) or compute_stats(target, sr.config if sr else None)
        path = out / target.name / "README.md"
        path.parent.mkdir(exist_ok=True)
        path.write_text(render_card(target, stats[target.name], org, sr))
        written.append(path)
    save_stats(stats, out / STATS_FILE)
    return written
