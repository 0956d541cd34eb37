"""Predict and export: try a photo, then export the model with its input contract and a readable model card."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from engine import (
    CHECKED_FORMATS,
    EXPORT_FORMATS,
    IMAGE_TYPES,
    TARGETS,
    RunResult,
    TransferLabError,
    Unsure,
    estimate_accuracy,
    existing_path,
    explain_run,
    export_run,
    export_zip,
    has_model,
    model_card,
    model_card_markdown,
    predict_image,
)
from ui import charts
from ui.estimate import show_estimate
from ui.state import data_root, get_runner

st.title("6 · Predict and export")
runner = get_runner()
usable = [r.id for r in runner.store.list() if has_model(r)]
if not usable:
    st.info("No run with a model yet: train one first (a stopped run with a best checkpoint also counts).")
    st.stop()
current = st.session_state.get("run_id")
rid = st.selectbox(
    "Run",
    usable,
    index=usable.index(current) if current in usable else 0,
    key="export_run",
    format_func=lambda r: f"{r} · {runner.store.open(r).status().get('state')}",
)
run = runner.store.open(rid)

result = RunResult.read(run)
if result is not None and result.unsure:
    st.subheader("How far to trust an answer")
    split = "test" if result.reliability_test else "val"
    bins = result.reliability_test or result.reliability_val
    st.plotly_chart(charts.reliability(bins, f"Reliability on the {split} photos"), width="stretch", key="reliability")
    before = result.ece_test_before if split == "test" else result.ece_val_before
    after = result.ece_test if split == "test" else result.ece_val
    st.caption(
        f"How often the model is right against how sure it says it is: on the diagonal it means what it says. Its "
        f"probabilities are divided by a temperature of {result.temperature:.2f} fitted on the validation photos: the "
        f"calibration error on the {split} photos went from {before:.3f} to {after:.3f}. On the "
        f"validation photos: {Unsure(**result.unsure).sentence()}."
    )

st.subheader("Try a photo")
photo = st.file_uploader("Photo", type=list(IMAGE_TYPES), key="photo")
if photo is not None:
    try:
        with st.spinner(
            "Loading the model and predicting (the first photo of a run also learns what its training "
            "photos look like)…"
        ):
            out = predict_image(run, photo.getvalue(), k=5)
        if not photo.name.lower().endswith(".npy"):
            st.image(photo.getvalue(), width=240)
        if out.out_of_place:
            st.error(out.place_sentence)
        elif out.place_sentence:
            st.caption(out.place_sentence)
        with st.expander("Scores for each class", expanded=not out.out_of_place):
            st.dataframe(
                pd.DataFrame([{"class": c, "probability": p} for c, p in out.top]),
                hide_index=True,
                column_config={
                    "probability": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1)
                },
            )
        if out.unsure and not out.out_of_place:
            st.warning(out.unsure_sentence)
        with st.spinner("Where the model looks…"):
            [(chosen, start)] = explain_run(run, [photo.getvalue()])
        a, b = st.columns(2)
        a.image(chosen.overlay, caption="the chosen model", width=260)
        if start is not None:
            b.image(start.overlay, caption="the starting head (the linear probe's)", width=260)
        st.caption(
            "Grad-CAM: the warm areas are the ones that pushed the model towards its answer, for the class the chosen "
            "model predicts. Where the fine-tuned model and the probe look at different things, this shows it."
        )
        for w in out.warnings:
            st.warning(w)
    except TransferLabError as e:
        st.error(str(e))

st.subheader("How right will it be on your photos?")
folder = st.text_input(
    f"Folder of photos from where the model will be used (under {data_root()}; no labels needed)", key="estimate_folder"
)
if st.button("Estimate", key="estimate", disabled=not folder):
    try:
        path = existing_path(folder, base=data_root())
        with st.spinner("Reading the photos and predicting…"):
            st.session_state["estimated"] = (rid, estimate_accuracy(run, str(path), root=str(data_root())))
    except TransferLabError as e:
        st.error(str(e))
shown = st.session_state.get("estimated")
if shown and shown[0] == rid:
    show_estimate(shown[1])

st.subheader("Export")
st.caption(
    "Choose where the model will run: each file written is run on the test photos for its accuracy, and timed on "
    "this CPU. A file that loses more accuracy than allowed, or an int8 file no faster than fp32, is refused."
)
target_name = st.selectbox(
    "Where it will run", list(TARGETS), key="target", format_func=lambda t: f"{t} · {TARGETS[t].means}"
)
chosen = TARGETS[target_name]
limits = st.columns(3)
latency_ms = limits[0].number_input(
    "Max ms a photo (1 thread)", min_value=0.0, value=chosen.max_latency_ms, key=f"latency_{target_name}"
)
size_mb = limits[1].number_input("Max MB", min_value=0.0, value=chosen.max_size_mb, key=f"size_{target_name}")
drop = limits[2].number_input(
    "Max points lost", min_value=0.0, value=chosen.max_drop, step=0.5, key=f"drop_{target_name}"
)
formats = st.multiselect("Formats", list(EXPORT_FORMATS), default=list(chosen.formats), key=f"formats_{target_name}")
if st.button("Export", type="primary", key="export"):
    try:
        with st.spinner("Exporting, then running every file on the test photos and timing it…"):
            target = chosen.with_limits(latency_ms, size_mb, drop)
            exported = export_run(run, formats=tuple(formats), target=target)
            st.session_state["export_result"] = exported
            st.session_state["export_zip"] = export_zip(exported.dir)  # once, not on every rerun of the page
    except TransferLabError as e:
        st.error(str(e))
result = st.session_state.get("export_result")
if result and result.card["run_id"] == rid:
    st.success(f"Exported {', '.join(result.files) or 'nothing'} for the {result.target.name}.")
    st.dataframe(
        pd.DataFrame(result.rows()),
        hide_index=True,
        column_config={
            "accuracy": st.column_config.NumberColumn(format="percent"),
            "same top-1 as PyTorch": st.column_config.NumberColumn(format="percent"),
            "MB": st.column_config.NumberColumn(format="%.1f"),
        },
    )
    st.info(result.sentence())
    if result.int8:
        st.caption(result.int8["sentence"])
    for why in result.refused.values():
        st.warning(why)
    for kind, name in CHECKED_FORMATS.items():
        if f"{kind}_same_top1" in result.checks:
            st.write(
                f"{name} check against PyTorch on {result.checks[f'{kind}_images']} validation photos: same top-1 = "
                f"{result.checks[f'{kind}_same_top1']}, "
                f"max |difference| = {result.checks[f'{kind}_max_abs_diff']:.2e}"
            )
    st.download_button(
        "Download everything (zip)",
        st.session_state["export_zip"],
        file_name=f"{rid}-{result.target.name}.zip",
        key="dl_zip",
        type="primary",
    )
    st.caption(result.how_to_run())
    for kind, path in result.single_files().items():
        with open(path, "rb") as f:
            st.download_button(f"Download {kind}", f.read(), file_name=path.rsplit("/", 1)[-1], key=f"dl_{kind}")
st.markdown(model_card_markdown(run))
st.download_button(
    "Download model card (JSON)",
    json.dumps(model_card(run).to_dict(), indent=2, default=float),
    "model_card.json",
    key="dl_card",
)
