"""An engine error on a page is its one line, never a traceback: `fragment` is `st.fragment` with that net under
it (a fragment reruns on its own, outside the page), and the router (`app.py`) holds the same net under every page.
Each page still catches what it expects where it can say more (beside the input that caused it); the nets catch the
rest."""

from __future__ import annotations

import functools
from typing import Any, Callable

import streamlit as st

from engine import TransferLabError


def shown(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn`, its engine errors drawn as one error line where it draws."""

    @functools.wraps(fn)
    def safe(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TransferLabError as e:
            st.error(str(e))
            return None

    return safe


def fragment(run_every: float | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`st.fragment(run_every=...)` over `shown(fn)`."""
    return lambda fn: st.fragment(run_every=run_every)(shown(fn))
