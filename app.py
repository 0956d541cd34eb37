"""TransferLab dashboard: the landing page. Pages live in pages/; all ML logic lives in engine/."""
from __future__ import annotations

import os

import streamlit as st

from engine.catalogue import list_entries
from engine.config import TrainConfig
from engine.paths import SAMPLE
from engine.weights import availability
from ui.state import DEFAULT_BACKBONE, get_runner, init_session

st.set_page_config(page_title="TransferLab", page_icon="🌱", layout="wide")


@st.cache_data(show_spinner=False)
def _catalogue_rows() -> list[dict]:
    return [{"backbone": e.name, "params (M)": e.params_m, "ImageNet top-1": e.top1, "input": e.input_size[-1],
             "weights": availability(e.name)["source"] or "not on this machine", "best for": e.best_for}
            for e in list_entries()]


init_session()
st.title("TransferLab")
st.markdown(
    "A few hundred labelled photos are enough for a good classifier **if you start from a network that has already "
    "learned to see**. A network trained from scratch on 800 plant-disease photos stalls near 60%; an "
    "ImageNet-pretrained backbone with a new head reaches about 90%. TransferLab measures how well pretrained "
    "features fit *your* images, recommends how much of the network to retrain, trains it, and exports it.")
st.info(f"Bundled sample: 15 classes of pepper, potato and tomato leaves (PlantVillage), 800 training and 300 "
        f"validation photos, in `{SAMPLE.relative_to(SAMPLE.parent.parent)}`.")
st.subheader("Quick demo")
st.write("One click: the bundled sample, EfficientNet-Lite0, the recommended strategy and a short budget "
         "(a few minutes on a laptop CPU). You land on the Train page and watch it learn.")
if st.button("▶ Quick demo", type="primary", key="quick_demo"):
    head, ft = (int(x) for x in os.environ.get("TRANSFERLAB_DEMO_EPOCHS", "3,4").split(","))
    cfg = TrainConfig(data=str(SAMPLE), backbone=DEFAULT_BACKBONE, strategy="auto", head_epochs=head,
                      finetune_epochs=ft, views=2)
    st.session_state.update(dataset=str(SAMPLE), backbone=DEFAULT_BACKBONE,
                            run_id=get_runner().submit(cfg, name="quick-demo"))
    st.switch_page("pages/4_Train.py")
st.markdown("Or step by step: **1 Data** → **2 Backbone** → **3 Probe** → **4 Train** → **5 Compare** → "
            "**6 Predict & export** (in the sidebar).")
st.subheader("Backbones on this machine")
st.caption("Each backbone was pretrained on ImageNet. 'bundled' weights ship with TransferLab; others load from a "
           "local cache or a file you give, never from the internet.")
st.dataframe(_catalogue_rows(), hide_index=True, width="stretch")
