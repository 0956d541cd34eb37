"""TransferLab dashboard: the landing page. Pages live in pages/; all ML logic lives in engine/."""
from __future__ import annotations

import streamlit as st

from engine.catalogue import list_entries
from engine.paths import SAMPLE
from engine.weights import availability

st.set_page_config(page_title="TransferLab", page_icon="🌱", layout="wide")


@st.cache_data(show_spinner=False)
def _catalogue_rows() -> list[dict]:
    return [{"backbone": e.name, "params (M)": e.params_m, "ImageNet top-1": e.top1, "input": e.input_size[-1],
             "weights": availability(e.name)["source"] or "not on this machine", "best for": e.best_for}
            for e in list_entries()]


st.title("TransferLab")
st.markdown(
    "A few hundred labelled photos are enough for a good classifier **if you start from a network that has already "
    "learned to see**. A network trained from scratch on 800 plant-disease photos stalls near 60%; an "
    "ImageNet-pretrained backbone with a new head reaches about 90%. TransferLab measures how well pretrained "
    "features fit *your* images, recommends how much of the network to retrain, trains it, and exports it.")
st.info(f"Bundled sample: 15 classes of pepper, potato and tomato leaves (PlantVillage), 800 training and 300 "
        f"validation photos, in `{SAMPLE.relative_to(SAMPLE.parent.parent)}`.")
st.subheader("Backbones on this machine")
st.caption("Each backbone was pretrained on ImageNet. 'bundled' weights ship with TransferLab; others load from a "
           "local cache or a file you give, never from the internet.")
st.dataframe(_catalogue_rows(), hide_index=True, width="stretch")
