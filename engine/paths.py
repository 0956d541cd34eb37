"""Where TransferLab keeps its files: one home folder (TRANSFERLAB_HOME, default ~/.transferlab)."""
from __future__ import annotations

import os
from pathlib import Path

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


def weights_dir() -> Path:
    return home() / "weights"


def cache_dir() -> Path:
    return sub("cache")


def runs_dir() -> Path:
    return sub("runs")
