"""Every released checkpoint by name: the names users type and the Hub file each one is made from.

The release targets (`evit_hf.release.catalog`: one per original checkpoint, plus the shipped super-resolution
checkpoint) are the released models. Each is found by its repo name (`efficientvit-b1-r224`,
`efficientvit-seg-l2-cityscapes`, `efficientvit-sam-xl1`, `efficientvit-sr-light-x2`), by the short preset name
the CLI takes (`b1`, `seg-l2-cityscapes`, `sam-xl1`, `sr-light-x2`; a classifier's short name is its first
released resolution, `b1-r288` another one), by the converter's variant name (`cls-b1`) or by the authors' file
stem (`efficientvit_sam_xl1`). Its `Source` is the authors' own file (`han-cai/efficientvit-cls`,
`han-cai/efficientvit-seg`, `mit-han-lab/efficientvit-sam`), or timm's safetensors mirror
(`timm/efficientvit_b1.r224_in1k`) for the B0 classifier, whose original file the authors never linked; timm's
mirrors of the other classifiers load by their Hub id. Super-resolution has no source: its checkpoint ships
in the package.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import cache

from ..release.catalog import CLS_RESOLUTIONS, ReleaseTarget, all_targets, get_target

_HUB_BASE = "https://huggingface.co"
# timm's `efficientvit_mit` default_cfgs (timm 1.0): model -> resolutions of `timm/efficientvit_{m}.r{res}_in1k`.
TIMM_MIRRORS: dict[str, tuple[int, ...]] = {
    "b0": (224,), "b1": (224, 256, 288), "b2": (224, 256, 288), "b3": (224, 256, 288), "l1": (224,),
    "l2": (224, 256, 288, 384), "l3": (224, 256, 320, 384),
}
# Classifiers released only through timm's mirror (the original zoo registers efficientvit_b0_r224.pt, but the
# authors never published it).
_TIMM_ONLY = frozenset({"b0"})
_TIMM_ID = re.compile(r"^timm/efficientvit_([bl]\d)\.r(\d+)_in1k$")
TASKS = {"cls": "image-classification", "seg": "semantic-segmentation", "sam": "mask-generation",
         "sr": "image-to-image"}


@dataclass(frozen=True)
class Source:
    """One file on the Hub that a released model is converted from."""

    repo_id: str   # "han-cai/efficientvit-cls"
    filename: str  # "efficientvit_b1_r224.pt"
    layout: str    # "original" (the authors' keys, a torch file) or "timm" (timm's keys, safetensors)

    @property
    def url(self) -> str:
        return f"{_HUB_BASE}/{self.repo_id}/resolve/main/{self.filename}"

    @property
    def key(self) -> str:
        """A folder name for this file: `han-cai--efficientvit-cls--efficientvit_b1_r224.pt`."""
        return f"{self.repo_id.replace('/', '--')}--{self.filename.replace('/', '--')}"


@dataclass(frozen=True)
class ReleasedModel:
    """A released checkpoint: its release target and the file it is converted from."""

    target: ReleaseTarget
    source: Source | None  # None: the super-resolution checkpoint shipped in the package

    @property
    def name(self) -> str:
        """The canonical name, the repo name of its release: `efficientvit-b1-r224`."""
        return self.target.name

    @property
    def task(self) -> str:
        return TASKS[self.target.family]

    @property
    def resolution(self) -> int | None:
        return self.target.resolution

    def convert_command(self) -> str:
        """The `evit-hf convert` command that makes its folder from a downloaded source file."""
        if self.source is None:
            raise ValueError(f"{self.name} ships in the package: there is nothing to convert.")
        resolution = f" --resolution {self.resolution}" if self.target.family == "cls" else ""
        timm = " --timm" if self.source.layout == "timm" else ""
        file = self.source.filename.rsplit("/", 1)[-1]
        return (f"evit-hf convert --variant {self.target.variant}{resolution} --checkpoint {file}{timm} "
                f"--out {self.name}")


def timm_source(model: str, resolution: int) -> Source | None:
    """timm's mirror of classifier `model` (`b1`) at `resolution`, or None when timm has none."""
    if resolution not in TIMM_MIRRORS.get(model, ()):
        return None
    return Source(f"timm/efficientvit_{model}.r{resolution}_in1k", "model.safetensors", "timm")


def released_for_target(target: ReleaseTarget, timm: bool = False) -> ReleasedModel:
    """The released model of `target`, from the authors' file (with `timm`: from timm's mirror)."""
    if target.family == "sr":
        if timm:
            raise ValueError("timm mirrors only the classifiers.")
        return ReleasedModel(target, None)
    if target.family == "cls" and (timm or target.model in _TIMM_ONLY):
        source = timm_source(target.model, target.resolution)
        if source is None:
            raise ValueError(f"timm has no mirror of {target.name}; timm mirrors: "
                             f"{', '.join(m.name for m in _timm_mirrored())}.")
        return ReleasedModel(target, source)
    if timm:
        raise ValueError(f"timm mirrors only the classifiers, not {target.variant}.")
    return ReleasedModel(target, Source(target.original_repo, target.original_file, "original"))


def _timm_mirrored() -> list[ReleaseTarget]:
    return [get_target(f"cls-{m}", r) for m, resolutions in TIMM_MIRRORS.items() for r in resolutions]


def _aliases(target: ReleaseTarget) -> tuple[str, ...]:
    """The other names of a target: short preset / converter names, and for classifiers the resolution forms."""
    if target.family != "cls":
        return (target.variant,)
    model, resolution = target.model, target.resolution
    names = (f"{model}-r{resolution}", f"cls-{model}-r{resolution}")
    if resolution == CLS_RESOLUTIONS[model][0]:  # the default resolution: the bare names too
        names += (model, f"cls-{model}", f"efficientvit-{model}")
    return names


@cache
def released_models() -> tuple[ReleasedModel, ...]:
    """Every released model, in the release order (classifiers, segmentation, SAM, super-resolution)."""
    return tuple(released_for_target(target) for target in all_targets())


@cache
def _by_name() -> dict[str, ReleasedModel]:
    table = {}
    for released in released_models():
        for name in (released.name, *_aliases(released.target)):
            table[name] = released
    return table


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def find_released(name: str) -> ReleasedModel | None:
    """The released model `name` names (any of its names, or a timm mirror's Hub id), or None."""
    if match := _TIMM_ID.match(name.strip()):
        model, resolution = match[1], int(match[2])
        if timm_source(model, resolution) is not None:
            return released_for_target(get_target(f"cls-{model}", resolution), timm=True)
        return None
    return _by_name().get(_normalise(name))


def released_names(task: str | None = None) -> list[str]:
    """Every name `find_released` knows (of models of `task`; None: all), canonical names first."""
    table = {name: released for name, released in _by_name().items() if task in (None, released.task)}
    return [name for name, released in table.items() if name == released.name] + sorted(
        name for name, released in table.items() if name != released.name)


def closest_names(name: str, candidates: list[str] | None = None, count: int = 3) -> list[str]:
    """The names closest to a mistyped `name` (released names, or `candidates`)."""
    candidates = released_names() if candidates is None else candidates
    return difflib.get_close_matches(_normalise(name), candidates, n=count, cutoff=0.5)


__all__ = [
    "TIMM_MIRRORS",
    "ReleasedModel",
    "Source",
    "closest_names",
    "find_released",
    "released_for_target",
    "released_models",
    "released_names",
    "timm_source",
]
