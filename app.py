"""TransferLab dashboard: the router. Pages live in app_pages/, not pages/: with a pages/ folder, Streamlit 1.67 still
shows "Page not found" over a page opened by its URL, although st.navigation routes it (seen in chromium, in
tests/test_e2e_backbone.py). All ML logic lives in engine/."""

from __future__ import annotations

import streamlit as st

from ui.state import PAGES

st.set_page_config(page_title="TransferLab", page_icon="🌱", layout="wide")
st.navigation(
    [st.Page(f"app_pages/{file}", title=title, url_path=url, default=file == "home.py") for file, title, url in PAGES]
).run()
