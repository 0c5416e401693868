"""A training run on disk: its saved arguments and its checkpoints, written atomically.

```
output_dir/
  training_args.yaml            the run's settings, written when the run starts, never by a resume
  checkpoints/
    checkpoint-<step>/          complete checkpoints only (a copy of training_args.yaml inside)
    checkpoint-<step>.partial/  one being written; renamed into place when complete
```

A checkpoint is written under a `.partial` name and renamed when complete, so a process killed while saving
leaves at most a `.partial` folder, which `list_checkpoints` (and so `latest`) never returns.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

ARGUMENTS_FILE = "training_args.yaml"
STATE_FILE = "trainer_state.json"  # written last into a checkpoint
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")
_STAGING_SUFFIX = ".partial"


def checkpoint_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """The complete checkpoints of the run in `output_dir`, oldest (lowest step) first."""
    found = []
    folder = checkpoint_dir(output_dir)
    for path in folder.iterdir() if folder.is_dir() else ():
        match = _CHECKPOINT.fullmatch(path.name)
        if match and (path / STATE_FILE).is_file():
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def find_checkpoint(spec: str, output_dir: str | Path) -> Path:
    """`latest` (the newest complete checkpoint in `output_dir`) or a checkpoint folder."""
    if spec == "latest":
        found = list_checkpoints(output_dir)
        if not found:
            raise ValueError(f"No checkpoint to resume from in {checkpoint_dir(output_dir)}: the run stopped before "
                             "saving one; start it again without --resume_from_checkpoint.")
        return found[-1]
    path = Path(spec)
    if not (path / STATE_FILE).is_file():
        raise ValueError(f"--resume_from_checkpoint {spec} is not a complete checkpoint folder (no {STATE_FILE}); "
                         f"give a {checkpoint_dir('OUTPUT_DIR')}/checkpoint-<step> folder or `latest`.")
    return path


def staging_path(final: Path) -> Path:
    """Where `final` is written before it is complete."""
    return final.with_name(final.name + _STAGING_SUFFIX)


def publish(staging: Path, final: Path) -> None:
    """Rename the complete checkpoint `staging` to `final`, and remove staging folders left by killed saves.

    An older `final` (the same step saved again) is renamed aside before and deleted after, so `final` never
    names a half-deleted folder."""
    replaced = final.with_name(final.name + ".replaced")
    shutil.rmtree(replaced, ignore_errors=True)
    if final.exists():
        final.rename(replaced)
    staging.rename(final)
    shutil.rmtree(replaced, ignore_errors=True)
    for stale in final.parent.glob(f"checkpoint-*{_STAGING_SUFFIX}"):
        shutil.rmtree(stale, ignore_errors=True)


__all__ = ["ARGUMENTS_FILE", "STATE_FILE", "checkpoint_dir", "find_checkpoint", "list_checkpoints", "publish",
           "staging_path"]
