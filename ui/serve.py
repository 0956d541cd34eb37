"""Starts the dashboard: `streamlit run app.py` with the given options, in this process.

app.py routes with `st.navigation` over the files in pages/. Streamlit learns that only when app.py first calls
`st.navigation`; until then, a process whose main script has a pages/ folder beside it treats that folder as its
older multipage layout, so the first page opened by its URL after the server starts (a bookmark, a reload) gets a
"Page not found" dialog over the right page. Saying so before the server starts removes that dialog; nothing else of
Streamlit's behaviour changes (app.py's first `st.navigation` call sets the same flag).

Usage: python -m ui.serve [streamlit run options]   (what `make run` calls)
"""

from __future__ import annotations

import sys
from pathlib import Path

from streamlit.runtime.pages_manager import PagesManager
from streamlit.web import cli

APP = Path(__file__).resolve().parent.parent / "app.py"


def main(argv: list[str]) -> int:
    PagesManager.uses_pages_directory = False  # app.py's st.navigation lists pages/; no folder discovery
    sys.argv = ["streamlit", "run", str(APP), *argv]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
