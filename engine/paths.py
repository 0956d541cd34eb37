"""Where TransferLab keeps its files: one home folder (TRANSFERLAB_HOME, default ~/.transferlab)."""

from __future__ import annotations

import fcntl
import math
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from typing import BinaryIO
from contextlib import contextmanager
from pathlib import Path

from engine.progress import QUIET_STEP, Step

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "samples" / "plant-leaves-15"


def home() -> Path:
    """The TransferLab home: caches, runs, weights, extracted archives."""
    path = Path(os.environ.get("TRANSFERLAB_HOME", Path.home() / ".transferlab")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def sub(name: str) -> Path:
    path = home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(path: Path, data: bytes | Callable[[BinaryIO], object]) -> None:
    """Writes `data` (bytes, or a function that writes to the open file: `torch.save`, `np.savez`) to a temporary
    file of this writer's own beside `path`, then renames it over `path`: a reader sees the old file or the new one,
    never half of one; two writers never share a temporary file; a failure (a full disk) leaves none behind."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data) if isinstance(data, bytes) else data(f)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def usual_mode(path: Path) -> None:
    """Gives `path` the permissions a file made with `open()` gets (0666 less the process's umask): some writers
    (safetensors) make their files readable by their owner only, which a person sharing the model does not expect."""
    umask = 0o022
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                umask = int(line.split()[1], 8)
    except OSError:  # not Linux: the common default
        pass
    os.chmod(path, 0o666 & ~umask)


@contextmanager
def building(folder: Path, progress: Step = QUIET_STEP) -> Iterator[Path]:
    """One builder at a time for the cache entry `folder` (features, an extracted archive), across threads and
    processes: holds an OS lock beside it while the block builds, and yields a temporary folder of the builder's own
    to build in. A second builder waits (asking `progress` for a cancel while it waits); when its turn comes it should
    look again, since the first may have built the entry. The block renames the temporary folder over `folder`;
    whatever is left of it is removed."""
    lock = folder.with_name(f".{folder.name}.lock")
    with open(lock, "a+") as f:
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                progress.check_cancel()
                time.sleep(0.1)
        tmp = folder.with_name(f"{folder.name}.{uuid.uuid4().hex[:6]}.partial")
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            fcntl.flock(f, fcntl.LOCK_UN)


def weights_dir() -> Path:
    return home() / "weights"


def cache_dir() -> Path:
    return sub("cache")


def runs_dir() -> Path:
    return sub("runs")


# The memory budget's shares, one per cache TransferLab holds, in one table: together at most the whole budget.
MEMORY_SHARES = {
    "decoded images": 0.2,  # the least-recently-used cache of decoded photos
    "features": 0.2,  # cached features this large or smaller are read into memory, else memory-mapped
    "linear fit": 0.2,  # the arrays of one linear fit (float64 copies included); above it, a stratified sample
    "cached views": 0.2,  # the features of augmented views cached for the head phase
    "activations": 0.2,  # activations cached at a freeze boundary
}
assert sum(MEMORY_SHARES.values()) <= 1.0


def memory_share(cache: str) -> int:
    """Bytes of the memory budget that the cache named in `MEMORY_SHARES` may hold."""
    return int(MEMORY_SHARES[cache] * memory_budget())


def memory_budget() -> int:
    """Bytes TransferLab may hold in memory for data (decoded images, features, activations): TRANSFERLAB_MEMORY
    (bytes, or with a K/M/G suffix), else a quarter of the machine's RAM."""
    raw = os.environ.get("TRANSFERLAB_MEMORY", "").strip().upper()
    if raw:
        units = {"K": 1024, "M": 1024**2, "G": 1024**3}
        mult = units.get(raw[-1], 1)
        try:
            size = float(raw[:-1] if raw[-1] in units else raw) * mult
        except ValueError:
            raise ValueError(
                f"TRANSFERLAB_MEMORY={raw!r} is not a size; write bytes or a number with K, M or G, for example 4G"
            ) from None
        if not math.isfinite(size) or size < 1:
            raise ValueError(f"TRANSFERLAB_MEMORY={raw!r}: it must be a positive size such as 4G")
        return int(size)
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        total = 8 * 1024**3
    return total // 4


def user_path(text: str) -> Path:
    """A folder or file name a person typed, as a real absolute path.

    Raises:
        TransferLabError: The name holds a null byte, names an unknown user (`~someone`), is longer than the system
            allows, or leads into a loop of symbolic links; the message says which, in one line.
    """
    from engine.errors import TransferLabError

    shown = text if len(text) <= 80 else text[:77] + "..."
    if "\0" in text:
        raise TransferLabError(f"{shown!r}: a name cannot hold a null byte; type the folder's name again")
    try:
        return Path(text).expanduser().resolve()
    except RuntimeError as e:  # ~nosuchuser, or a loop of symbolic links
        raise TransferLabError(f"{shown}: {e}; give a folder that exists") from None
    except OSError as e:
        raise TransferLabError(f"{shown}: {e.strerror or e}; give a shorter path to a folder that exists") from None


def existing_path(text: str, base: Path | None = None) -> Path:
    """`user_path(text)` when it names a folder or file that exists: what a person may choose as their data. A
    relative name is taken under `base` (the data root the page names), not the server's working folder.

    Raises:
        TransferLabError: As `user_path`, or nothing is there; one line.
    """
    from engine.errors import TransferLabError

    relative = base is not None and not text.startswith("~") and not Path(text.replace("\0", "")).is_absolute()
    path = user_path(str(base / text) if relative else text)
    shown = str(path) if len(str(path)) <= 80 else str(path)[:77] + "..."
    try:
        there = path.exists()
    except OSError as e:  # a name longer than the system allows
        raise TransferLabError(f"{shown}: {e.strerror or e}; give a shorter path to a folder that exists") from None
    if not there:
        raise TransferLabError(f"{shown} does not exist; give a folder that exists")
    return path
