"""The run store: one folder per run with its config, an append-only event log, status and checkpoints.

Crash safety: events are appended one JSON line at a time (a torn last line is ignored on read); status, config and
checkpoints are written to a temporary file and renamed, so a crash at any moment leaves no torn record. A checkpoint
remembers the event log's length, and resuming truncates the log there, so no event is lost or duplicated.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import safetensors
import torch
from safetensors.torch import load_file, save

from engine import paths
from engine.errors import NotResumable, RunBusy
from engine.runs.events import Record, read_record

TERMINAL = {"finished", "cancelled", "failed"}
LIVE = frozenset({"running", "queued"})
RESUMABLE = frozenset({"interrupted", "cancelled", "failed"})  # a run that can continue from its last checkpoint


RESERVE_BYTES = 1 << 20  # enough for status.json, metrics.json, the last event and error.txt of any run


class RunLock:
    """One writer per run: an OS file lock (`fcntl.flock`) on the run's `.lock`, held while a process trains it.

    The operating system releases it when the process dies, so a lock left by a killed process is simply taken over.
    """

    def __init__(self, run: "Run"):
        self.run = run
        self._fd: int | None = None

    def acquire(self) -> None:
        """Raises:
        RunBusy: Another live process holds the lock (the message names it)."""
        fd = os.open(self.run.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunBusy(
                f"run {self.run.id} is being trained by process {owner}; wait for it to end, or stop it "
                f"first (the dashboard's Stop, or Ctrl-C in its terminal)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Run:
    """One run's folder. Thread-safe for one writer and any number of readers."""

    def __init__(self, path: Path):
        self.path = path
        self.id = path.name
        self._lock = threading.Lock()

    @property
    def events_path(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def config(self) -> dict:
        return json.loads((self.path / "config.json").read_text())

    def append(self, event: Record | dict) -> None:
        line = json.dumps(event.to_dict() if isinstance(event, Record) else event, default=float) + "\n"
        with self._lock, open(self.events_path, "a") as f:
            f.write(line)
            f.flush()
            if not line.startswith('{"kind": "step"'):
                os.fsync(f.fileno())

    def events(self, kind: str | None = None) -> list[Record]:
        """All complete events, typed (`engine.runs.events.EVENT_TYPES`), oldest first; only those of `kind` when
        given (a torn final line from a crash is ignored)."""
        lines, _ = _complete_lines(self.events_path, 0)
        return [e for e in _records(lines) if kind is None or e.kind == kind]

    def events_offset(self) -> int:
        return self.events_path.stat().st_size if self.events_path.exists() else 0

    def truncate_events(self, offset: int) -> None:
        """Rewinds the event log to `offset` bytes (a checkpoint's, or 0)."""
        if not self.events_path.exists():
            return
        with self._lock, open(self.events_path, "r+b") as f:
            f.truncate(offset)

    def status(self) -> dict:
        path = self.path / "status.json"
        st = json.loads(path.read_text()) if path.exists() else {"state": "unknown"}
        if st.get("state") == "running" and st.get("pid") and not _pid_alive(st["pid"]):
            st["state"] = "interrupted"
        return st

    def set_status(self, **fields: Any) -> None:
        with self._lock:
            path = self.path / "status.json"
            st = json.loads(path.read_text()) if path.exists() else {}
            st.update(fields, updated=time.time())
            paths.atomic_write(path, json.dumps(st, default=float).encode())

    def reserve(self) -> None:
        """Sets `RESERVE_BYTES` of disk aside in the run folder while it trains, so that a disk that fills up mid-run
        still leaves room to record how the run ended (`release_reserve` frees it first). No room: no reserve."""
        try:
            with open(self.path / ".reserve", "wb") as f:
                f.write(b"\0" * RESERVE_BYTES)
                f.flush()
                os.fsync(f.fileno())
        except OSError:
            (self.path / ".reserve").unlink(missing_ok=True)

    def release_reserve(self) -> None:
        try:
            (self.path / ".reserve").unlink(missing_ok=True)
        except OSError:
            pass  # a read-only folder: nothing can be written there anyway

    def request_stop(self) -> None:
        """Asks whichever process trains this run to stop at its next step (works across processes)."""
        (self.path / "stop").touch()

    def stop_requested(self) -> bool:
        return (self.path / "stop").exists()

    def clear_stop(self) -> None:
        (self.path / "stop").unlink(missing_ok=True)

    def save_checkpoint(self, name: str, state: dict) -> Path:
        """Writes `name`.pt atomically: a failed write (a full disk) keeps the previous checkpoint and no temporary
        file."""
        path = self.path / f"{name}.pt"
        paths.atomic_write(path, lambda f: torch.save(state, f))
        return path

    def load_checkpoint(self, name: str) -> dict | None:
        path = self.path / f"{name}.pt"
        return torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None

    def check_resumable(self) -> None:
        """Refuses, in one line and before anything is written, to continue a run that finished (any state neither
        live nor `RESUMABLE`) or whose last checkpoint does not load as weights only: resuming it would rewrite its
        history. A live run is left to its writer's lock.

        Raises:
            NotResumable: What is wrong and what to do instead.
        """
        state = self.status().get("state", "unknown")
        if state in LIVE:  # its writer's lock decides (`RunBusy` while that process lives)
            return
        if state not in RESUMABLE:
            raise NotResumable(
                f"run {self.id} is {state}, not interrupted, stopped or failed; it is left as it is (start a new run "
                f"to train again)"
            )
        try:
            self.load_checkpoint("last")
        except Exception as e:  # noqa: BLE001 - any unreadable checkpoint gets the same line
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise NotResumable(
                f"run {self.id}: its last checkpoint {self.path / 'last.pt'} does not load as weights only ({first}); "
                f"the run is left as it is (start a new run)"
            ) from None

    def write_json(self, name: str, data: dict) -> None:
        paths.atomic_write(self.path / name, json.dumps(data, indent=2, default=float).encode())

    def write_tensors(self, name: str, tensors: dict[str, torch.Tensor]) -> None:
        """Writes tensors as safetensors, atomically (a distilled run's teacher answers)."""
        paths.atomic_write(self.path / name, save({k: t.contiguous() for k, t in tensors.items()}))

    def read_tensors(self, name: str) -> dict[str, torch.Tensor] | None:
        """Tensors written by `write_tensors` (None when there is no such file or it does not read)."""
        try:
            return load_file(str(self.path / name))
        except (OSError, safetensors.SafetensorError):
            return None

    def read_json(self, name: str) -> dict | None:
        path = self.path / name
        return json.loads(path.read_text()) if path.exists() else None

    def update_json(self, name: str, change: Callable[[dict], dict]) -> None:
        """Rewrites the JSON file `name` as `change` makes it from what it holds now ({} when absent), one writer at a
        time across threads and processes (an OS lock on `.name.lock`), so two updates never lose one another (two
        `estimate` commands on one run)."""
        with self._lock, open(self.path / f".{name}.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self.write_json(name, change(self.read_json(name) or {}))
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


class EventTail:
    """A run's events read incrementally: each `read()` parses only the lines appended since the previous one.

    A log that was truncated (a resume rewinds it to its checkpoint) is noticed because the line last read is no
    longer where it was; the tail then reads the log again from the start. Safe to share between threads.
    """

    def __init__(self, run: Run):
        self.run = run
        self._events: list[Record] = []
        self._offset, self._last = 0, b""
        self._lock = threading.Lock()

    def _rewound(self) -> bool:
        if not self._offset:
            return False
        if self.run.events_offset() < self._offset:
            return True
        with open(self.run.events_path, "rb") as f:
            f.seek(self._offset - len(self._last))
            return f.read(len(self._last)) != self._last

    def read(self) -> list[Record]:
        """Every complete event so far, typed, oldest first (a new list of the same frozen records)."""
        with self._lock:
            if self._rewound():
                self._events, self._offset, self._last = [], 0, b""
            lines, self._offset = _complete_lines(self.run.events_path, self._offset)
            if lines:
                self._events.extend(_records(lines))
                self._last = lines[-1]
            return list(self._events)


def _records(lines: list[bytes]) -> list[Record]:
    """The typed events of complete log lines (a kind this version does not know is left out)."""
    return [r for r in map(read_record, map(json.loads, lines)) if r is not None]


def _complete_lines(path: Path, offset: int) -> tuple[list[bytes], int]:
    """The complete lines (newline kept) of `path` after byte `offset`, and the offset after the last of them."""
    if not path.exists():
        return [], offset
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1
    return data[:end].splitlines(keepends=True), offset + end


class RunStore:
    """All runs under one folder (default: TRANSFERLAB_HOME/runs)."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else paths.runs_dir()
        self.root.mkdir(parents=True, exist_ok=True)

    def create(self, config: dict, name: str = "") -> Run:
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + (name or uuid.uuid4().hex[:6])
        path = self.root / run_id
        path.mkdir(parents=True)
        run = Run(path)
        paths.atomic_write(path / "config.json", json.dumps(config, indent=2, default=float).encode())
        run.set_status(state="queued", created=time.time())
        return run

    def open(self, run_id: str) -> Run:
        path = self.root / run_id if not Path(run_id).is_dir() else Path(run_id)
        if not (path / "config.json").exists():
            raise KeyError(f"no run {run_id!r} in {self.root}")
        return Run(path)

    def list(self) -> list[Run]:
        return [Run(p) for p in sorted(self.root.iterdir(), reverse=True) if (p / "config.json").exists()]
