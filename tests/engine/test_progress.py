"""engine.progress: named steps scaled into shares, and the cancel check through a reporter."""


def test_a_step_scales_its_parts_into_its_share_and_routes_them_through_itself():
    from engine.progress import QUIET, Reporter, Step

    seen = []
    whole = Step(Reporter(lambda name, f: seen.append((name, round(f, 3)))), "probe x", 0.5, 1.0)
    whole(0.0)
    features = whole.sub(0.0, 0.9)
    features(0.5)
    features.sub(0.5, 1.0)(1.0)
    whole.sub(0.9, 1.0)(0.5)
    assert seen == [("probe x", 0.5), ("probe x", 0.725), ("probe x", 0.95), ("probe x", 0.975)]
    QUIET("anything", 0.5)  # the do-nothing default
    QUIET.step("x").sub(0, 0.5)(1.0)
    QUIET.check_cancel()


def test_a_reporter_stops_the_work_through_its_cancel_check():
    import threading

    import pytest

    from engine.progress import Reporter
    from engine.runs.events import Cancelled

    flag = threading.Event()
    step = Reporter(cancel=flag).step("extract").sub(0.2, 0.4)
    step.check_cancel()  # not set: nothing happens
    flag.set()
    with pytest.raises(Cancelled):
        step.check_cancel()
