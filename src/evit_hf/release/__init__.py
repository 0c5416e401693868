"""Hub releases: every original checkpoint as a Hub-ready repo folder with a model card.

- `catalog`: the release targets, the repo naming scheme and the organisation, the batch file-name rule
- `models`: the config, model class and image processor each target ships
- `stats`: parameters and MACs counted from the model
- `reported`: the original authors' reported results (data)
- `results`: the measurement files (`docs/results/*.json`: command, date, machine, setting, rows)
- `latency`: the CPU latency each family's cards quote, read from the measurement files
- `render`: the measurement files rendered into README.md, the docs pages and the cards
  (`python -m evit_hf.release.render [--check]`)
- `templates`, `cards`: the card templates and the card generator
- `builder`: release folders from a checkpoint, a folder of checkpoints, or a saved SR folder
- `push`: upload with `huggingface_hub.HfApi`

The `evit-hf release` command (`evit_hf.commands.release`) drives them.
"""

import importlib

# Re-exports, imported on first use (PEP 562): `release.catalog` is data that `evit_hf.hub` and the `evit-hf models`
# command read, and importing the builder and the cards here would pull torch into `evit-hf --help`.
_HOMES = {
    "release_batch": ".builder", "release_checkpoint": ".builder",
    "render_card": ".cards", "write_cards": ".cards",
    "DEFAULT_ORG": ".catalog", "ORG_ENV": ".catalog", "ReleaseTarget": ".catalog", "all_targets": ".catalog",
    "get_target": ".catalog", "resolve_org": ".catalog", "target_from_filename": ".catalog",
    "push_folder": ".push",
    "ModelStats": ".stats", "compute_stats": ".stats",
}


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name], __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_ORG",
    "ORG_ENV",
    "ModelStats",
    "ReleaseTarget",
    "all_targets",
    "compute_stats",
    "get_target",
    "push_folder",
    "release_batch",
    "release_checkpoint",
    "render_card",
    "resolve_org",
    "target_from_filename",
    "write_cards",
]
