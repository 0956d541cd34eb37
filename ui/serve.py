"""Starts the dashboard: `streamlit run app.py` with the given options, in this process.

app.py routes with `st.navigation` over the files in pages/. Streamlit learns that only when app.py first calls
`st.navigation`; until then, a process whose main script has a pages/ folder beside it treats that folder as its
older multipage layout, so the first page opened by its URL after the server starts (a bookmark, a reload) gets a
"Page not found" dialog over the right page. Saying so before the server starts removes that dialog; nothing else of
Streamlit's behaviour changes (app.py's first `st.navigation` call sets the same flag).

It also serves only the dashboard's own host names. A web page the user visits can make its own domain name point
at 127.0.0.1 (DNS rebinding) and then drive the dashboard from the user's browser; what gives it away is the `Host`
header, which names the attacker's domain. Every HTTP request and WebSocket whose `Host` is not in
`server.allowedHosts` (.streamlit/config.toml: 127.0.0.1, localhost, ::1; add a name with
`make run HOST=0.0.0.0 ARGS="--server.allowedHosts=NAME"`) is refused with 403 before Streamlit sees it. Streamlit
itself refuses a WebSocket whose `Origin` is another site, and keeps its XSRF protection.

Usage: python -m ui.serve [streamlit run options]   (what `make run` calls)
"""

from __future__ import annotations

import sys
from pathlib import Path

from streamlit.runtime.pages_manager import PagesManager
from streamlit.web import cli
from streamlit.web.server.starlette import starlette_app
from streamlit.web.server.starlette.starlette_websocket import is_host_allowed

APP = Path(__file__).resolve().parent.parent / "app.py"
REFUSED = b"This dashboard answers only to its own host names (server.allowedHosts); open it as http://127.0.0.1.\n"


class OwnHostsOnly:
    """ASGI middleware: a request or WebSocket whose `Host` header is not an allowed host name gets 403 (Streamlit's
    own test of `server.allowedHosts`, which it applies to WebSockets only)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            if not is_host_allowed(host or None):
                await _refuse(scope["type"], send)
                return
        await self.app(scope, receive, send)


async def _refuse(kind: str, send) -> None:
    if kind == "websocket":  # closed before it is accepted: the server answers the upgrade with 403
        await send({"type": "websocket.close", "code": 1008})
        return
    await send({"type": "http.response.start", "status": 403, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": REFUSED})


def _with_host_check(make_middleware):
    def middleware() -> list:
        from starlette.middleware import Middleware

        return [Middleware(OwnHostsOnly), *make_middleware()]

    return middleware


def main(argv: list[str]) -> int:
    PagesManager.uses_pages_directory = False  # app.py's st.navigation lists pages/; no folder discovery
    starlette_app.create_streamlit_middleware = _with_host_check(starlette_app.create_streamlit_middleware)
    sys.argv = ["streamlit", "run", str(APP), *argv]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
