"""What can be released and under which name: the release targets and the repo naming scheme.

Owns the list of Hub repos (one per original checkpoint, plus the super-resolution checkpoints trained here),
the naming rule users type (`{org}/efficientvit-b1-r224`, `{org}/efficientvit-seg-l2-cityscapes`,
`{org}/efficientvit-sam-xl1`, `{org}/efficientvit-sr-light-x2`), the default organisation (`--org`, else the
`EVIT_HF_ORG` environment variable, else `evit-hf`), and the batch rule that maps an original checkpoint's
file name to its target.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ORG = "evit-hf"
ORG_ENV = "EVIT_HF_ORG"

# Every resolution with its own original ImageNet checkpoint (han-cai/efficientvit-cls; the original zoo also
# registers efficientvit_b0_r224.pt). The first one is the default of `evit-hf release --variant cls-*`.
CLS_RESOLUTIONS: dict[str, tuple[int, ...]] = {
    "b0": (224,),
    "b1": (224, 256, 288),
    "b2": (224, 256, 288),
    "b3": (224, 256, 288),
    "l1": (224,),
    "l2": (224, 256, 288, 320, 384),
    "l3": (224, 256, 288, 320, 384),
}
SEG_VARIANTS: tuple[str, ...] = (
    "seg-b0-cityscapes", "seg-b1-cityscapes", "seg-b2-cityscapes", "seg-b3-cityscapes", "seg-l1-cityscapes",
    "seg-l2-cityscapes", "seg-b1-ade20k", "seg-b2-ade20k", "seg-b3-ade20k", "seg-l1-ade20k", "seg-l2-ade20k",
)
SAM_VARIANTS: tuple[str, ...] = ("sam-l0", "sam-l1", "sam-l2", "sam-xl0", "sam-xl1")
# Super-resolution has no original checkpoint: a release is made from a saved folder (the x2 checkpoint
# shipped in the package, or the output folder of `training/sr.py`). Presets with a trained checkpoint:
SR_RELEASED: tuple[str, ...] = ("sr-light-x2",)
FAMILIES = ("cls", "seg", "sam", "sr")

_HUB_BASE = "https://huggingface.co"
# Family -> the original authors' Hub repo of its checkpoints (`original_file` names the file in it).
_ORIGINAL_REPOS = {"cls": "han-cai/efficientvit-cls", "seg": "han-cai/efficientvit-seg",
                   "sam": "mit-han-lab/efficientvit-sam"}
_CHECKPOINT_FILES = (".pt", ".pth", ".safetensors")


@dataclass(frozen=True)
class ReleaseTarget:
    """One Hub repo: which model it holds and where its weights came from."""

    variant: str                 # converter variant (`cls-b1`, `seg-l2-cityscapes`, `sam-xl1`) or SR preset
    family: str                  # "cls", "seg", "sam" or "sr"
    resolution: int | None = None  # classification only: the evaluation resolution of the checkpoint

    @property
    def name(self) -> str:
        """The repo name without the organisation, e.g. `efficientvit-b1-r224`."""
        if self.family == "cls":
            return f"efficientvit-{self.variant.removeprefix('cls-')}-r{self.resolution}"
        return f"efficientvit-{self.variant}"

    @property
    def model(self) -> str:
        """The short model name used in card titles: `b1`, `l2`, `l0`, ... (`sr-light-x2` for SR)."""
        if self.family == "sr":
            return self.variant
        return self.variant.split("-")[1]

    @property
    def dataset(self) -> str | None:
        """`cityscapes` / `ade20k` for segmentation, None otherwise."""
        return self.variant.rsplit("-", 1)[-1] if self.family == "seg" else None

    @property
    def original_file(self) -> str | None:
        """The original checkpoint's file name (None for SR: there is none)."""
        if self.family == "cls":
            return f"efficientvit_{self.model}_r{self.resolution}.pt"
        if self.family == "seg":
            return f"efficientvit_seg_{self.model}_{self.dataset}.pt"
        if self.family == "sam":
            return f"efficientvit_sam_{self.model}.pt"
        return None

    @property
    def original_repo(self) -> str | None:
        """The Hub repo where the original authors publish that checkpoint (None for SR)."""
        return _ORIGINAL_REPOS.get(self.family)

    @property
    def original_url(self) -> str | None:
        """Where the original authors publish that checkpoint."""
        repo = self.original_repo
        return f"{_HUB_BASE}/{repo}/resolve/main/{self.original_file}" if repo else None

    def repo_id(self, org: str | None = None) -> str:
        return f"{resolve_org(org)}/{self.name}"


def resolve_org(org: str | None = None) -> str:
    """`org`, else `$EVIT_HF_ORG`, else `evit-hf`; rejects names the Hub would not accept."""
    org = org or os.environ.get(ORG_ENV) or DEFAULT_ORG
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}", org):
        raise ValueError(f"Invalid Hub organisation {org!r}: use letters, digits, '-', '_' or '.'.")
    return org


def all_targets() -> list[ReleaseTarget]:
    """Every repo of a full release, in a stable order: cls (each resolution), seg, SAM, SR."""
    targets = [ReleaseTarget(f"cls-{m}", "cls", r) for m, resolutions in CLS_RESOLUTIONS.items() for r in resolutions]
    targets += [ReleaseTarget(v, "seg") for v in SEG_VARIANTS]
    targets += [ReleaseTarget(v, "sam") for v in SAM_VARIANTS]
    targets += [ReleaseTarget(v, "sr") for v in SR_RELEASED]
    return targets


def _sr_presets() -> tuple[str, ...]:
    from ..models.efficientvit import SR_PRESETS

    return tuple(SR_PRESETS)


def get_target(variant: str, resolution: int | None = None) -> ReleaseTarget:
    """The target of `variant` (`cls-b1`, `seg-l2-cityscapes`, `sam-xl1`, `sr-light-x2`, ...).

    Classification takes `resolution` (default: the first released one, 224); other families reject it.
    """
    if variant.startswith("cls-"):
        model = variant.removeprefix("cls-")
        if model not in CLS_RESOLUTIONS:
            raise ValueError(f"Unknown variant {variant!r}. {_known()}")
        released = CLS_RESOLUTIONS[model]
        resolution = released[0] if resolution is None else resolution
        if resolution not in released:
            raise ValueError(
                f"There is no original {variant} checkpoint at resolution {resolution}; released resolutions: "
                f"{', '.join(map(str, released))}."
            )
        return ReleaseTarget(variant, "cls", resolution)
    family = variant.split("-", 1)[0]
    known = {"seg": SEG_VARIANTS, "sam": SAM_VARIANTS, "sr": _sr_presets()}.get(family, ())
    if variant not in known:
        raise ValueError(f"Unknown variant {variant!r}. {_known()}")
    if resolution is not None:
        raise ValueError(f"--resolution applies to classification variants only, not {variant!r}.")
    return ReleaseTarget(variant, family)


def _known() -> str:
    cls = ", ".join(f"cls-{m}" for m in CLS_RESOLUTIONS)
    return f"Known variants: {cls}, {', '.join(SEG_VARIANTS)}, {', '.join(SAM_VARIANTS)}, {', '.join(_sr_presets())}."


_FILE_PATTERNS = (
    (re.compile(r"^efficientvit-(b[0-3]|l[1-3])-r(\d+)$"), lambda m: get_target(f"cls-{m[1]}", int(m[2]))),
    (re.compile(r"^efficientvit-seg-(b[0-3]|l[12])-(cityscapes|ade20k)$"), lambda m: get_target(f"seg-{m[1]}-{m[2]}")),
    (re.compile(r"^efficientvit-sam-(l[0-2]|xl[01])$"), lambda m: get_target(f"sam-{m[1]}")),
)


def target_from_filename(path: str | os.PathLike) -> ReleaseTarget:
    """The batch rule: an original checkpoint file name names its target.

    The stem, lower-cased with `_` read as `-`, must be an original file name (`efficientvit_b1_r224.pt`,
    `efficientvit_seg_l2_cityscapes.pt`, `efficientvit_sam_xl1.pt`) or a repo name (`efficientvit-b1-r224`);
    the extension is `.pt`, `.pth` or `.safetensors`.
    """
    path = Path(path)
    stem = path.name
    for suffix in _CHECKPOINT_FILES:
        stem = stem.removesuffix(suffix)
    stem = stem.lower().replace("_", "-")
    for pattern, make in _FILE_PATTERNS:
        if match := pattern.match(stem):
            return make(match)
    raise ValueError(
        f"Cannot tell which variant {path.name!r} is: name checkpoints as the original authors do "
        f"(efficientvit_b1_r224.pt, efficientvit_seg_l2_cityscapes.pt, efficientvit_sam_xl1.pt) or by repo name "
        f"(efficientvit-b1-r224.pt)."
    )


def checkpoint_files(folder: str | os.PathLike) -> list[Path]:
    """The checkpoint files (`.pt`, `.pth`, `.safetensors`) directly inside `folder`, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"Checkpoint folder {str(folder)!r} does not exist.")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(_CHECKPOINT_FILES))
    if not files:
        raise ValueError(f"No checkpoint files ({', '.join(_CHECKPOINT_FILES)}) in {str(folder)!r}.")
    return files
