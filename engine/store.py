"""The run store: one folder per run with its config, an append-only event log, status and checkpoints.

Crash safety: events are appended one JSON line at a time (a torn last line is ignored on read); status, config and
checkpoints are written to a temporary file and renamed, so a crash at any moment leaves no torn record. A checkpoint
remembers the event log's length, and resuming truncates the log there, so no event is lost or duplicated.
"""
from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import torch

from engine import paths
from engine.events import Event

TERMINAL = {"finished", "cancelled", "failed"}


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


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

    def append(self, event: Event | dict) -> None:
        line = json.dumps(event.to_dict() if isinstance(event, Event) else event, default=float) + "\n"
        with self._lock, open(self.events_path, "a") as f:
            f.write(line)
            f.flush()
            if not line.startswith('{"kind": "step"'):
                os.fsync(f.fileno())

    def events(self, kind: str | None = None) -> list[dict]:
        """All complete events, oldest first (a torn final line from a crash is ignored)."""
        if not self.events_path.exists():
            return []
        out = []
        with open(self.events_path) as f:
            for line in f:
                if not line.endswith("\n"):
                    break
                ev = json.loads(line)
                if kind is None or ev.get("kind") == kind:
                    out.append(ev)
        return out

    def events_offset(self) -> int:
        return self.events_path.stat().st_size if self.events_path.exists() else 0

    def truncate_events(self, offset: int) -> None:
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
            _atomic_write(path, json.dumps(st, default=float).encode())

    def save_checkpoint(self, name: str, state: dict) -> Path:
        path = self.path / f"{name}.pt"
        tmp = path.with_name(f".{name}.tmp")
        torch.save(state, tmp)
        tmp.replace(path)
        return path

    def load_checkpoint(self, name: str) -> dict | None:
        path = self.path / f"{name}.pt"
        return torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None

    def write_json(self, name: str, data: dict) -> None:
        _atomic_write(self.path / name, json.dumps(data, indent=2, default=float).encode())

    def read_json(self, name: str) -> dict | None:
        path = self.path / name
        return json.loads(path.read_text()) if path.exists() else None


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
        _atomic_write(path / "config.json", json.dumps(config, indent=2, default=float).encode())
        run.set_status(state="queued", created=time.time())
        return run

    def open(self, run_id: str) -> Run:
        path = self.root / run_id if not Path(run_id).is_dir() else Path(run_id)
        if not (path / "config.json").exists():
            raise KeyError(f"no run {run_id!r} in {self.root}")
        return Run(path)

    def list(self) -> list[Run]:
        return [Run(p) for p in sorted(self.root.iterdir(), reverse=True) if (p / "config.json").exists()]
