"""Predict and export: try a photo, then export the model with its input contract."""
from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from engine.errors import TransferLabError
from engine.export import export_run, model_card, predict_image
from ui.state import get_runner

st.set_page_config(page_title="Predict & export · TransferLab", layout="wide")
st.title("6 · Predict and export")
runner = get_runner()
finished = [r.id for r in runner.store.list() if r.status().get("state") == "finished"]
if not finished:
    st.info("No finished run yet: train one first.")
    st.stop()
rid = st.selectbox("Run", finished, key="export_run")
run = runner.store.open(rid)

st.subheader("Try a photo")
photo = st.file_uploader("Photo", type=["jpg", "jpeg", "png", "webp", "bmp"], key="photo")
if photo is not None:
    try:
        out = predict_image(run, photo.getvalue(), k=5)
        st.image(photo.getvalue(), width=240)
        st.dataframe(pd.DataFrame(out["top"], columns=["class", "probability"]), hide_index=True)
        for w in out["warnings"]:
            st.warning(w)
    except TransferLabError as e:
        st.error(str(e))

st.subheader("Export")
st.caption("TorchScript and ONNX run without TransferLab; the model card says exactly how to prepare an image.")
formats = st.multiselect("Formats", ["torchscript", "onnx", "safetensors"], default=["onnx", "safetensors"],
                         key="formats")
if st.button("Export", type="primary", key="export"):
    with st.spinner("Exporting…"):
        result = export_run(run, formats=tuple(formats))
    st.session_state["export_result"] = result
result = st.session_state.get("export_result")
if result and result["card"]["run_id"] == rid:
    st.success(f"Exported to {result['dir']}")
    if "onnx_same_top1" in result["checks"]:
        st.write(f"ONNX check against PyTorch on {result['checks']['onnx_images']} validation photos: same top-1 = "
                 f"{result['checks']['onnx_same_top1']}, "
                 f"max |difference| = {result['checks']['onnx_max_abs_diff']:.2e}")
    for kind, path in result["files"].items():
        with open(path, "rb") as f:
            st.download_button(f"Download {kind}", f.read(), file_name=path.rsplit("/", 1)[-1], key=f"dl_{kind}")
card = model_card(run)
st.download_button("Download model card (JSON)", json.dumps(card, indent=2, default=float), "model_card.json",
                   key="dl_card")
st.json(card, expanded=False)
