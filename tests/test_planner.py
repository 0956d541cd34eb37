"""Making the plan once: every strategy resolves on a real backbone, the stored plan is what runs, the test split is
never read while choosing."""

import json
import shutil

import pytest
from conftest import SAMPLE

from engine.data.dataset import load_dataset
from engine.model.taps import FINAL
from engine.plan.config import TrainConfig
from engine.plan.make import get_plan, spec_for
from engine.runs.store import RunStore
from engine.service.training import train


@pytest.fixture
def carved(tmp_path):
    """Three classes of 15 photos: enough for a held-out test split to be carved."""
    root = tmp_path / "carved"
    for cls in sorted((SAMPLE / "train").iterdir())[:3]:
        (root / cls.name).mkdir(parents=True)
        for f in sorted(cls.iterdir())[:15]:
            shutil.copy(f, root / cls.name / f.name)
    return root


def cfg(data, **kw) -> TrainConfig:
    base = dict(data=str(data), top_k=1, head_epochs=1, finetune_epochs=1, batch_size=4, views=1, budget=60)
    return TrainConfig.create(**{**base, **kw})


@pytest.mark.parametrize("strategy", ["auto", "feature-extraction", "top-k", "full", "lp-ft", "scratch"])
def test_every_strategy_resolves_to_a_plan_of_the_models_groups(tiny_folder, strategy):
    planned = get_plan(cfg(tiny_folder, strategy=strategy, val_fraction=0.34))
    p = planned.plan
    assert (
        p.strategy == strategy
        and p.phases.groups[-1] == "head"
        and len(p.phases.frozen) == len(p.phases.lrs) == len(p.phases.groups)
    )
    assert all(lr == 0 for lr, f in zip(p.phases.lrs, p.phases.frozen) if f) and p.reason
    assert (p.head.init == "random") == (strategy == "scratch") and (planned.head is None) == (strategy == "scratch")
    if strategy != "auto":
        assert p.head.taps == (FINAL,) and not p.head.flip
    assert p.data.fingerprint == planned.ds.fingerprint() and p.data.n_val == len(planned.ds.val)


def test_the_plan_is_made_once_and_the_run_executes_that_plan(tiny_folder, tmp_path):
    for c in (
        cfg(tiny_folder, strategy="auto", val_fraction=0.34),
        cfg(tiny_folder, strategy="custom", val_fraction=0.34, freeze=(True,) * 7 + (False, False)),
    ):
        first = get_plan(c)
        again = get_plan(c)
        assert again.cached and again.plan == first.plan
        run = RunStore(tmp_path).create(c.to_dict())
        assert train(c, run).status == "finished"
        assert run.read_json("plan.json") == json.loads(json.dumps(first.plan.to_dict()))


def test_no_choice_reads_the_test_split(carved, monkeypatch):
    import engine.data.decode as decode

    read = []
    real = decode.load_image
    monkeypatch.setattr(decode, "load_image", lambda p, c: read.append(str(p)) or real(p, c))
    planned = get_plan(cfg(carved, strategy="auto"))
    ds = planned.ds
    test = {it.path for it in ds.test}
    assert len(test) == 9 and "held out: 9 images" in ds.test_source and planned.plan.data.n_test == 9
    assert read and not test & set(read)
    assert set(planned.probes[0].features.splits) == {"train", "val"}


def test_small_photos_are_not_centre_cropped(tiny_folder):
    ds = load_dataset(tiny_folder)
    assert spec_for(ds, "tf_efficientnet_lite0", 3).crop_pct == 1.0  # 224 px sample photos: nothing to crop


def test_the_plan_states_its_memory_and_disk_and_caches_fewer_views_when_they_do_not_fit(carved, monkeypatch):
    from engine.plan.make import load_data, make_plan

    c = cfg(carved, strategy="top-k", views=4)
    ds = load_data(c)
    monkeypatch.setenv("TRANSFERLAB_MEMORY", "4G")
    roomy = make_plan(c, ds).plan
    assert roomy.phases.views == 4 and roomy.cost.ram_bytes > 0 and roomy.cost.disk_bytes > roomy.cost.ram_bytes // 1000
    monkeypatch.setenv("TRANSFERLAB_MEMORY", "200K")
    tight = make_plan(c, ds).plan
    assert tight.phases.views == 1 and "1 augmented view(s)" in tight.reason and "TRANSFERLAB_MEMORY" in tight.reason


def test_auto_forecasts_the_whole_run_from_the_first_probes_pace_before_that_probe_ends(carved, tmp_path, monkeypatch):
    from engine.train.setup_steps import SetupProgress

    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path))  # no cached features: the probe extracts them

    class Log:
        events: list = []

        def append(self, e) -> None:
            self.events.append(e)

    class Reporter(SetupProgress):
        told: list = []

        def expect_after(self, name: str, rest_s: float, planned_s: float | None = None) -> None:
            self.told.append((name, self.name, rest_s))
            super().expect_after(name, rest_s, planned_s)

    from engine.plan import auto

    forecasts, real = [], auto.forecast
    monkeypatch.setattr(auto, "forecast", lambda *a, **k: forecasts.append(real(*a, **k)) or forecasts[-1])
    report = Reporter(Log(), min_interval=0.0)
    report.expect(60.0)
    planned = get_plan(cfg(carved, strategy="auto"), report)
    assert forecasts[0].others == forecasts[1].others  # decided once, at the first probe's early pace
    probed = tuple(p.backbone for p in planned.probes[1:])
    assert probed == tuple(b for b in forecasts[0].others if b in probed)  # nothing else (one may not fit the budget
    # on a loaded machine: never probed past the budget itself)
    name, current, rest = report.told[0]
    assert name == current == "probe tf_efficientnet_lite0" and 0 < rest < 60  # told while the probe runs
    first = next(e for e in Log.events if e.name == name and 0 < e.fraction < 1 and e.eta_s is not None)
    assert first.run_eta_s == pytest.approx(first.eta_s + rest, abs=0.15)  # the probe's own time left + the rest


def test_a_fixed_strategy_tells_the_rest_of_its_run_while_its_probe_runs(carved, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path))  # no cached features: the probe extracts them
    from engine.progress import Progress

    told = []

    class Reporter(Progress):
        def expect_after(self, name: str, rest_s: float, planned_s: float | None = None) -> None:
            told.append((name, rest_s))

    planned = get_plan(cfg(carved, strategy="top-k", head_epochs=1, finetune_epochs=2), Reporter())
    assert told and told[0][0] == "probe tf_efficientnet_lite0"
    plan = planned.plan  # costed after the probe: the same rest, at the pace the whole probe measured
    assert told[0][1] == pytest.approx(plan.cost.run_s, rel=0.5) and plan.cost.cache_s > 0


def test_a_bad_device_input_setting_is_refused_before_any_probe(tiny_folder, monkeypatch):
    from engine.plan import evidence

    monkeypatch.setenv("TRANSFERLAB_DEVICE_INPUT", "yes")
    monkeypatch.setattr(evidence, "probe", lambda *a, **k: pytest.fail("probed first"))
    with pytest.raises(ValueError, match="TRANSFERLAB_DEVICE_INPUT='yes'"):
        get_plan(cfg(tiny_folder, strategy="full", val_fraction=0.34))
