"""Plotly figures built from engine results and run-store events. Groups show their readable label on the axis and
their timm name on hover."""

from __future__ import annotations

from typing import TYPE_CHECKING

import plotly.graph_objects as go

if TYPE_CHECKING:
    from engine import CompareRow, EpochEnded, LessonRow, LrRange, ShootoutRow, StepEnded
    from engine import LearningCurve


def _layout(fig: go.Figure, title: str, height: int = 320, legend_beside: bool = False) -> go.Figure:
    """The title at the top; a legend (two traces or more) in a row of its own between the title and the plot, so a
    long title and long names do not print over one another, or with `legend_beside` in a column right of the plot
    (for a dozen entries, which a row would wrap)."""
    row = len(fig.data) > 1 and not legend_beside
    if legend_beside:
        legend = dict(orientation="v", yanchor="top", y=1, x=1.02, xanchor="left")
    else:
        legend = dict(orientation="h", yanchor="bottom", y=1.02, x=1, xanchor="right")
    fig.update_layout(
        title=dict(text=title, y=1, yanchor="top", pad=dict(t=10)),
        height=height + (30 if row else 0),
        margin=dict(l=10, r=10, t=70 if row else 40, b=10),
        legend=legend,
    )
    return fig


def class_counts(counts: dict[str, dict[str, int]]) -> go.Figure:
    fig = go.Figure([go.Bar(name=split, x=list(c.keys()), y=list(c.values())) for split, c in counts.items()])
    fig.update_layout(barmode="group", xaxis_tickangle=-40)
    return _layout(fig, "Images per class", 380)


def confusion(matrix: list[list[int]], classes: list[str], title: str = "Confusion matrix") -> go.Figure:
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=classes,
            y=classes,
            colorscale="Blues",
            hovertemplate="true %{y}<br>predicted %{x}<br>%{z} images<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", title="true class")
    fig.update_xaxes(title="predicted class", tickangle=-40)
    return _layout(fig, title, 520)


def stage_curve(curve: list[dict], final: float) -> go.Figure:
    fig = go.Figure(
        go.Scatter(
            x=[c["name"] for c in curve],
            y=[c["accuracy"] for c in curve],
            mode="lines+markers",
            name="probe after stage",
        )
    )
    fig.add_hline(y=final, line_dash="dot", annotation_text=f"final features {final:.1%}")
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    return _layout(fig, "How well the features transfer at each depth (validation photos)")


def per_class(values: dict[str, float | None], title: str = "Per-class accuracy") -> go.Figure:
    fig = go.Figure(go.Bar(x=list(values.keys()), y=[v if v is not None else 0 for v in values.values()]))
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    fig.update_xaxes(tickangle=-40)
    return _layout(fig, title, 360)


def training_curves(
    epochs: list[EpochEnded], probe_acc: float | None, running: StepEnded | None = None
) -> tuple[go.Figure, go.Figure]:
    """Accuracy and loss per epoch; epoch 0 is the head the run starts from; `running` adds the current epoch's
    running training accuracy and loss as it goes."""
    trained = [e for e in epochs if e.epoch > 0]
    x = [e.epoch for e in trained]
    acc = go.Figure(
        [
            go.Scatter(x=x, y=[e.train_acc for e in trained], name="train", mode="lines+markers"),
            go.Scatter(
                x=[e.epoch for e in epochs],
                y=[e.val_acc for e in epochs],
                name="validation",
                mode="lines+markers",
            ),
        ]
    )
    loss = go.Figure(
        [
            go.Scatter(x=x, y=[e.train_loss for e in trained], name="train", mode="lines+markers"),
            go.Scatter(
                x=[e.epoch for e in epochs],
                y=[e.val_loss for e in epochs],
                name="validation",
                mode="lines+markers",
            ),
        ]
    )
    if running is not None:
        acc.add_trace(
            go.Scatter(
                x=[running.epoch],
                y=[running.running_acc],
                name="train (this epoch so far)",
                mode="markers",
                marker=dict(symbol="circle-open", size=10),
            )
        )
        loss.add_trace(
            go.Scatter(
                x=[running.epoch],
                y=[running.running_loss],
                mode="markers",
                name="train (this epoch so far)",
                marker=dict(symbol="circle-open", size=10),
            )
        )
    if probe_acc is not None:
        acc.add_hline(y=probe_acc, line_dash="dot", annotation_text=f"linear probe {probe_acc:.1%}")
    acc.update_yaxes(tickformat=".0%", range=[0, 1])
    acc.update_xaxes(title="epoch (0 = the head the run starts from)", dtick=1)
    loss.update_xaxes(title="epoch", dtick=1)
    return _layout(acc, "Accuracy per epoch"), _layout(loss, "Loss per epoch")


def group_rates(steps: list[StepEnded], groups: list[str], labels: list[str]) -> go.Figure:
    fig = go.Figure()
    xs = [s.step for s in steps]
    for i, (g, label) in enumerate(zip(groups, labels)):
        ys = [s.lrs[i] for s in steps]
        if any(ys):
            fig.add_trace(go.Scatter(x=xs, y=ys, name=label, mode="lines", hovertemplate=f"{g}: %{{y:.1e}}"))
    fig.update_yaxes(type="log", title="learning rate")
    fig.update_xaxes(title="step")
    return _layout(fig, "Learning rate of every trainable group", legend_beside=True)  # one entry a group


def freeze_strip(groups: list[str], labels: list[str], frozen: list[bool], lrs: list[float]) -> go.Figure:
    colours = ["#9aa5b1" if f else "#2e9e5b" for f in frozen]
    text = ["frozen" if f else f"{lr:.0e}" for f, lr in zip(frozen, lrs)]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=[1] * len(labels),
            marker_color=colours,
            text=text,
            textposition="inside",
            customdata=groups,
            hovertemplate="%{x} (%{customdata}): %{text}<extra></extra>",
        )
    )
    fig.update_yaxes(visible=False)
    return _layout(fig, "Layer groups: grey = frozen, green = training (rate shown)", 200)


def group_bars(
    groups: list[str], values: list[float], title: str, log: bool = False, labels: list[str] | None = None
) -> go.Figure:
    fig = go.Figure(
        go.Bar(
            x=labels or groups,
            y=values,
            customdata=groups,
            hovertemplate="%{x} (%{customdata}): %{y:.3g}<extra></extra>",
        )
    )
    if log:
        fig.update_yaxes(type="log")
    fig.update_xaxes(tickangle=-30)
    return _layout(fig, title, 280)


def learning_curve(curve: LearningCurve) -> go.Figure:
    """The cross-validated accuracy against training photos (the folds' range as bars) and the law fitted to it."""
    fig = go.Figure(
        go.Scatter(
            x=curve.photos,
            y=curve.accuracy,
            mode="markers",
            name="measured (cross-validated)",
            error_y=dict(
                type="data",
                symmetric=False,
                array=[h - a for h, a in zip(curve.high, curve.accuracy)],
                arrayminus=[a - lo for a, lo in zip(curve.accuracy, curve.low)],
            ),
        )
    )
    n, accuracy = curve.drawn()
    if n:
        fig.add_trace(go.Scatter(x=n, y=accuracy, mode="lines", name="fitted law", line=dict(dash="dot")))
    fig.add_vline(x=curve.n_now, line_dash="dash", annotation_text=f"all {curve.n_now} photos")
    fig.update_xaxes(type="log", title="training photos")
    fig.update_yaxes(title="accuracy", tickformat=".0%", range=[0, 1])
    return _layout(fig, "How accuracy grows with more photos")


def lr_range(result: LrRange) -> go.Figure:
    fig = go.Figure(go.Scatter(x=list(result.lrs), y=list(result.losses), mode="lines", name="smoothed loss"))
    if result.suggestion:
        fig.add_vline(x=result.suggestion, line_dash="dot", annotation_text=f"suggested {result.suggestion:.0e}")
    fig.update_xaxes(type="log", title="head learning rate")
    return _layout(fig, "Learning-rate range test")


def _interval_bar(name: str, x: list[str], values: list[float | None], intervals: list, seconds: list) -> go.Bar:
    """Bars of test accuracy with their 95% intervals as whiskers, each labelled with its value and time at the
    bar's foot (above the bar, the label sat under the whisker)."""
    hi = [(iv[1] - v) if v is not None and iv else 0 for v, iv in zip(values, intervals)]
    lo = [(v - iv[0]) if v is not None and iv else 0 for v, iv in zip(values, intervals)]
    text = [f"{v:.0%} · {s:.0f} s" if v is not None and s is not None else "" for v, s in zip(values, seconds)]
    return go.Bar(
        name=name,
        x=x,
        y=values,
        text=text,
        textposition="inside",
        insidetextanchor="start",
        error_y=dict(type="data", array=hi, arrayminus=lo),
    )


def gap(rows: list[CompareRow]) -> go.Figure:
    """Per run, on the test split: the starting head (the probe's head on the pretrained backbone) and the chosen
    model, each with its 95% interval and the seconds it took (`engine.CompareRow`)."""
    x = [f"{r.run}<br>{r.strategy}" for r in rows]
    fig = go.Figure(
        [
            _interval_bar(
                "epoch 0: the starting head (test)",
                x,
                [r.start_test for r in rows],
                [r.start_test_interval for r in rows],
                [r.start_seconds for r in rows],
            ),
            _interval_bar(
                "chosen model: best epoch on val (test)",
                x,
                [r.test for r in rows],
                [r.test_interval for r in rows],
                [r.seconds for r in rows],
            ),
        ]
    )
    fig.update_layout(
        barmode="group", yaxis_tickformat=".0%", yaxis_range=[0, 1.12], yaxis_title="right on test photos"
    )
    return _layout(fig, "Probe vs fine-tuning, per run (test photos nothing was chosen on)", 380)


def overlay(curves: dict[str, list[EpochEnded]]) -> go.Figure:
    """Validation accuracy per epoch of several runs on one axis from 0 to 100%; a run of one point (a linear probe:
    no epoch to train) is a dashed level across the epochs, so that a curve starting from the same head does not
    hide it."""
    last = max((e.epoch for eps in curves.values() for e in eps), default=0)
    fig = go.Figure([_curve(name, eps, last) for name, eps in curves.items()])
    fig.update_yaxes(tickformat=".0%", range=[0, 1.02])
    fig.update_xaxes(title="epoch (0 = the starting head)", dtick=1)
    _layout(fig, "Validation accuracy per epoch, selected runs", 380)
    # the runs' names are long (the lesson's are sentences): the legend goes under the axis, not over the title
    return fig.update_layout(
        legend=dict(orientation="h", yanchor="top", y=-0.3, x=0, xanchor="left"), margin=dict(l=10, r=10, t=40, b=80)
    )


def _curve(name: str, eps: list[EpochEnded], last: int) -> go.Scatter:
    """One run's validation curve; a single point drawn as a dashed level to epoch `last`."""
    if len(eps) == 1 and last:
        level = [eps[0].val_acc] * 2
        return go.Scatter(x=[eps[0].epoch, last], y=level, name=name, mode="lines", line=dict(dash="dash"))
    return go.Scatter(x=[e.epoch for e in eps], y=[e.val_acc for e in eps], name=name, mode="lines+markers")


def shootout(rows: tuple[ShootoutRow, ...]) -> go.Figure:
    ok = [r for r in rows if r.accuracy is not None]
    fig = go.Figure(
        go.Bar(
            x=[r.backbone for r in ok],
            y=[r.accuracy for r in ok],
            text=[f"{r.accuracy:.1%}" for r in ok],
            textposition="outside",
        )
    )
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    return _layout(fig, "Linear probe accuracy per backbone (validation photos)", 300)


def lesson(rows: list[LessonRow]) -> go.Figure:
    """The lesson's result for a non-engineer: test accuracy of each arm, its 95% interval and the time it took."""
    done = [r for r in rows if r.test_accuracy is not None]
    fig = go.Figure(
        _interval_bar(
            "test accuracy",
            [r.label for r in done],
            [r.test_accuracy for r in done],
            [r.test_interval for r in done],
            [r.seconds for r in done],
        )
    )
    fig.update_yaxes(tickformat=".0%", range=[0, 1.1], title="right on test photos")
    return _layout(fig, "The same network and photos, four ways (test photos nothing was chosen on)", 380)


def domain_gap(stages: list) -> go.Figure:
    """Per stage: how often a classifier tells a target photo from a training photo (50%: alike), and the MMD."""
    names = [s.name for s in stages]
    fig = go.Figure(
        [
            go.Bar(x=names, y=[s.domain_acc for s in stages], name="domain classifier accuracy", yaxis="y"),
            go.Scatter(x=names, y=[s.mmd for s in stages], name="MMD", mode="lines+markers", yaxis="y2"),
        ]
    )
    fig.add_hline(y=0.5, line_dash="dot", annotation_text="chance: the two sets look alike")
    fig.update_layout(
        yaxis=dict(tickformat=".0%", range=[0, 1]),
        yaxis2=dict(overlaying="y", side="right", title="MMD", rangemode="tozero", showgrid=False),
        xaxis_tickangle=-40,
    )
    return _layout(fig, "How far your target photos are from your training photos, stage by stage", 380)


def domain_curves(epochs: list[EpochEnded]) -> go.Figure:
    """An adapted run's epochs: the domain classifier's accuracy and loss (DANN) or the MMD, and the ramped weight."""
    trained = [e for e in epochs if e.adapt]
    x = [e.epoch for e in trained]
    fig = go.Figure()
    for key, name in (("domain_acc", "domain classifier accuracy"), ("domain_loss", "domain loss"), ("mmd", "MMD")):
        if any(key in e.adapt for e in trained):
            fig.add_trace(go.Scatter(x=x, y=[e.adapt.get(key) for e in trained], name=name, mode="lines+markers"))
    fig.add_trace(
        go.Scatter(
            x=x, y=[e.adapt.get("adapt_weight") for e in trained], name="adaptation weight", line=dict(dash="dot")
        )
    )
    fig.update_xaxes(title="epoch", dtick=1)
    return _layout(fig, "Adaptation: training photos against target photos, per epoch")


def reliability(bins: list[dict], title: str) -> go.Figure:
    """Confidence against accuracy per confidence bin (point size: photos in it); the diagonal is a perfectly
    calibrated model."""
    fig = go.Figure(
        [
            go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot"), name="calibrated"),
            go.Scatter(
                x=[b["confidence"] for b in bins],
                y=[b["accuracy"] for b in bins],
                mode="markers+lines",
                marker=dict(size=[max(6, min(30, b["n"] ** 0.5 * 2)) for b in bins]),
                text=[f"{b['n']} photos" for b in bins],
                name="this model",
            ),
        ]
    )
    fig.update_xaxes(title="confidence", tickformat=".0%", range=[0, 1])
    fig.update_yaxes(title="accuracy", tickformat=".0%", range=[0, 1])
    return _layout(fig, title, 360)


def embedding_map(points: list) -> go.Figure:
    """The photos in 2-D, one colour per class; a cross marks a photo a head that never saw it got wrong, a ring one
    whose label confident learning suspects."""
    fig = go.Figure()
    for label in sorted({p.label for p in points}):
        mine = [p for p in points if p.label == label]
        fig.add_trace(
            go.Scatter(
                x=[p.x for p in mine],
                y=[p.y for p in mine],
                mode="markers",
                name=label,
                customdata=[p.path for p in mine],
                text=[label + (" · suspected label" if p.suspect else "") for p in mine],
                hovertemplate="%{text}<extra></extra>",
                marker=dict(
                    size=[11 if p.suspect else 6 for p in mine],
                    symbol=["x" if p.mistake else "circle" for p in mine],
                    line=dict(width=[2 if p.suspect else 0 for p in mine], color="black"),
                ),
            )
        )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, "Your photos as the backbone sees them (t-SNE of its features)", 520)
