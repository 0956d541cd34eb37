"""The charts draw the run's typed events as the store reads them back (every chart that takes events)."""

from engine.runs.events import EpochEnded, StepEnded
from ui import charts

EPOCHS = [
    EpochEnded(epoch=0, val_acc=0.5, t=1.0),
    EpochEnded(epoch=1, phase=2, train_acc=0.6, val_acc=0.7, adapt={"domain_acc": 0.8, "adapt_weight": 0.1}, t=2.0),
    EpochEnded(epoch=2, phase=2, train_acc=0.7, val_acc=0.75, adapt={"domain_acc": 0.6, "adapt_weight": 0.5}, t=3.0),
]
STEPS = [StepEnded(phase=2, epoch=3, step=i, lrs=[0.0, 1e-4, 1e-3], running_acc=0.7, t=4.0 + i) for i in range(3)]


def test_the_epoch_and_step_charts_read_typed_events():
    acc, loss = charts.training_curves(EPOCHS, 0.55, STEPS[-1])
    assert list(acc.data[1].y) == [0.5, 0.7, 0.75] and acc.data[2].x == (3,)  # validation, then this epoch so far
    rates = charts.group_rates(STEPS, ["stem", "b0", "head"], ["stem", "stage 1", "head"])
    assert len(rates.data) >= 1
    assert rates.layout.legend.orientation == "v" and rates.layout.legend.x > 1  # beside the plot, off the title
    assert list(charts.overlay({"run": EPOCHS}).data[0].y) == [0.5, 0.7, 0.75]


def test_the_adaptation_chart_draws_only_the_adapted_epochs():
    fig = charts.domain_curves(EPOCHS)
    by_name = {t.name: t for t in fig.data}
    assert list(by_name["domain classifier accuracy"].y) == [0.8, 0.6]
    assert list(by_name["adaptation weight"].y) == [0.1, 0.5]
