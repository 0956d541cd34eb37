"""An estimate of accuracy on unlabelled photos as the Data and Predict pages show it: the sentence, how it was
made and what it cannot see, the expected class mix, and what was left out."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from engine import Estimate


def show_estimate(est: Estimate) -> None:
    """`est`, drawn once."""
    st.info(est.sentence)
    st.caption(f"{est.how} {est.caveat}")
    st.dataframe(
        pd.DataFrame([{"class": c, "expected share": p} for c, p in est.class_mix.items()]),
        hide_index=True,
        column_config={"expected share": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1)},
    )
    st.caption(est.mix_how)
    for line in est.remarks:
        st.caption(line)
