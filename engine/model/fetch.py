"""Downloading pretrained weights from the Hugging Face hub: only when a person asks, with progress, cancel and a
checksum.

The hub repository and file are the ones timm's pretrained config names for the entry (`BackboneEntry.hub_file`);
the download is `huggingface_hub.hf_hub_download` into the same hub cache `find_weights` reads, so a fetched backbone
is available offline from then on. The client resumes a transfer whose connection drops (a ranged request) and
writes the file under a temporary name until it is complete. TransferLab then checks the file's SHA-256 against the
one the hub reported for it (an LFS file's ETag) and every key and shape against the architecture, and removes it if
either differs: nothing half-written or wrong is left where weights are read. An ETag or commit that is not a plain
digest is refused before anything is downloaded (the client names cached files after them).
"""

from __future__ import annotations

import errno
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import httpx2
from huggingface_hub import constants, errors, get_hf_file_metadata, hf_hub_download, hf_hub_url, try_to_load_from_cache
from tqdm.auto import tqdm

from engine.errors import TransferLabError, WeightsMismatch, WeightsUnavailable
from engine.model.catalogue import get_entry
from engine.model.weights import WeightsInfo, hf_hub_cache, load_pretrained, read_state_dict, sha256_file

SHA256 = re.compile(r"^[0-9a-f]{64}$")
DIGEST = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")  # an ETag the client may name a cached file after
COMMIT = re.compile(r"^[0-9a-f]{40}$")
PROGRESS_BYTES = 1 << 20  # progress is reported at least every megabyte (the client reads 10 MB at a time)


class DownloadFailed(TransferLabError, RuntimeError):
    """A download could not be made or was refused; the message says why and what to do."""


class DownloadCancelled(DownloadFailed):
    """The person cancelled the download; nothing was kept."""


@dataclass(frozen=True)
class RemoteFile:
    """The weights file of a backbone as the hub describes it, before anything is downloaded.

    Attributes:
        repo: Hub repository ("timm/resnet50.a1_in1k").
        filename: File in the repository.
        size: Bytes, as the hub reports them.
        sha256: The SHA-256 the hub reports (None when it reports none).
        cached: Whether the file is in the hub cache already.
    """

    repo: str
    filename: str
    size: int | None
    sha256: str | None
    cached: bool
    etag: str = ""  # the plain digest the client names the cached blob after

    @property
    def url(self) -> str:
        return f"{endpoint()}/{self.repo}/resolve/main/{self.filename}"


def endpoint() -> str:
    """The hub address: HF_ENDPOINT (read at call time, so a test's local server is honoured), else the hub."""
    return os.environ.get("HF_ENDPOINT", "").rstrip("/") or "https://huggingface.co"


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _hub_file(name: str) -> tuple[str, str]:
    hub = get_entry(name).hub_file
    if hub is None:
        raise WeightsUnavailable(
            f"timm names no Hugging Face hub copy of {name}'s weights; upload a file on the "
            f"Backbone page or pass --weights FILE"
        )
    return hub


def _in_words(name: str, e: BaseException) -> DownloadFailed:
    """One line for a failed hub request: what happened and what to do."""
    if isinstance(e, (errors.RepositoryNotFoundError, errors.EntryNotFoundError, errors.RevisionNotFoundError)):
        return DownloadFailed(
            f"the hub has no weights file for {name} ({e.__class__.__name__} at {endpoint()}); "
            f"upload a file on the Backbone page instead"
        )
    if isinstance(e, httpx2.RemoteProtocolError):
        return DownloadFailed(
            f"the connection to {endpoint()} kept dropping while downloading {name}, even after "
            f"resuming; nothing was kept. Download again when the network is steadier"
        )
    if isinstance(e, httpx2.TimeoutException):
        return DownloadFailed(
            f"{endpoint()} stopped answering while downloading {name} (timed out); nothing was kept. Download again, "
            f"or upload the file on the Backbone page"
        )
    if isinstance(
        e, (errors.OfflineModeIsEnabled, errors.LocalEntryNotFoundError, httpx2.TransportError, ConnectionError)
    ):
        return DownloadFailed(
            f"cannot reach {endpoint()} to download {name} (no network, or HF_HUB_OFFLINE is set); "
            f"download it on a machine with a network and upload the file on the Backbone page"
        )
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        return DownloadFailed(
            f"the disk is full while downloading {name} into {hf_hub_cache()}; nothing was kept. "
            f"Free {_size_hint(name)} and download again"
        )
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return DownloadFailed(f"downloading {name} failed: {first}")


def _size_hint(name: str) -> str:
    return f"about {get_entry(name).download_mb:.0f} MB"


def _refuse_offline(name: str) -> None:
    if _offline():
        raise DownloadFailed(
            f"HF_HUB_OFFLINE is set, so {name} is not downloaded; unset it to download, or upload "
            f"the weights file on the Backbone page"
        )


def remote_file(name: str) -> RemoteFile:
    """What the hub holds for backbone `name`: one metadata request, nothing downloaded.

    Raises:
        DownloadFailed: No network, offline mode, or no such file; one line each.
    """
    repo, filename = _hub_file(name)
    _refuse_offline(name)
    try:
        meta = get_hf_file_metadata(hf_hub_url(repo, filename, endpoint=endpoint()))
    except Exception as e:  # noqa: BLE001 - every hub failure becomes one line
        raise _in_words(name, e) from None
    etag = (meta.etag or "").strip('"').lower()
    _plain_names(name, etag, meta.commit_hash)
    cached = isinstance(try_to_load_from_cache(repo, filename, cache_dir=hf_hub_cache()), str)
    return RemoteFile(repo, filename, meta.size, etag if SHA256.match(etag) else None, cached, etag)


def _plain_names(name: str, etag: str, commit: str | None) -> None:
    """Refuses a hub answer whose ETag or commit is not a plain hex digest: the download client names the cached
    file and its folder after them, so `../` in either would write outside the cache."""
    for what, value, pattern in (("ETag", etag, DIGEST), ("commit", commit or "", COMMIT)):
        if not pattern.match(value):
            raise DownloadFailed(
                f"{endpoint()} answered a {what} for {name} that is not a plain digest ({value[:48]!r}); nothing was "
                f"downloaded. Check HF_ENDPOINT, or upload the file on the Backbone page"
            )


def _progress_bar(report: Callable[[float], None], cancel: threading.Event | None) -> type[tqdm]:
    """A tqdm class that reports the download's fraction and stops it when `cancel` is set (by raising inside the
    client's read loop, which then deletes its temporary file)."""

    class Bar(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True  # no terminal bar: the caller shows progress its own way
            super().__init__(*args, **kwargs)
            self.done = kwargs.get("initial") or 0

        def update(self, n: float | None = 1) -> bool | None:
            if cancel is not None and cancel.is_set():
                raise DownloadCancelled("download cancelled; nothing was kept")
            self.done += n or 0
            if self.total:
                report(min(1.0, self.done / self.total))
            return super().update(n)

    return Bar


def remove_stale_partials(remote: RemoteFile) -> int:
    """Removes the partial files a killed download of `remote` left in the cache, and returns how many. The client
    writes each download to `<etag>.<random>.incomplete` and never resumes another process's, so a partial file would
    otherwise stay for ever; this happens under the client's own lock for the blob, so a download in progress in
    another process is left alone."""
    from filelock import FileLock, Timeout
    from huggingface_hub.file_download import repo_folder_name

    folder = repo_folder_name(repo_id=remote.repo, repo_type="model")
    blobs = hf_hub_cache() / folder / "blobs"
    partial = sorted(blobs.glob(f"{remote.etag}.*.incomplete")) if remote.etag and blobs.is_dir() else []
    if not partial:
        return 0
    lock = hf_hub_cache() / ".locks" / folder / f"{remote.etag}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(lock, timeout=0):
            for p in partial:
                p.unlink(missing_ok=True)
    except Timeout:  # another process is downloading it now
        return 0
    return len(partial)


def _discard(path: Path) -> None:
    """Removes a cached file: its blob and the snapshot link to it."""
    blob = path.resolve()
    path.unlink(missing_ok=True)
    blob.unlink(missing_ok=True)


def _fits(name: str, path: Path) -> None:
    """Removes and refuses a downloaded file that is not backbone `name`'s weights, key by key and shape by shape
    (a mirror can serve another architecture's file under the name)."""
    try:
        load_pretrained(name, read_state_dict(path))
    except WeightsMismatch as e:
        _discard(path)
        raise DownloadFailed(f"the file {endpoint()} served as {name} does not fit it ({e}); it was removed") from None


def fetch_weights(
    name: str, progress: Callable[[str, float], None] | None = None, cancel: threading.Event | None = None
) -> WeightsInfo:
    """Downloads backbone `name`'s weights into the hub cache and checks them.

    Args:
        progress: Called with ("download (N MB)", fraction) as bytes arrive, then ("checksum", 1.0).
        cancel: Set it to stop the download; it raises `DownloadCancelled` and keeps nothing.

    Returns:
        Where the weights now are, with their SHA-256.

    Raises:
        DownloadFailed: Offline, unreachable, no such file, disk full, cancelled, or a checksum that differs from the
            hub's; one line each, and nothing is left where weights are read.
    """
    report = progress or (lambda _stage, _fraction: None)
    remote = remote_file(name)
    remove_stale_partials(remote)  # a killed download's file: the client would start again beside it
    constants.DOWNLOAD_CHUNK_SIZE = min(constants.DOWNLOAD_CHUNK_SIZE, PROGRESS_BYTES)  # the client's read size
    stage = f"download ({remote.size / 1e6:.1f} MB)" if remote.size else "download"
    try:
        path = Path(
            hf_hub_download(
                remote.repo,
                remote.filename,
                cache_dir=hf_hub_cache(),
                endpoint=endpoint(),
                tqdm_class=_progress_bar(lambda f: report(stage, f), cancel),
            )
        )
    except DownloadCancelled:
        raise
    except Exception as e:  # noqa: BLE001 - every client failure becomes one line
        raise _in_words(name, e) from None
    if not path.resolve().is_relative_to(hf_hub_cache().resolve()):
        raise DownloadFailed(f"the download client wrote {name} outside the hub cache ({path}); remove it by hand")
    sha = sha256_file(path)
    if remote.sha256 and sha != remote.sha256:
        _discard(path)
        raise DownloadFailed(
            f"the downloaded {remote.filename} of {name} has SHA-256 {sha[:12]}…, the hub reported "
            f"{remote.sha256[:12]}…; it was removed. Download again"
        )
    report("checksum", 1.0)
    _fits(name, path)
    note = "SHA-256 matches the hub's" if remote.sha256 else "the hub reported no SHA-256 to check against"
    return WeightsInfo("hf-cache", str(path), sha, f"downloaded from {remote.url}; {note}")
