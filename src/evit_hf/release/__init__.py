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

from .builder import release_batch, release_checkpoint
from .cards import render_card, write_cards
from .catalog import DEFAULT_ORG, ORG_ENV, ReleaseTarget, all_targets, get_target, resolve_org, target_from_filename
from .push import push_folder
from .stats import ModelStats, compute_stats

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
