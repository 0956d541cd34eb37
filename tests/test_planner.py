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
    assert p.strategy == strategy and p.groups[-1] == "head" and len(p.frozen) == len(p.lrs) == len(p.groups)
    assert all(lr == 0 for lr, f in zip(p.lrs, p.frozen) if f) and p.reason
    assert (p.head_init == "random") == (strategy == "scratch") and (planned.head is None) == (strategy == "scratch")
    if strategy != "auto":
        assert p.taps == (FINAL,) and not p.flip_tta
    assert p.fingerprint == planned.ds.fingerprint() and p.n_val == len(planned.ds.val)


def test_the_plan_is_made_once_and_the_run_executes_that_plan(tiny_folder, tmp_path):
    for c in (
        cfg(tiny_folder, strategy="auto", val_fraction=0.34),
        cfg(tiny_folder, strategy="custom", val_fraction=0.34, freeze=(True,) * 7 + (False, False)),
    ):
        first = get_plan(c)
        again = get_plan(c)
        assert again.cached and again.plan == first.plan
        run = RunStore(tmp_path).create(c.to_dict())
        assert train(c, run)["status"] == "finished"
        assert run.read_json("plan.json") == json.loads(json.dumps(first.plan.to_dict()))


def test_no_choice_reads_the_test_split(carved, monkeypatch):
    import engine.data.decode as decode

    read = []
    real = decode.load_image
    monkeypatch.setattr(decode, "load_image", lambda p, c: read.append(str(p)) or real(p, c))
    planned = get_plan(cfg(carved, strategy="auto"))
    ds = planned.ds
    test = {it.path for it in ds.test}
    assert len(test) == 9 and "held out: 9 images" in ds.test_source and planned.plan.n_test == 9
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
    assert roomy.views == 4 and roomy.ram_bytes > 0 and roomy.disk_bytes > roomy.ram_bytes // 1000
    monkeypatch.setenv("TRANSFERLAB_MEMORY", "200K")
    tight = make_plan(c, ds).plan
    assert tight.views == 1 and "1 augmented view(s)" in tight.reason and "TRANSFERLAB_MEMORY" in tight.reason


def test_auto_forecasts_the_whole_run_from_the_first_probes_pace_before_that_probe_ends(carved, tmp_path, monkeypatch):
    from engine.train.progress import SetupProgress

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

    from engine.plan import make

    forecasts, real = [], make.forecast
    monkeypatch.setattr(make, "forecast", lambda *a, **k: forecasts.append(real(*a, **k)) or forecasts[-1])
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
    assert told[0][1] == pytest.approx(plan.run_s, rel=0.5) and plan.cache_s > 0


def test_a_bad_device_input_setting_is_refused_before_any_probe(tiny_folder, monkeypatch):
    from engine.plan import make

    monkeypatch.setenv("TRANSFERLAB_DEVICE_INPUT", "yes")
    monkeypatch.setattr(make, "probe", lambda *a, **k: pytest.fail("probed first"))
    with pytest.raises(ValueError, match="TRANSFERLAB_DEVICE_INPUT='yes'"):
        get_plan(cfg(tiny_folder, strategy="full", val_fraction=0.34))


@pytest.mark.parametrize("asked", [None, "mmd"])
def test_auto_fits_its_epochs_to_the_budget_after_the_target_photos_or_drops_the_adaptation(tiny_folder, asked):
    from dataclasses import replace

    from engine.plan.budget import SAFETY
    from engine.plan.cost import costed
    from engine.plan.make import _in_budget

    cfg = TrainConfig.create(data=str(tiny_folder), backbone="resnet18", weights="none", strategy="top-k")
    p = get_plan(cfg).plan
    adapted = costed(cfg, replace(p, adapt="mmd", adapt_strength=1.0, n_target=12, finetune_epochs=12), 5.0, "cpu")
    rest = adapted.estimate_s - 12 * adapted.finetune_epoch_s

    def within(epochs: float) -> TrainConfig:
        budget = (rest + epochs * adapted.finetune_epoch_s) / SAFETY
        target = {"target": str(tiny_folder)} if asked else {}  # only read by the plan, never here
        return TrainConfig.create(data=str(tiny_folder), strategy="auto", budget=budget, adapt=asked, **target)

    assert _in_budget(within(12.5), adapted, "cpu") is adapted  # it fits: unchanged
    fewer = _in_budget(within(5.5), adapted, "cpu")
    assert fewer.adapt == "mmd" and fewer.finetune_epochs == 5 and "runs 5 of the 12 epochs" in fewer.reason
    assert fewer.estimate_s <= SAFETY * within(5.5).optim.budget + 0.5  # the time shown holds the budget
    warm = _in_budget(within(1.5), replace(adapted, warmup_epochs=3), "cpu")  # a longer warm-up, kept by the trials
    assert warm.warmup_epochs <= max(1, warm.finetune_epochs)  # never longer than the epochs that fit
    short = _in_budget(within(1.5), adapted, "cpu")
    if asked is None:  # auto's own choice, with too few epochs left: without it, or the linear head
        assert short.adapt == "none" and "no adaptation loss after all" in short.target_reason
        assert short.estimate_s <= SAFETY * within(1.5).optim.budget + 0.5
    else:  # asked for: kept, on the epochs that fit
        assert short.adapt == "mmd" and short.finetune_epochs == 1


def test_auto_keeps_the_linear_head_when_no_epoch_fits_after_the_target_photos(tiny_folder):
    from dataclasses import replace

    from engine.plan.cost import costed
    from engine.plan.make import _in_budget

    cfg = TrainConfig.create(data=str(tiny_folder), backbone="resnet18", weights="none", strategy="top-k")
    p = costed(cfg, replace(get_plan(cfg).plan, finetune_epochs=12), 5.0, "cpu")
    tight = TrainConfig.create(data=str(tiny_folder), strategy="auto", budget=30)
    head = _in_budget(tight, replace(p, plan_s=p.plan_s + 60, estimate_s=p.estimate_s + 60), "cpu")
    assert head.finetune_epochs == 0 and head.frozen == tuple([True] * (len(p.groups) - 1) + [False])
    assert head.lrs[:-1] == (0.0,) * (len(p.groups) - 1) and not head.trains_below_head
    assert "the linear head is the model after all" in head.reason


def test_the_trials_are_tried_only_when_a_fine_tune_still_fits_after_the_target_photos(tiny_folder):
    from dataclasses import replace

    from engine.plan.cost import costed
    from engine.plan.domain import Targets
    from engine.plan.make import _finetune_fits

    cfg = TrainConfig.create(data=str(tiny_folder), backbone="resnet18", weights="none", strategy="top-k")
    p = costed(cfg, replace(get_plan(cfg).plan, finetune_epochs=4), 5.0, "cpu")
    auto = TrainConfig.create(data=str(tiny_folder), strategy="auto", budget=p.estimate_s * 2)
    none = Targets(None)
    assert _finetune_fits(auto, p, none, (None, None), p.plan_s, "cpu")
    assert not _finetune_fits(auto, p, none, (None, None), p.plan_s + 2 * p.estimate_s, "cpu")  # the budget is spent
    head = replace(p, finetune_epochs=0)
    assert not _finetune_fits(auto, head, none, (None, None), p.plan_s, "cpu")
