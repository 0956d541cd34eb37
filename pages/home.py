"""Home: what TransferLab does, the Quick demo, and the backbones on this machine."""

from __future__ import annotations

import streamlit as st

from engine import (
    DEFAULT_BACKBONE,
    LESSON_TEXT,
    SAMPLE,
    SplitCounts,
    catalogue_rows,
    demo_config,
    split_counts,
    stories,
)
from ui.jobs import polling
from ui.state import dataset_path, get_jobs, get_runner, init_session, lesson_promise, remember, start_lesson
from ui.errors import fragment


@st.cache_data(show_spinner=False)
def _catalogue() -> list[dict]:
    return [row.table_row() for row in catalogue_rows()]


@st.cache_data(show_spinner=False)
def _sample_counts() -> SplitCounts:
    return split_counts(SAMPLE)


init_session()
st.title("TransferLab")
st.markdown(
    "A few hundred labelled photos are enough for a good classifier **if you start from a network that has already "
    "learned to see**. TransferLab measures how well pretrained "
    "features fit *your* images, chooses how much of the network to retrain by evidence, trains it, tells you how "
    "it does on photos nothing was chosen on, and exports it."
)
for story in stories():
    st.caption(f"Measured by `bench/story.py` ({story.machine}): {story.sentence()}.")
counts = _sample_counts()
st.info(
    f"Bundled sample: {counts.classes} classes of pepper, potato and tomato leaves (PlantVillage), "
    f"{counts.train:,} training and {counts.val:,} validation photos, in "
    f"`{SAMPLE.relative_to(SAMPLE.parent.parent)}`."
)
st.subheader("Quick demo")
st.write(
    "One click: the bundled sample, EfficientNet-Lite0 and the other bundled backbones, the plan auto makes "
    "within a short time budget. You land on the Train page and watch every step."
)
left, right = st.columns(2)
if left.button("▶ Quick demo", type="primary", key="quick_demo"):
    rid = get_runner().submit(demo_config(), name="quick-demo")
    remember(dataset=str(SAMPLE), backbone=DEFAULT_BACKBONE, run_id=rid)
    st.switch_page("pages/train.py")
if right.button("▶ Show me why transfer learning works", key="lesson_demo"):
    start_lesson(get_runner(), dataset_path())
    st.switch_page("pages/lesson.py")
right.caption(
    f"{LESSON_TEXT} It uses the dataset chosen on the Data page (the bundled sample unless you chose another)."
)


lesson_promise(dataset_path())  # starts the estimate (a job) when it is not made yet
estimating = polling(get_jobs(), f"lesson-estimate|{dataset_path()}")


@fragment(run_every=estimating)
def lesson_time() -> None:
    """The lesson's promise: the cost model's estimate for this dataset on this machine, once it is made."""
    estimate = lesson_promise(dataset_path())
    if estimate is None:
        if estimating:
            st.caption("Estimating how long it takes on this machine…")
        return
    st.caption(
        f"On this dataset and this machine it should take about {estimate.minutes:.1f} minutes (the cost model "
        f"every plan is costed with: {', '.join(f'{arm} {s:.0f} s' for arm, s in estimate.seconds.items())})."
    )
    if estimating:
        st.rerun()  # once the estimate is made: the page draws it without polling


with right:
    lesson_time()
st.markdown(
    "Or step by step: **1 Data** → **2 Backbone** → **3 Probe** → **4 Train** → **5 Compare** → "
    "**6 Predict & export** (in the sidebar)."
)
st.subheader("Backbones on this machine")
st.caption(
    "Each backbone was pretrained on ImageNet. 'bundled' weights ship with TransferLab; others load from a "
    "local cache or a file you give, never from the internet."
)
st.dataframe(_catalogue(), hide_index=True, width="stretch")
