"""TransferLab dashboard: the router. `st.navigation` lists the pages in pages/ (Streamlit then ignores its own
discovery of that folder); start it with `make run` (`python -m ui.serve`), which says so before the first page load.
All ML logic lives in engine/; an engine error no page caught is shown as its one line (`ui.errors`)."""

from __future__ import annotations

import streamlit as st

from ui.errors import shown
from ui.state import PAGES

st.set_page_config(page_title="TransferLab", page_icon="🌱", layout="wide")
page = st.navigation(
    [st.Page(f"pages/{file}", title=title, url_path=url, default=file == "home.py") for file, title, url in PAGES]
)
shown(page.run)()  # an engine error a page did not catch itself: its line, never a traceback
