"""Plotly figures built from engine results and run-store events."""
from __future__ import annotations

import plotly.graph_objects as go


def _layout(fig: go.Figure, title: str, height: int = 320) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=1, xanchor="right"))
    return fig


def class_counts(counts: dict[str, dict[str, int]]) -> go.Figure:
    fig = go.Figure([go.Bar(name=split, x=list(c.keys()), y=list(c.values())) for split, c in counts.items()])
    fig.update_layout(barmode="group", xaxis_tickangle=-40)
    return _layout(fig, "Images per class", 380)


def confusion(matrix: list[list[int]], classes: list[str]) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=matrix, x=classes, y=classes, colorscale="Blues", hovertemplate=
                               "true %{y}<br>predicted %{x}<br>%{z} images<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title="true class")
    fig.update_xaxes(title="predicted class", tickangle=-40)
    return _layout(fig, "Confusion matrix", 520)


def stage_curve(curve: list[dict], final: float) -> go.Figure:
    fig = go.Figure(go.Scatter(x=[c["name"] for c in curve], y=[c["accuracy"] for c in curve], mode="lines+markers",
                               name="probe after group"))
    fig.add_hline(y=final, line_dash="dot", annotation_text=f"final features {final:.1%}")
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    return _layout(fig, "How well the features transfer at each depth")


def per_class(values: dict[str, float], title: str = "Per-class accuracy") -> go.Figure:
    fig = go.Figure(go.Bar(x=list(values.keys()), y=list(values.values())))
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    fig.update_xaxes(tickangle=-40)
    return _layout(fig, title, 360)


def training_curves(epochs: list[dict], probe_acc: float | None) -> tuple[go.Figure, go.Figure]:
    x = [e["epoch"] for e in epochs]
    acc = go.Figure([go.Scatter(x=x, y=[e["train_acc"] for e in epochs], name="train", mode="lines+markers"),
                     go.Scatter(x=x, y=[e["val_acc"] for e in epochs], name="validation", mode="lines+markers")])
    if probe_acc is not None:
        acc.add_hline(y=probe_acc, line_dash="dot", annotation_text=f"linear probe {probe_acc:.1%}")
    acc.update_yaxes(tickformat=".0%", range=[0, 1])
    loss = go.Figure([go.Scatter(x=x, y=[e["train_loss"] for e in epochs], name="train", mode="lines+markers"),
                      go.Scatter(x=x, y=[e["val_loss"] for e in epochs], name="validation", mode="lines+markers")])
    return _layout(acc, "Accuracy per epoch"), _layout(loss, "Loss per epoch")


def group_rates(steps: list[dict], groups: list[str]) -> go.Figure:
    fig = go.Figure()
    xs = [s["step"] for s in steps]
    for i, g in enumerate(groups):
        ys = [s["lrs"][i] for s in steps]
        if any(ys):
            fig.add_trace(go.Scatter(x=xs, y=ys, name=g, mode="lines"))
    fig.update_yaxes(type="log", title="learning rate")
    return _layout(fig, "Learning rate of every trainable group")


def freeze_strip(groups: list[str], frozen: list[bool], lrs: list[float]) -> go.Figure:
    colours = ["#9aa5b1" if f else "#2e9e5b" for f in frozen]
    text = ["frozen" if f else f"{lr:.0e}" for f, lr in zip(frozen, lrs)]
    fig = go.Figure(go.Bar(x=groups, y=[1] * len(groups), marker_color=colours, text=text, textposition="inside",
                           hovertemplate="%{x}: %{text}<extra></extra>"))
    fig.update_yaxes(visible=False)
    return _layout(fig, "Layer groups: grey = frozen, green = training (rate shown)", 200)


def group_bars(groups: list[str], values: list[float], title: str, log: bool = False) -> go.Figure:
    fig = go.Figure(go.Bar(x=groups, y=values))
    if log:
        fig.update_yaxes(type="log")
    return _layout(fig, title, 280)


def lr_range(result: dict) -> go.Figure:
    fig = go.Figure(go.Scatter(x=result["lrs"], y=result["losses"], mode="lines", name="smoothed loss"))
    if result.get("suggestion"):
        fig.add_vline(x=result["suggestion"], line_dash="dot", annotation_text=f"suggested {result['suggestion']:.0e}")
    fig.update_xaxes(type="log", title="head learning rate")
    return _layout(fig, "Learning-rate range test")
