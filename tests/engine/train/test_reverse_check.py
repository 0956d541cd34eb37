"""The end-of-run check with unlabelled target photos: when it applies, which model it keeps (the starting head only
when it carries its labels back better by more than the standard error), and the target photos read as the saved
model will (on their own statistics when the plan standardises on the target)."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from engine.data.spec import InputSpec
from engine.progress import Progress
from engine.train import reverse_check
from engine.train.state import TrainState

SPEC = InputSpec((3, 16, 16), "bilinear", 1.0, "center", (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


class Model(nn.Module):
    def __init__(self, tag: float):
        super().__init__()
        self.tag = nn.Parameter(torch.tensor(tag))
        self.mix = nn.Linear(3, 3)
        self.head = SimpleNamespace(mean=torch.zeros(3), scale=torch.full((3,), 2.0), fc=nn.Linear(3, 2))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.mix(x.mean((2, 3)))


def _tag(ctx: SimpleNamespace) -> float:
    return ctx.model.tag.detach().item()


def _photos(folder, name: str, n: int, low: int) -> list[str]:
    rng = np.random.default_rng(low)
    paths = []
    for i in range(n):
        path = folder / f"{name}{i}.png"
        Image.fromarray(rng.integers(low, low + 100, (12, 12, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def _ctx(tmp_path, start: dict | None, norm: bool = False, n_val: int = 100) -> SimpleNamespace:
    return SimpleNamespace(
        model=Model(1.0),
        spec=SPEC,
        device=torch.device("cpu"),
        report=Progress(),
        ds=SimpleNamespace(val=[SimpleNamespace(path=p) for p in _photos(tmp_path, "v", 4, 0)]),
        targets=SimpleNamespace(photos=SimpleNamespace(paths=_photos(tmp_path, "t", 6, 150))),
        plan=SimpleNamespace(target=SimpleNamespace(bn=False, norm=norm, checks_against_start=True)),
        run=SimpleNamespace(load_checkpoint=lambda name: start if name == "start" else None),
        yva=torch.zeros(n_val, dtype=torch.long),
    )


def test_it_applies_to_a_trained_epoch_with_target_photos_when_the_plan_scored_the_start(tmp_path):
    ctx = _ctx(tmp_path, None)
    assert reverse_check.applies(ctx, TrainState(best_epoch=2))
    assert not reverse_check.applies(ctx, TrainState(best_epoch=0))  # the starting head was chosen anyway
    ctx.plan.target.checks_against_start = False
    assert not reverse_check.applies(ctx, TrainState(best_epoch=2))
    assert not reverse_check.applies(SimpleNamespace(targets=None), TrainState(best_epoch=2))


@pytest.mark.parametrize(("chosen", "kept"), [(0.5, "start"), (0.78, "chosen")])
def test_the_start_is_kept_only_when_it_scores_higher_by_more_than_its_standard_error(
    tmp_path, monkeypatch, chosen, kept
):
    """The start scores 0.8 on 100 val photos: standard error 0.04, so 0.78 keeps the fine-tune and 0.5 does not."""
    start = {"model": Model(0.0).state_dict()}
    ctx = _ctx(tmp_path, start)
    scores = {1.0: chosen, 0.0: 0.8}
    monkeypatch.setattr(reverse_check, "model_reverse", lambda c: (scores[_tag(c)], torch.full((6, 3), _tag(c))))
    state = TrainState(best_epoch=3, best_logits=torch.zeros(2, 2))
    record, ft = reverse_check.check_against_start(ctx, state)
    assert record["kept"] == kept and record["margin"] == pytest.approx(0.04)
    assert _tag(ctx) == (0.0 if kept == "start" else 1.0)  # the model kept is the one in hand
    assert float(ft[0, 0]) == _tag(ctx)  # and the target features returned are its own
    assert state.best_epoch == (0 if kept == "start" else 3) and (state.best_logits is None) == (kept == "start")
    assert f"epoch 3 (chosen on val) {chosen:.1%}, the starting head 80.0%" in record["sentence"]


def test_a_run_without_a_starting_checkpoint_keeps_its_model_and_records_nothing(tmp_path, monkeypatch):
    ctx = _ctx(tmp_path, None)
    monkeypatch.setattr(reverse_check, "model_reverse", lambda c: (0.1, torch.zeros(6, 3)))
    state = TrainState(best_epoch=3)
    assert reverse_check.check_against_start(ctx, state)[0] == {} and state.best_epoch == 3


@pytest.mark.parametrize("norm", [False, True])
def test_the_target_photos_are_read_as_the_saved_model_reads_them(tmp_path, monkeypatch, norm):
    seen = {}

    def fake_reverse(fit, zt, zv, yv):
        seen.update(zt=zt, zv=zv, w=fit.std_coef)
        return 0.5

    monkeypatch.setattr(reverse_check, "reverse_accuracy", fake_reverse)
    ctx = _ctx(tmp_path, None, norm=norm)
    score, ft = reverse_check.model_reverse(ctx)
    assert score == 0.5 and ft.shape == (6, 3)
    np.testing.assert_allclose(seen["w"], ctx.model.head.fc.weight.detach().numpy())  # the model's own head, as is
    if norm:  # on the target photos' own statistics
        np.testing.assert_allclose(seen["zt"].mean(0), 0.0, atol=1e-5)
    else:  # on the training photos' (the head's)
        np.testing.assert_allclose(seen["zt"], ft.numpy() / 2.0, rtol=1e-5)
