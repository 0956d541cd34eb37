"""Backbone: the catalogue, weight availability, layer groups and what layer 1 learned."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from engine.catalogue import get_entry, list_entries
from engine.errors import TransferLabError
from engine.groups import layer_groups
from engine.visual import filter_grid, first_conv_weight
from engine.weights import availability, create_backbone
from ui import charts
from ui.state import backbone

st.set_page_config(page_title="Backbone · TransferLab", layout="wide")
st.title("2 · Backbone")
st.caption("A backbone is a network already trained on ImageNet's 1.3 million photos. Its early layers detect "
           "edges and textures that are useful for almost any images; you add a new last layer for your classes.")


@st.cache_data(show_spinner=False)
def catalogue() -> pd.DataFrame:
    rows = []
    for e in list_entries():
        a = availability(e.name)
        rows.append({"backbone": e.name, "params (M)": e.params_m, "ImageNet top-1 %": e.top1,
                     "input": e.input_size[-1], "best for": e.best_for,
                     "weights": a["source"] or "missing", "how to provide": a["how_to"]})
    return pd.DataFrame(rows)


@st.cache_resource(show_spinner="Loading the backbone…")
def load(name: str):
    model, info = create_backbone(name)
    return layer_groups(model), filter_grid(first_conv_weight(model)), info


table = catalogue()
st.dataframe(table.drop(columns=["how to provide"]), hide_index=True, width="stretch")
names = table["backbone"].tolist()
choice = st.selectbox("Backbone", names, index=names.index(backbone()), key="backbone_select")
st.session_state["backbone"] = choice
row = table[table.backbone == choice].iloc[0]
if row["weights"] == "missing":
    st.error(row["how to provide"])
    st.stop()
try:
    groups, grid, info = load(choice)
except TransferLabError as e:
    st.error(str(e))
    st.stop()
entry = get_entry(choice)
st.success(f"Weights: {info.source} · sha256 {info.sha256[:12]}… · input {entry.input_size[-1]} px · "
           f"mean {entry.mean} · std {entry.std}")
st.plotly_chart(charts.group_bars([g.name for g in groups], [g.num_params / 1e6 for g in groups],
                                  "Layer groups, input to output (millions of parameters)"), width="stretch")
st.caption("Training can freeze groups from the left: early groups hold general features, later groups hold "
           "features specific to ImageNet's classes.")
st.subheader("What layer 1 learned")
st.image(grid, width=420)
st.caption("Each square is one filter of the first layer, shown as a colour patch: edge detectors at different "
           "angles and colour blobs. They are useful for almost any photo, which is why transfer works.")
