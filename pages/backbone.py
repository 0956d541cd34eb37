"""Backbone: the catalogue (sorted, filtered), getting weights (download on request, or upload), layer groups and
what layer 1 learned."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from engine import (
    FAMILIES,
    CatalogueRow,
    MISSING,
    TransferLabError,
    catalogue_rows,
    create_backbone,
    fetch_weights,
    filter_grid,
    first_conv_weight,
    get_entry,
    group_labels,
    install_weights,
    layer_groups,
    pretrained_head_note,
    sub,
)
from ui import charts
from ui.jobs import finished_job, polling
from ui.state import backbone, get_jobs, remember
from ui.errors import fragment

SORTS = {
    "parameters": "params (M)",
    "ImageNet top-1": "ImageNet top-1 %",
    "download size": "download (MB)",
    "input size": "input px",
}

st.title("2 · Backbone")
st.caption(
    "A backbone is a network already trained on millions of photos. Its early layers detect edges and "
    "textures that are useful for almost any images; you add a new last layer for your classes."
)
jobs = get_jobs()


@st.cache_data(show_spinner=False)
def catalogue() -> dict[str, CatalogueRow]:
    return {r.name: r for r in catalogue_rows()}


@st.cache_resource(show_spinner="Loading the backbone…")
def load(name: str):
    model, info = create_backbone(name)
    weight = first_conv_weight(model)
    return layer_groups(model), filter_grid(weight), info, weight.shape[-1], pretrained_head_note(model)


def weights_changed() -> None:
    catalogue.clear()
    load.clear()


rows = catalogue()
table = pd.DataFrame([r.table_row() for r in rows.values()])
left, mid, right = st.columns([3, 2, 2])
families = left.multiselect("Families", FAMILIES, default=list(FAMILIES))
sort = mid.selectbox("Sort by", list(SORTS))
here = right.checkbox("Only backbones with weights on this machine")
shown = table[table.family.isin(families)]
shown = shown[shown.weights != MISSING] if here else shown
shown = shown.sort_values(SORTS[sort], ascending=sort != "ImageNet top-1", na_position="last")
st.dataframe(shown, hide_index=True, width="stretch")
st.caption(
    "Self-supervised backbones (DINOv2, CLIP) have no ImageNet classifier, so no top-1 figure; their frozen "
    "features are often the strongest for a linear probe. Parameters and download sizes are the float32 weights as "
    "published, with ImageNet's last layer where there is one (a run replaces it with one output per class)."
)

names = table["backbone"].tolist()
choice = st.selectbox("Backbone", names, index=names.index(backbone()), key="backbone_select")
remember(backbone=choice)
row = rows[choice]
download_key = f"download|{choice}"
job = jobs.get(download_key)


@fragment(run_every=polling(jobs, download_key))
def download_status() -> None:
    current = jobs.get(download_key)
    text = f"{current.stage or 'asking the hub'}… {current.fraction:.0%}" if current else ""
    done = finished_job(jobs, download_key, running=text, cancel="Cancel download", on_done=weights_changed)
    if done is not None:
        st.success(f"Downloaded · sha256 {done.result.sha256} · {done.result.note}")


def get_weights() -> None:
    """The two ways to get a missing backbone's weights: download on request, or upload a file."""
    st.warning(f"No weights for {choice} on this machine yet. Nothing is downloaded until you ask.")
    down, up = st.columns(2)
    with down:
        st.markdown("**Download from the Hugging Face hub**")
        st.caption(
            f"From {row.hub} · licence {row.licence} · about {row.download_mb:.0f} MB. The "
            f"file's SHA-256 is checked against the hub's."
        )
        running = job is not None and job.state == "running"
        if row.hub and st.button(f"Download ({row.download_mb:.0f} MB)", disabled=running, type="primary"):
            jobs.start(download_key, fetch_weights, choice, cancellable=True)
            st.rerun()
        download_status()
    with up:
        st.markdown("**Or upload a weights file**")
        file = st.file_uploader(
            "A .safetensors file, or a .pth / .pt state dict", type=["safetensors", "pth", "pt"], key=f"upload_{choice}"
        )
        if file is not None and st.session_state.get("_installed") != file.file_id:
            suffix = ".safetensors" if file.name.endswith(".safetensors") else ".pth"
            tmp = sub("uploads") / f"{choice}-{file.file_id}{suffix}"
            try:
                tmp.write_bytes(file.getvalue())
                info = install_weights(choice, tmp)
            except TransferLabError as e:
                st.error(f"{file.name}: {e}")
                return
            except OSError as e:  # a full disk or an unwritable weights folder
                st.error(f"{file.name} could not be stored: {e.strerror or e}; free space and upload again")
                return
            finally:
                tmp.unlink(missing_ok=True)
            st.session_state["_installed"] = file.file_id
            weights_changed()
            st.success(f"Installed {file.name} · sha256 {info.sha256}")
            st.rerun()
    st.caption(row.how_to)


if not row.available:
    get_weights()
    st.stop()
try:
    groups, grid, info, k, head_note = load(choice)
except TransferLabError as e:
    st.error(str(e))
    st.stop()
entry = get_entry(choice)
st.success(
    f"Weights: {info.source} · sha256 {info.sha256} · input {entry.input_size[-1]} px · "
    f"mean {entry.mean} · std {entry.std} · licence {row.licence}"
)
names = [g.name for g in groups]
st.plotly_chart(
    charts.group_bars(
        names,
        [g.params_m for g in groups],
        "Layer groups, input to output (millions of parameters)",
        labels=group_labels(names),
    ),
    width="stretch",
)
st.caption(
    "Training can freeze groups from the left: early groups hold general features, later groups hold "
    f"features specific to what the backbone was trained on. A transformer's groups are its blocks. {head_note}"
)
st.subheader("What layer 1 learned")
st.image(grid, width=min(720, grid.shape[1]))
st.caption(
    f"Each square is one {k}×{k} filter of the first layer, enlarged; grey is zero, light and dark are "
    f"positive and negative weights, colour shows which colour a filter responds to. Filters with a light and "
    f"a dark side are edge detectors; uniformly coloured ones are colour blobs. They are useful for almost any "
    f"photo, which is why transfer works."
)
