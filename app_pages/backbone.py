"""Backbone: the catalogue, weight availability, layer groups and what layer 1 learned."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from engine import (MISSING, TransferLabError, catalogue_table, create_backbone, filter_grid, first_conv_weight,
                    get_entry, group_labels, layer_groups)
from ui import charts
from ui.state import backbone, remember

st.title("2 · Backbone")
st.caption("A backbone is a network already trained on ImageNet's 1.3 million photos. Its early layers detect "
           "edges and textures that are useful for almost any images; you add a new last layer for your classes.")


@st.cache_data(show_spinner=False)
def catalogue() -> pd.DataFrame:
    return pd.DataFrame(catalogue_table())


@st.cache_resource(show_spinner="Loading the backbone…")
def load(name: str):
    model, info = create_backbone(name)
    weight = first_conv_weight(model)
    return layer_groups(model), filter_grid(weight), info, weight.shape[-1]


table = catalogue()
st.dataframe(table.drop(columns=["how to provide"]), hide_index=True, width="stretch")
names = table["backbone"].tolist()
choice = st.selectbox("Backbone", names, index=names.index(backbone()), key="backbone_select")
remember(backbone=choice)
row = table[table.backbone == choice].iloc[0]
if row["weights"] == MISSING:
    st.error(row["how to provide"])
    st.stop()
try:
    groups, grid, info, k = load(choice)
except TransferLabError as e:
    st.error(str(e))
    st.stop()
entry = get_entry(choice)
st.success(f"Weights: {info.source} · sha256 {info.sha256[:12]}… · input {entry.input_size[-1]} px · "
           f"mean {entry.mean} · std {entry.std}")
names = [g.name for g in groups]
st.plotly_chart(charts.group_bars(names, [g.num_params / 1e6 for g in groups],
                                  "Layer groups, input to output (millions of parameters)",
                                  labels=group_labels(names)), width="stretch")
st.caption("Training can freeze groups from the left: early groups hold general features, later groups hold "
           "features specific to ImageNet's classes.")
st.subheader("What layer 1 learned")
st.image(grid, width=min(720, grid.shape[1]))
st.caption(f"Each square is one {k}×{k} filter of the first layer, enlarged; grey is zero, light and dark are "
           f"positive and negative weights, colour shows which colour a filter responds to. Filters with a light and "
           f"a dark side are edge detectors; uniformly coloured ones are colour blobs. They are useful for almost any "
           f"photo, which is why transfer works.")
