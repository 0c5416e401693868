"""Release folders: a checkpoint in, a Hub-ready repo folder out (weights, config, processor, code, card).

Original checkpoints go through `evit_hf.convert.folder.convert_to_folder` (strict conversion,
`save_pretrained_with_code`); super-resolution, which has no original checkpoint, is re-saved from a saved
folder (the x2 checkpoint shipped in evit-hf, or a `training/sr.py` output folder) with its training records.
Then the model card is written as README.md. `release_batch` does a folder of original checkpoints named as
`catalog.target_from_filename` reads them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .cards import SRRun, render_card
from .catalog import ReleaseTarget, checkpoint_files, get_target, target_from_filename
from .stats import compute_stats

# Files of a training run that travel with a super-resolution release (its own records of how it was made).
SR_RECORDS = ("eval_results.json", "training_args.yaml")
# Architecture fields that must match the preset for an SR folder to be released under the preset's name.
_SR_FIELDS = ("upscale", "hidden_size", "num_blocks", "attention_head_dim", "attention_scales", "expand_ratio",
              "upsampler", "upsampler_hidden_size", "norm_type")


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"Output {str(out)!r} exists and is not a folder.")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"Output folder {str(out)!r} is not empty (pass --overwrite to write into it anyway).")


def release_checkpoint(
    variant: str,
    checkpoint: str | os.PathLike | None,
    out: str | os.PathLike,
    org: str | None = None,
    resolution: int | None = None,
    timm: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write the release folder of `variant` from `checkpoint` into `out`; returns `out`.

    `checkpoint`: an original (or, with `timm`, a timm) checkpoint file (None: the authors' released file, or
    timm's mirror, downloaded); for super-resolution presets a saved folder (None: the x2 checkpoint shipped in
    evit-hf, for `sr-light-x2`). `resolution`: classifiers only,
    the checkpoint's evaluation resolution (default 224). `org` names the repo in the card's snippets.
    """
    target = get_target(variant, resolution)
    out = Path(out)
    if target.family == "sr":
        return release_sr_folder(target, checkpoint, out, org, overwrite)
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise ValueError(f"Checkpoint {str(checkpoint)!r} does not exist or is not a file.")
    _prepare_out(out, overwrite)
    if checkpoint is None:  # the authors' released file, downloaded and converted once (`evit_hf.hub`)
        from ..hub import prepare
        from ..hub.catalog import released_for_target

        shutil.copytree(prepare(released_for_target(target, timm)), out, dirs_exist_ok=True)
    else:
        from ..convert.folder import convert_to_folder

        convert_to_folder(variant, Path(checkpoint), out, timm=timm,
                          resolution=target.resolution if target.family == "cls" else None)
    (out / "README.md").write_text(render_card(target, compute_stats(target), org))
    return out


def release_sr_folder(
    target: ReleaseTarget,
    source: str | os.PathLike | None,
    out: Path,
    org: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Re-save a super-resolution folder as a release: weights, config, processor, code, records, card."""
    from ..hub_utils import save_pretrained_with_code
    from ..models.efficientvit import EfficientViTSRConfig
    from ..resolve import load_model
    from ..sr_utils import EMBEDDED_SR_NAME, embedded_sr_checkpoint

    if source is None:
        if target.variant != "sr-light-x2":
            raise ValueError(f"No checkpoint of {target.variant} ships with evit-hf: pass --checkpoint with the "
                             f"output folder of training/sr.py.")
        source = embedded_sr_checkpoint()
    source = Path(source)
    if not (source / "config.json").is_file() or not (source / "model.safetensors").is_file():
        raise ValueError(f"A super-resolution release is made from a saved folder with config.json and "
                         f"model.safetensors (e.g. the output of training/sr.py or {EMBEDDED_SR_NAME}); "
                         f"{str(source)!r} is not one.")
    config = EfficientViTSRConfig.from_pretrained(source)
    preset = EfficientViTSRConfig.from_preset(target.variant)
    differences = [f"{field} {getattr(config, field)!r} (preset {getattr(preset, field)!r})"
                   for field in _SR_FIELDS if getattr(config, field) != getattr(preset, field)]
    if differences:
        raise ValueError(f"The folder {str(source)!r} does not hold a {target.variant} model: "
                         + "; ".join(differences))
    _prepare_out(out, overwrite)
    model, processor, _ = load_model(source, "image-to-image")
    save_pretrained_with_code(model, out, image_processor=processor)
    for name in SR_RECORDS:
        if (source / name).is_file():
            shutil.copyfile(source / name, out / name)
    run = SRRun.from_folder(out)
    (out / "README.md").write_text(render_card(target, compute_stats(target, run.config), org, run))
    return out


def release_batch(
    checkpoints_dir: str | os.PathLike,
    out_root: str | os.PathLike,
    org: str | None = None,
    timm: bool = False,
    overwrite: bool = False,
) -> list[Path]:
    """Release every original checkpoint in `checkpoints_dir` to `out_root/<repo name>/`.

    Every file name is checked before anything is converted (an unknown name or two files for one repo stop
    the batch with nothing written).
    """
    planned: dict[str, tuple[Path, ReleaseTarget]] = {}
    for path in checkpoint_files(checkpoints_dir):
        target = target_from_filename(path)
        if target.name in planned:
            raise ValueError(f"{planned[target.name][0].name!r} and {path.name!r} are both {target.name}.")
        planned[target.name] = (path, target)
    out_root = Path(out_root)
    return [
        release_checkpoint(target.variant, path, out_root / name, org,
                           target.resolution if target.family == "cls" else None, timm, overwrite)
        for name, (path, target) in planned.items()
    ]
