"""The dashboard's server answers only to its own host names: a foreign `Host` (DNS rebinding) gets 403 on a page and
on the WebSocket, a foreign `Origin` on the WebSocket too; 127.0.0.1 and localhost are served."""

from __future__ import annotations

import base64
import http.client
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from engine.paths import REPO
from browser import free_port


@pytest.fixture(scope="module")
def port():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ui.serve", "--server.address", "127.0.0.1", "--server.port", str(port)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and status(port, "/_stcore/health", f"127.0.0.1:{port}") != 200:
            time.sleep(0.5)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def status(port: int, path: str, host: str) -> int | None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", path, headers={"Host": host})
        return conn.getresponse().status
    except OSError:
        return None


def websocket(port: int, host: str, origin: str) -> str:
    """The status line the server answers a WebSocket upgrade of Streamlit's stream with."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n"
        f"Sec-WebSocket-Protocol: streamlit\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request.encode())
        return s.recv(200).decode("latin-1").splitlines()[0]


def test_the_page_is_served_on_its_own_names_and_refused_on_a_foreign_host(port):
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
        assert status(port, "/", host) == 200, host
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1.evil.example:{port}"):
        assert status(port, "/", host) == 403, host
        assert status(port, "/_stcore/health", host) == 403, host


def test_a_websocket_with_a_foreign_host_or_origin_is_refused(port):
    assert " 403 " in websocket(port, "evil.example", "http://evil.example")
    assert " 403 " in websocket(port, f"127.0.0.1:{port}", "http://evil.example")
    assert " 101 " in websocket(port, f"127.0.0.1:{port}", f"http://127.0.0.1:{port}")
