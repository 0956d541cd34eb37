"""Process-wide singletons (one runner, one job registry), the few session values the pages share, and the URL that
keeps them across a reload."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import streamlit as st

from engine import (
    ARM_TEXT,
    DEFAULT_BACKBONE,
    SAMPLE,
    Jobs,
    LessonEstimate,
    Plan,
    Runner,
    TransferLabError,
    home,
    lesson_configs,
    lesson_estimate,
    user_path,
)

PAGES = [
    ("home.py", "Home", ""),
    ("lesson.py", "Why transfer works", "Lesson"),
    ("data.py", "1 Data", "Data"),
    ("backbone.py", "2 Backbone", "Backbone"),
    ("probe.py", "3 Probe", "Probe"),
    ("train.py", "4 Train", "Train"),
    ("compare.py", "5 Compare", "Compare"),
    ("predict.py", "6 Predict & export", "Predict_Export"),
]
_KEPT = "_kept|"  # the session keys of the Train page's kept widget values: plain keys, which Streamlit never forgets
SHARED = ("dataset", "backbone", "run_id", "target")  # kept in the URL: a reload keeps the dataset, backbone, run
# and the folder of target photos


@st.cache_resource
def get_runner() -> Runner:
    """The one training runner of this server process (thread-safe)."""
    return Runner()


@st.cache_resource
def get_jobs() -> Jobs:
    """The one registry of probe, plan, shoot-out and LR-finder jobs of this server process."""
    return Jobs()


def data_root() -> Path:
    """Folders on the server may be opened only under this root (TRANSFERLAB_DATA_ROOT, default: home)."""
    return Path(os.environ.get("TRANSFERLAB_DATA_ROOT", Path.home())).expanduser().resolve()


def _roots() -> list[Path]:
    return [data_root(), SAMPLE.resolve(), home().resolve()]


def allowed(path: str) -> bool:
    """Whether the dashboard may open `path`: under the data root, the bundled sample, or TransferLab's own folder
    (uploads, extracted archives)."""
    try:
        real = user_path(path)
    except TransferLabError:
        return False
    return any(real.is_relative_to(root) for root in _roots())


def root_for(path: str) -> str:
    """The root the dashboard's reads of `path` are contained in: every file of the dataset must lie inside it."""
    try:
        real = user_path(path)
    except TransferLabError:
        return str(data_root())  # an unusable name reads nothing: loading it fails with its own line
    return str(next((r for r in _roots() if real.is_relative_to(r)), real))


def init_session() -> None:
    """Session values from the URL (a reload), else the defaults; a URL outside the data root is ignored."""
    for key in SHARED:
        if key not in st.session_state and st.query_params.get(key):
            value = st.query_params[key]
            if key not in ("dataset", "target") or allowed(value):
                st.session_state[key] = value
    st.session_state.setdefault("dataset", str(SAMPLE))
    st.session_state.setdefault("backbone", DEFAULT_BACKBONE)
    for key in SHARED:
        if st.session_state.get(key):
            st.query_params[key] = st.session_state[key]


def start_lesson(runner: Runner, data: str) -> dict[str, str]:
    """Queues the lesson's four runs on `data` and remembers their ids in the session (`lesson_ids` puts them in the
    URL of the page that shows them)."""
    ids = {
        arm: runner.submit(cfg, name=f"lesson-{arm}")
        for arm, cfg in lesson_configs(data, data_root=root_for(data)).items()
    }
    st.session_state["lesson"] = ids
    return ids


def lesson_promise(data: str) -> LessonEstimate | None:
    """How long the lesson takes on `data` here (`lesson_estimate`, a job of its own so that no page waits for it);
    None until it is known, or when it could not be made (the page then promises nothing)."""
    key = f"lesson-estimate|{data}"
    jobs = get_jobs()
    job = jobs.get(key)
    if job is None:
        job = jobs.start(key, lesson_estimate, data, data_root=root_for(data))
    return job.result if job.state == "done" else None


def lesson_ids() -> dict[str, str]:
    """The lesson's runs (arm -> run id) of this session, or of the URL after a reload (only ids of runs in the store,
    for the lesson's arms: a URL names nothing else); empty when none started."""
    if "lesson" not in st.session_state:
        known = {r.id for r in get_runner().store.list()}
        pairs = [p.split(":", 1) for p in st.query_params.get("lesson", "").split(",") if ":" in p]
        st.session_state["lesson"] = {arm: rid for arm, rid in pairs if arm in ARM_TEXT and rid in known}
    ids = st.session_state["lesson"]
    if ids:  # in the URL of the page that shows them (switching pages drops the query), so a reload keeps them
        st.query_params["lesson"] = ",".join(f"{arm}:{rid}" for arm, rid in ids.items())
    return ids


def restore_choices(options: dict[str, object]) -> None:
    """Widget values kept before the widgets are drawn: from this session when another page was shown in between
    (Streamlit forgets the values of widgets a page did not draw), else from the URL after a reload; each only when
    it is one of its widget's `options` (a number's options are a range)."""
    for key, allowed_values in options.items():
        if key in st.session_state:
            continue
        raw = st.session_state.get(f"{_KEPT}{key}", st.query_params.get(key))
        if raw is None:
            continue
        value = int(raw) if isinstance(allowed_values, range) and str(raw).isdigit() else raw
        if value in allowed_values:
            st.session_state[key] = value


def keep_choices(keys) -> None:
    """The current values of the widgets `keys` kept apart from the widgets, in this session (a switch to another
    page and back) and in the URL (a reload); `restore_choices` draws them again."""
    for key in keys:
        if key in st.session_state:
            st.session_state[f"{_KEPT}{key}"] = st.session_state[key]
            st.query_params[key] = str(st.session_state[key])


@st.cache_resource
def _drafts() -> dict[tuple[str, str], Plan]:
    return {}


def _draft_token() -> str:
    """This browser tab's token for its drafts, in the URL so that a reload finds them."""
    token = st.query_params.get("draft") or st.session_state.setdefault("_draft", uuid.uuid4().hex[:10])
    st.query_params["draft"] = token
    return token


def draft(plan_key: str) -> Plan | None:
    """The plan this browser tab was editing under `plan_key`, kept across a reload; None when it edited none."""
    return _drafts().get((_draft_token(), plan_key))


def keep_draft(plan_key: str, plan: Plan | None) -> None:
    """Keeps this tab's edited plan under `plan_key` (None: the plan is as made, nothing to keep)."""
    if plan is None:
        _drafts().pop((_draft_token(), plan_key), None)
    else:
        _drafts()[(_draft_token(), plan_key)] = plan


def remember(**values: str) -> None:
    """Sets shared session values and the URL together."""
    for key, value in values.items():
        st.session_state[key] = value
        st.query_params[key] = value


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
