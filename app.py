"""TransferLab dashboard: the router. Pages live in pages/ (st.navigation, so Streamlit does not discover them on its
own); all ML logic lives in engine/."""
from __future__ import annotations

import streamlit as st

from ui.state import PAGES

st.set_page_config(page_title="TransferLab", page_icon="🌱", layout="wide")
st.navigation([st.Page(f"pages/{file}", title=title, url_path=url, default=file == "home.py")
               for file, title, url in PAGES]).run()
