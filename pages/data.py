"""Data: choose a dataset and see its health."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from engine import (
    DECISION_ACTIONS,
    SAMPLE,
    Decision,
    TransferLabError,
    check_dataset,
    decide_pool_photo,
    read_decisions,
    save_decisions,
    build_report,
    estimate_accuracy,
    runs_on,
    input_spec,
    literal,
    load_dataset,
    measure_gap,
    sub,
    suggest_for,
    existing_path,
    viewable,
)
from ui import charts
from ui.jobs import finished_job, polling
from ui.estimate import show_estimate
from ui.state import allowed, backbone, data_root, dataset_path, get_jobs, get_runner, in_chans, remember, root_for
from ui.errors import fragment

st.title("1 · Data")
st.caption(
    "A dataset is a folder with one subfolder per class (optionally split into train/ and val/), a zip of "
    "such a folder, or a CSV of path,label."
)

source = st.radio("Source", ["Bundled sample", "Folder on this server", "Upload a zip"], horizontal=True, key="source")
if source == "Bundled sample":
    if st.button("Use the bundled sample", key="use_sample"):
        remember(dataset=str(SAMPLE))
elif source == "Folder on this server":
    root = data_root()
    folder = st.text_input(f"Folder (under {root})", key="folder")
    if st.button("Open folder", key="open_folder") and folder:
        try:
            path = existing_path(folder, base=root)  # a name refused here never becomes the dataset, nor enters the URL
        except TransferLabError as e:
            st.error(str(e))  # the dataset open before stays
        else:
            if not path.is_relative_to(root):
                st.error(f"{path} is outside the data root {root}; set TRANSFERLAB_DATA_ROOT to allow it.")
            else:
                remember(dataset=str(path))
else:
    up = st.file_uploader("Zip of a dataset folder", type=["zip"], key="upload")
    if up is not None:
        target = sub("uploads") / Path(up.name).name
        target.write_bytes(up.getbuffer())
        remember(dataset=str(target))

path = dataset_path()
try:
    ds = load_dataset(path, root=root_for(path))
except TransferLabError as e:
    st.error(str(e))
    st.stop()
report = build_report(ds, input_size=input_spec(backbone()).input_size[-1])
st.session_state["dataset_root"] = ds.root
if st.session_state.get("in_chans_for") != ds.root:  # a new dataset starts from its own channel count
    st.session_state["in_chans"], st.session_state["in_chans_for"] = report.in_chans, ds.root

st.subheader(f"Dataset: {Path(ds.root).name}")
c = st.columns(5)
c[0].metric("Classes", len(report.classes))
c[1].metric("Training images", len(ds.train))
c[2].metric("Validation images", len(ds.val))
c[3].metric("Test images", len(ds.test))
c[4].metric(
    "Imbalance",
    f"{report.imbalance_ratio:.1f}x",
    help="training photos of the largest class over those of the smallest",
)
st.caption(
    f"Validation (chooses the model): {report.val_source}. Test (scored once, at the end): {report.test_source}."
)
for w in report.warnings:
    st.warning(w)
if not report.warnings:
    st.success("No problems found: every file is readable, no duplicates, no class below 2 images.")

st.plotly_chart(charts.class_counts(report.counts), width="stretch")
st.caption(
    "How many photos each class has. Classes with far fewer photos are learned less well; the Train page "
    "can balance them."
)

if report.unreadable:
    with st.expander(f"{len(report.unreadable)} skipped file(s)", expanded=True):
        st.dataframe(pd.DataFrame(report.unreadable), hide_index=True, width="stretch")
if report.duplicates:
    with st.expander(f"{len(report.duplicates)} group(s) of identical images"):
        st.write("Leakage between training and validation:" if report.leakage else "Within one split:")
        st.dataframe(pd.DataFrame({"files": [" | ".join(g) for g in report.duplicates]}), hide_index=True)
st.session_state["in_chans"] = int(
    st.number_input(  # a plain key outlives this page's widgets
        "Image channels to train with",
        1,
        64,
        value=int(st.session_state["in_chans"]),
        key=f"in_chans|{ds.root}",
        help="3 = RGB (any image is converted). 1 = grey, 2 = grey + alpha, 4 = RGBA; more come from .npy "
        "arrays of shape (H, W, C). The backbone's first convolution is adapted from its RGB filters.",
    )
)
st.caption(
    f"Image sizes: {', '.join(f'{k} ({v})' for k, v in list(report.sizes.items())[:5])}. "
    f"Colour modes: {', '.join(f'{k} ({v})' for k, v in report.modes.items())}."
)

st.subheader("Photos from where the model will be used")
st.caption(
    "A model trained on one kind of photo (lab photos, one camera, photographs) is often used on another (field "
    "photos, phones, paintings). Give a folder of such photos, no labels needed, to see how far they are from your "
    "training photos before it costs you; without one, your photos are compared with what the backbone was "
    "pretrained on."
)
st.session_state.setdefault("target_folder", st.session_state.get("target", ""))
target = st.text_input(f"Folder of target photos (under {data_root()}; optional)", key="target_folder")
gap_key = f"gap|{path}|{target}|{backbone()}"
if st.button("Measure the domain gap", key="measure_gap"):
    try:
        real = str(existing_path(target, base=data_root())) if target else ""
        if real and not allowed(real):
            raise TransferLabError(
                f"{real} is outside the data root {data_root()}; set TRANSFERLAB_DATA_ROOT to allow it."
            )
    except TransferLabError as e:
        st.error(str(e))
    else:
        remember(target=real)
        get_jobs().start(gap_key, measure_gap, path, real or None, backbone(), root_for(path), in_chans())


@fragment(run_every=polling(get_jobs(), gap_key))
def show_gap() -> None:
    job = finished_job(get_jobs(), gap_key)
    if job is None:
        return
    gap = job.result
    st.info(gap.sentence)
    for note in gap.notes:
        st.caption(note)
    if gap.stages:
        st.plotly_chart(charts.domain_gap(gap.stages), width="stretch", key="gap_chart")
        st.caption(
            "At each stage of the backbone, how often a simple classifier tells one of your target photos from one "
            "of your training photos (cross-validated; 50% means the stage sees no difference), and the MMD "
            "between the two sets. Where they are far apart, expect the accuracy there to be lower than on val."
        )
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "photos": s.label,
                    "count": s.n or "–",
                    "mean red, green, blue": ", ".join(f"{m:.2f}" for m in s.mean_rgb),
                    "grey": f"{s.grey_share:.0%}",
                    "median size": f"{s.median_size[0]}x{s.median_size[1]}",
                }
                for s in (gap.source, gap.target)
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    st.caption("The inputs side by side: average colour (0-1), the share of grey photos and the median size.")


show_gap()

st.subheader("How right will my model be there?")
there = st.session_state.get("target") or ""  # the target folder the domain gap was last measured for
models = runs_on(get_runner().store, path) if there else []
if not there:
    st.caption(
        "Measure the domain gap with a folder of target photos above; a model trained on these photos then "
        "says how many of them it expects to get right, without their labels."
    )
elif not models:
    st.caption(
        "Train a model on these photos first (Train page); it then says how many of the target photos it "
        "expects to get right, without their labels."
    )
else:
    model_id = st.selectbox("Model", models, key="estimate_run", help="The runs with a model trained on these photos.")
    estimate_key = f"estimate|{model_id}|{there}"
    if st.button("Expected accuracy on the target photos", key="estimate_target"):
        model = get_runner().store.open(model_id)
        get_jobs().start(estimate_key, lambda progress: estimate_accuracy(model, there, str(data_root())))

    @fragment(run_every=polling(get_jobs(), estimate_key))
    def show_expected() -> None:
        job = finished_job(get_jobs(), estimate_key, running="Reading the target photos and predicting…")
        if job is not None:
            show_estimate(job.result)

    show_expected()

st.subheader("Check my photos")
st.caption(
    "With a few hundred photos the labels and the splits matter more than the recipe. The check finds photos whose "
    "label is likely wrong (a linear head that never saw them disagrees, confidently), near-identical photos, and "
    "photos of val or test that are near copies of training photos (they make the score look better than it is)."
)
check_key = f"check|{path}|{backbone()}"
if st.button("Check my photos", key="check_photos"):
    get_jobs().start(check_key, check_dataset, path, backbone(), root_for(path), in_chans())
try:
    decided = read_decisions(ds, root_for(path))
except TransferLabError as e:  # a decisions file edited by hand: its line, and the page goes on
    st.error(str(e))
    decided = []
if decided:
    st.caption(
        f"{len(decided)} decision(s) stored for these photos; the next probe, plan and run apply them (your files are "
        f"never edited)."
    )


@fragment(run_every=polling(get_jobs(), check_key))
def show_check() -> None:
    job = finished_job(get_jobs(), check_key)
    if job is None:
        return
    report = job.result
    flagged = report.flagged
    st.info(
        f"{len(flagged)} of {len(report.label_issues)} labelled photos may carry a wrong label; "
        f"{len(report.near_duplicates)} near-duplicate pair(s) within a split; {len(report.leaks)} across splits "
        f"(two photos are {report.rule})."
    )
    for note in report.notes:
        st.caption(note)
    if flagged:
        decide(flagged[:12])
    if report.map:
        chosen = st.plotly_chart(
            charts.embedding_map(report.map), width="stretch", key="embedding_map", on_select="rerun"
        )
        st.caption(
            "Each dot is a photo, placed by how the backbone's features see it: classes that form their own islands "
            "are already told apart by the pretrained network; crosses are photos a head that never saw them got "
            "wrong, rings the photos whose label looks wrong. Select dots to see their photos."
        )
        picked = [p["customdata"] for p in (chosen.selection.points if chosen and chosen.selection else [])][:8]
        if picked:
            st.image([viewable(p) for p in picked], width=120)
    if report.learning_curve is not None:
        st.markdown("**How many more photos**")
        st.plotly_chart(charts.learning_curve(report.learning_curve), width="stretch", key="learning_curve")
        st.caption(report.learning_curve.sentence)
    pairs(report.leaks[:6], "Leaks: val or test photos that are near copies of training photos")
    pairs(report.near_duplicates[:6], "Near-duplicates within a split (two labels: one of them is wrong)")


def decide(issues) -> None:
    """The most suspicious photos, each with its label, the suggested one and a decision to store."""
    st.markdown("**Likely label errors**, most suspicious first")
    cols = st.columns(4)
    choices = {}
    for i, issue in enumerate(issues):
        col = cols[i % 4]
        col.image(viewable(issue.path), width="stretch")
        col.caption(f"labelled {literal(issue.label)} · looks like {literal(issue.suggested)} ({issue.confidence:.0%})")
        options = [f"relabel as {issue.suggested}" if a == "relabel" else a for a in DECISION_ACTIONS]
        choices[issue] = col.selectbox("decision", options, key=f"decide|{issue.path}", label_visibility="collapsed")
    st.caption(
        "Each photo's label got little probability from a head fitted without it, and another class got a lot. "
        "Decide here; the decisions are stored apart from your files."
    )
    if st.button("Save decisions", key="save_decisions"):
        try:
            kept = {d.path: d for d in read_decisions(ds)}  # a file that does not read is refused, never replaced
            for issue, choice in choices.items():
                kept.pop(issue.path, None)
                if choice.startswith("relabel"):
                    kept[issue.path] = Decision(issue.path, "relabel", issue.suggested)
                elif choice == "exclude":
                    kept[issue.path] = Decision(issue.path, "exclude")
            save_decisions(ds, list(kept.values()))
            st.success(f"{len(kept)} decision(s) stored; the next plan applies them.")
        except TransferLabError as e:
            st.error(str(e))


def pairs(found, title: str) -> None:
    if not found:
        return
    st.markdown(f"**{title}**")
    for p in found:
        a, b, c = st.columns([2, 2, 3])
        a.image(viewable(p.a), width=120)
        b.image(viewable(p.b), width=120)
        c.caption(
            f"{p.kind} · features {p.cosine:.3f} · pixels {p.similarity:.3f} · {p.split_a} {literal(p.label_a)} "
            f"and {p.split_b} {literal(p.label_b)}"
        )


show_check()

st.subheader("What to label next")
st.caption(
    "More photos than time to label them? Give a folder of unlabelled ones (the pool): they are ranked by how much a "
    "label would teach the model, the photos it hesitates on first, one per kind of doubt. Label each with one click "
    "or skip it; the answers are stored apart from your photos, and the next probe and run use them."
)
pool_folder = st.text_input(f"Folder of unlabelled photos (under {data_root()})", key=f"pool|{path}")
asked = int(st.number_input("Photos to suggest", 1, 200, 12, key="suggest_n"))
suggest_key = f"suggest|{path}|{backbone()}"
if st.button("Rank the pool", key="rank_pool") and pool_folder:
    try:
        real = existing_path(pool_folder, base=data_root())
        if not allowed(str(real)):
            raise TransferLabError(
                f"{real} is outside the data root {data_root()}; set TRANSFERLAB_DATA_ROOT to allow it."
            )
    except TransferLabError as e:
        st.error(str(e))
    else:
        get_jobs().start(suggest_key, suggest_for, path, str(real), backbone(), root_for(path), in_chans(), asked)


@fragment(run_every=polling(get_jobs(), suggest_key))
def show_suggestions() -> None:
    job = finished_job(get_jobs(), suggest_key)
    if job is None:
        return
    found = job.result
    if "label_error" in st.session_state:
        st.error(st.session_state.pop("label_error"))
    try:
        answered = {d.path: d for d in read_decisions(ds, root_for(path))}
    except TransferLabError as e:
        st.error(str(e))
        return
    st.info(
        f"{found.ranked} pool photo(s) ranked by a head that learnt from {found.labelled} labelled photos "
        f"({found.from_pool} of them labelled from your pool)."
    )
    for note in found.notes:
        st.caption(note)
    if found.skipped:
        with st.expander(f"{len(found.skipped)} skipped file(s)"):
            st.dataframe(pd.DataFrame([{"file": s.path, "why": s.reason} for s in found.skipped]), hide_index=True)
    cols = st.columns(4)
    for i, photo in enumerate(found.photos):
        label_card(cols[i % 4], photo, answered.get(photo.path))
    labelled, skipped = found.answered(answered)
    st.caption(
        f"{labelled} labelled and {skipped} skipped of these {len(found.photos)}; the next probe, plan and run use "
        f"your labels. How they are ranked: {found.rule}."
    )


def label_card(col, photo, answer) -> None:
    """One suggested photo: the head's two likeliest classes as one-click labels, any class, or skip."""
    col.image(viewable(photo.path), width="stretch")
    if answer is not None:
        col.caption(f"labelled {literal(answer.new_label)}" if answer.action == "label" else "skipped")
        return
    col.caption(
        f"looks like {literal(photo.guess)} ({photo.guess_p:.0%}) or {literal(photo.second)} ({photo.second_p:.0%})"
    )
    where = (ds, photo.path, root_for(path))
    for cls in (photo.guess, photo.second):
        col.button(cls, key=f"label|{photo.path}|{cls}", width="stretch", on_click=store_answer, args=(*where, cls))
    other = f"label|{photo.path}|other"
    col.selectbox(
        "another class",
        ds.classes,
        index=None,
        key=other,
        placeholder="another class…",
        on_change=lambda: store_answer(*where, st.session_state[other]),
    )
    col.button("Skip", key=f"label|{photo.path}|skip", width="stretch", on_click=store_answer, args=(*where, None))


def store_answer(data, photo: str, root: str, label: str | None) -> None:
    """A click's answer into the decisions file (before the page reruns, so the card shows it at once)."""
    try:
        decide_pool_photo(data, photo, label, root)
    except TransferLabError as e:
        st.session_state["label_error"] = str(e)


show_suggestions()

st.subheader("Examples")
cls = st.selectbox("Class", ds.classes, key="example_class")
label = ds.classes.index(cls)
examples = [it.path for it in ds.train if it.label == label][:6]
st.image([viewable(p) for p in examples], width=140, caption=[Path(p).name[:18] for p in examples])
