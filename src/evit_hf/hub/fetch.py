"""Source files from the Hub with `huggingface_hub`: its cache, progress bar, `HF_TOKEN` and `HF_HUB_OFFLINE`.

`hub_reachable` asks the endpoint once per process (3 s at most), so that nothing waits on huggingface_hub's
retries when there is no network; `cached_file` finds a file in the Hugging Face cache without the network;
`remote_revision` and `download` ask the Hub and turn its failures into one-line `ValueError`s, except for a
Hub that cannot be reached, which is `HubUnreachable` (the caller knows what to suggest instead). An interrupted
download stays a `*.incomplete` blob in the Hugging Face cache, which the next download resumes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .catalog import Source

_REACHABLE: dict[str, bool] = {}


class HubUnreachable(ValueError):
    """The Hub cannot be asked: `HF_HUB_OFFLINE` is set or there is no connection. The message says which."""


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub endpoint answers (asked once per process, `timeout` seconds at most); `HF_HUB_OFFLINE`
    means no."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    endpoint = constants.ENDPOINT
    if endpoint not in _REACHABLE:
        import urllib.error
        import urllib.request

        try:
            urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout).close()
            _REACHABLE[endpoint] = True
        except urllib.error.HTTPError:  # it answered
            _REACHABLE[endpoint] = True
        except (OSError, ValueError):
            _REACHABLE[endpoint] = False
    return _REACHABLE[endpoint]


def unreachable_reason() -> str:
    """Why the Hub cannot be asked, in the words of an error message."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "offline: HF_HUB_OFFLINE is set"
    return f"offline: {constants.ENDPOINT} cannot be reached"


def require_hub(online: Callable[[], bool] = hub_reachable) -> None:
    """Raise `HubUnreachable` unless the Hub can be asked."""
    if not online():
        raise HubUnreachable(unreachable_reason())


@dataclass(frozen=True)
class SourceFile:
    """A source file in the Hugging Face cache and the revision (commit) it was downloaded at."""

    path: Path
    revision: str


def _snapshot_revision(path: str, filename: str) -> str:
    """The commit of a cached file: its snapshot folder's name (`.../snapshots/<commit>/<filename>`)."""
    return Path(path).parents[len(Path(filename).parts) - 1].name


def cached_file(source: Source) -> SourceFile | None:
    """`source` as the Hugging Face cache holds it at `main` (no network), or None."""
    from huggingface_hub import try_to_load_from_cache

    path = try_to_load_from_cache(source.repo_id, source.filename)
    if not isinstance(path, str):
        return None
    return SourceFile(Path(path), _snapshot_revision(path, source.filename))


# Class names of failures to reach the Hub (httpx / requests transport errors), as opposed to its answers.
_NETWORK_ERRORS = frozenset({"TransportError", "NetworkError", "TimeoutException", "ConnectError", "ConnectTimeout",
                             "ProxyError", "SSLError", "ConnectionError", "Timeout", "LocalEntryNotFoundError"})


def _is_network_error(err: BaseException) -> bool:
    """A failure to reach the Hub (connection, DNS, timeout, offline mode), not an answer from it."""
    if isinstance(err, (ConnectionError, TimeoutError)):  # huggingface_hub's OfflineModeIsEnabled included
        return True
    return any(cls.__name__ in _NETWORK_ERRORS for cls in type(err).__mro__)


def hub_error(err: BaseException, source: Source) -> ValueError:
    """A huggingface_hub failure for `source` as one line that says what to do."""
    from huggingface_hub import constants

    kind = type(err).__name__
    first_line = (str(err).strip().splitlines() or [kind])[0]
    if _is_network_error(err):
        if kind == "OfflineModeIsEnabled":
            return HubUnreachable(unreachable_reason())
        return HubUnreachable(f"the connection to {constants.ENDPOINT} failed ({kind}: {first_line})")
    if kind == "GatedRepoError" or getattr(getattr(err, "response", None), "status_code", None) in (401, 403):
        return ValueError(f"{source.repo_id} refused the download ({first_line}): accept its terms on the Hub and "
                          f"set HF_TOKEN (or run `hf auth login`).")
    if kind == "RepositoryNotFoundError":
        return ValueError(f"the Hub has no repo {source.repo_id} (or it is private: set HF_TOKEN).")
    if kind in ("EntryNotFoundError", "RemoteEntryNotFoundError"):
        return ValueError(f"{source.url} does not exist (the file was renamed or removed upstream).")
    return ValueError(f"downloading {source.url} failed: {first_line}")


def remote_revision(source: Source) -> str:
    """The commit the Hub serves `source` at, asked with one HEAD request."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    try:
        metadata = get_hf_file_metadata(hf_hub_url(source.repo_id, source.filename))
    except Exception as err:  # noqa: BLE001 - every huggingface_hub / network failure becomes one line
        raise hub_error(err, source) from err
    return metadata.commit_hash


def download(source: Source, force: bool = False) -> SourceFile:
    """Download `source` at `main` into the Hugging Face cache (resuming a partial download; `force`: anew)."""
    from huggingface_hub import hf_hub_download

    try:
        path = hf_hub_download(source.repo_id, source.filename, force_download=force)
    except Exception as err:  # noqa: BLE001 - every huggingface_hub / network failure becomes one line
        raise hub_error(err, source) from err
    return SourceFile(Path(path), _snapshot_revision(path, source.filename))


__all__ = ["HubUnreachable", "SourceFile", "cached_file", "download", "hub_error", "hub_reachable",
           "remote_revision", "require_hub", "unreachable_reason"]
