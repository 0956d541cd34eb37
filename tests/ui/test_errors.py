"""The nets under every page: an engine error no page caught is one error line, in a page run by the router and in
a fragment rerunning on its own; anything else is not hidden."""

from streamlit.testing.v1 import AppTest

from engine.paths import REPO


def test_an_engine_error_a_page_did_not_catch_is_its_line_under_the_router(monkeypatch):
    import engine
    from engine.errors import DataError

    def broken():
        raise DataError("bench/results-story-cpu.txt: not a results file; run bench/story.py again")

    monkeypatch.setattr(engine, "stories", broken, raising=False)  # what the page imports, put back after
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["bench/results-story-cpu.txt: not a results file; run bench/story.py again"]


def _page_with_fragments():
    import streamlit as st

    from engine.errors import DataError
    from ui.errors import fragment

    @fragment()
    def refused() -> None:
        st.write("before")
        raise DataError("photo.jpg: refused, header claims 100000x100000 pixels; resize it")

    @fragment()
    def broken() -> None:
        raise RuntimeError("a bug, shown as one")

    refused()
    if st.session_state.get("with_bug"):
        broken()


def test_a_fragments_engine_error_is_its_line_and_a_bug_is_not_hidden():
    at = AppTest.from_function(_page_with_fragments).run()
    assert not at.exception and [e.value for e in at.error] == [
        "photo.jpg: refused, header claims 100000x100000 pixels; resize it"
    ]
    at.session_state["with_bug"] = True
    at.run()
    assert at.exception and "a bug" in at.exception[0].value


def test_every_fragment_of_the_pages_has_the_net():
    sources = [*(REPO / "pages").glob("*.py"), *(REPO / "ui").glob("*.py")]
    bare = [p.name for p in sources if p.name != "errors.py" and "st.fragment(" in p.read_text()]
    assert not bare, f"use ui.errors.fragment, not st.fragment, in {bare}"
