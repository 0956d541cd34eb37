"""Short background jobs: one per key while it runs, its progress, its end (done, failed, cancelled) for any reader."""

from __future__ import annotations

import threading
import time

from engine.runs.events import Cancelled
from engine.service.jobs import Jobs


def _wait(job, timeout: float = 10.0):
    end = time.time() + timeout
    while job.state == "running" and time.time() < end:
        time.sleep(0.01)
    return job


def test_a_running_key_is_returned_as_it_is_and_a_finished_one_replaced():
    jobs, release = Jobs(), threading.Event()

    def work(progress):
        progress("counting", 0.5)
        release.wait(10)
        return 42

    first = jobs.start("probe", work)
    assert jobs.start("probe", lambda progress: 0) is first  # still running: the same job
    release.set()
    assert _wait(first).state == "done" and first.result == 42 and first.stage == "counting"
    assert first.ended is not None and first.left_s is None
    second = jobs.start("probe", lambda progress: 7)
    assert second is not first and _wait(second).result == 7 and jobs.get("probe") is second


def test_a_failure_is_kept_as_its_message():
    def fails(progress):
        raise ValueError("the folder holds no photo")

    job = _wait(Jobs().start("check", fails))
    assert job.state == "failed" and job.error == "the folder holds no photo"


def test_a_cancellable_job_is_cancelled_through_its_event_and_its_progress():
    jobs, started = Jobs(), threading.Event()

    def watches(progress, cancel):
        started.set()
        while True:
            progress("reading", 0.1)
            progress.check_cancel()  # raises Cancelled once the job's event is set
            time.sleep(0.01)

    job = jobs.start("shootout", watches, cancellable=True)
    assert started.wait(10)
    jobs.cancel("shootout")
    assert _wait(job).state == "cancelled" and job.error == "cancelled"


def test_a_job_that_raises_cancelled_itself_ends_cancelled_and_cancel_of_a_finished_job_does_nothing():
    def stops(progress):
        raise Cancelled()

    jobs = Jobs()
    job = _wait(jobs.start("lr", stops))
    assert job.state == "cancelled"
    jobs.cancel("lr")
    jobs.cancel("never started")
    assert job.state == "cancelled" and not job.cancel.is_set()
