"""Process-wide singletons (one runner, one job registry) and the few session values the pages share."""
from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from engine.jobs import Jobs
from engine.paths import SAMPLE
from engine.runner import Runner

DEFAULT_BACKBONE = "tf_efficientnet_lite0"


@st.cache_resource
def get_runner() -> Runner:
    """The one training runner of this server process (thread-safe)."""
    return Runner()


@st.cache_resource
def get_jobs() -> Jobs:
    """The one registry of probe / shoot-out jobs of this server process."""
    return Jobs()


def data_root() -> Path:
    """Folders on the server may be opened only under this root (TRANSFERLAB_DATA_ROOT, default: home)."""
    return Path(os.environ.get("TRANSFERLAB_DATA_ROOT", Path.home())).expanduser().resolve()


def init_session() -> None:
    st.session_state.setdefault("dataset", str(SAMPLE))
    st.session_state.setdefault("backbone", DEFAULT_BACKBONE)


def dataset_path() -> str:
    init_session()
    return st.session_state["dataset"]


def backbone() -> str:
    init_session()
    return st.session_state["backbone"]


def in_chans() -> int:
    """Image channels to train with (3 = RGB), chosen on the Data page."""
    return int(st.session_state.get("in_chans", 3))


def probe_key(dataset: str, name: str) -> str:
    chans = in_chans()
    return f"probe|{dataset}|{name}" + (f"|{chans}ch" if chans != 3 else "")
