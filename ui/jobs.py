"""A background job (engine.Jobs) as a page shows it: its progress while it runs, its error if it failed, and one
rerun of the page when it is done, so the polling fragment stops."""

from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from engine import Job, Jobs


def job_bar(job: Job, text: str = "") -> None:
    """A running job's bar: `text` (default: its stage) and its stage's time left at its pace, once known."""
    left = job.left_s
    left = f" · about {left:.0f} s left" if left is not None else ""
    st.progress(min(1.0, job.fraction), text=f"{text or f'{job.stage}…'}{left}")


def finished_job(
    jobs: Jobs, key: str, running: str = "", cancel: str = "", on_done: Callable[[], None] | None = None
) -> Any | None:
    """Draws job `key`'s state and returns the job once it is done (None while it runs, failed or never started).

    Args:
        running: Text beside the progress bar (default: the job's current stage).
        cancel: Label of a button that cancels the job while it runs (none when empty).
        on_done: Called once when the job is first seen done, before the page reruns (to clear caches it changed).
    """
    job = jobs.get(key)
    if job is None:
        return None
    if job.state == "running":
        job_bar(job, running)
        if cancel and st.button(cancel):
            jobs.cancel(key)
        return None
    if job.state in ("failed", "cancelled"):
        st.error(job.error)
        return None
    if st.session_state.get(f"_shown|{key}") != job.started:
        st.session_state[f"_shown|{key}"] = job.started
        if on_done is not None:
            on_done()
        st.rerun()  # once: the page outside the fragment sees the result, and the fragment stops polling
    return job


def polling(jobs: Jobs, key: str) -> float | None:
    """The `run_every` of a fragment that follows job `key`: twice a second while it runs, else none."""
    job = jobs.get(key)
    return 0.5 if job is not None and job.state == "running" else None
