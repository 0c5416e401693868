"""Uploading a release folder to the Hub with `huggingface_hub.HfApi` (create the repo, upload the folder)."""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import HfApi


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    token: str | None = None,
    private: bool = False,
    commit_message: str | None = None,
) -> str:
    """Create `repo_id` (a model repo; no error if it exists) and upload `folder` to it; returns the commit URL.

    The token comes from `token`, else huggingface_hub's usual sources (`HF_TOKEN`, `hf auth login`).
    """
    folder = Path(folder)
    if not (folder / "config.json").is_file() or not (folder / "README.md").is_file():
        raise ValueError(f"{str(folder)!r} is not a release folder (it needs config.json and README.md).")
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    commit = api.upload_folder(
        folder_path=str(folder),
        repo_id=repo_id,
        repo_type="model",
        commit_message=commit_message or f"Release {repo_id.split('/')[-1]} (evit-hf)",
    )
    return str(getattr(commit, "commit_url", commit))
