"""A stand-in for the Hugging Face hub on 127.0.0.1: files in the hub's URL layout (`/{repo}/resolve/{rev}/{file}`),
with the headers the hub client reads (commit, ETag = the file's SHA-256, size) and ranged requests, so the real
download client is exercised without a network. It can cut a transfer once part-way, serve bytes other than the ones
its ETag names, or pause until told to go on."""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Hub:
    files: dict[str, bytes] = field(default_factory=dict)  # "repo/filename" -> content
    cut_at: float | None = None  # cut the first full transfer after this fraction of the body
    cut_always: bool = False  # cut every transfer a little past where it starts
    corrupt: bool = False  # serve different bytes than the ETag names
    gate: threading.Event | None = None  # when set: pause after the first chunk until the gate opens
    delay: float = 0.0  # seconds between chunks (a slow network, so progress can be watched)
    etag: str | None = None  # the ETag to send instead of the file's SHA-256 (a hostile mirror)
    commit: str = COMMIT  # the commit to send
    hang: threading.Event | None = None  # when given: stop sending half-way, connection open, until it is set
    ranges: list[str] = field(default_factory=list)  # Range headers received
    gets: int = 0

    def add(self, repo: str, filename: str, data: bytes) -> None:
        self.files[f"{repo}/{filename}"] = data


def _handler(hub: Hub):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _file(self) -> tuple[bytes, str] | None:
            path = self.path.split("?")[0].lstrip("/")
            if "/resolve/" not in path:
                return None
            repo, rest = path.split("/resolve/", 1)
            filename = rest.split("/", 1)[1] if "/" in rest else ""
            data = hub.files.get(f"{repo}/{filename}")
            return None if data is None else (data, hashlib.sha256(data).hexdigest())

        def _headers(self, data: bytes, sha: str, status: int = 200, start: int = 0) -> None:
            self.send_response(status)
            self.send_header("X-Repo-Commit", hub.commit)
            self.send_header("ETag", f'"{hub.etag or sha}"')
            self.send_header("X-Linked-Size", str(len(data)))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(data) - start))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()

        def _not_found(self) -> None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_HEAD(self):
            found = self._file()
            if found is None:
                self._not_found()
                return
            self._headers(*found)

        def do_GET(self):
            found = self._file()
            if found is None:
                self._not_found()
                return
            data, sha = found
            body = bytes(b ^ 0xFF for b in data[:64]) + data[64:] if hub.corrupt else data
            hub.gets += 1
            start = 0
            if rng := self.headers.get("Range"):
                hub.ranges.append(rng)
                start = int(rng.split("=")[1].split("-")[0])
            self._headers(data, sha, 206 if start else 200, start)
            chunk = 64 * 1024
            end = len(body)
            if hub.cut_at is not None and not start:
                end = int(len(body) * hub.cut_at)
                hub.cut_at = None
            if hub.cut_always:
                end = min(len(body) - 1, start + chunk)
            for i in range(start, end, chunk):
                self.wfile.write(body[i : min(i + chunk, end)])
                time.sleep(hub.delay)
                if hub.hang is not None and i >= len(body) // 2:
                    self.wfile.flush()
                    hub.hang.wait(30)
                    return
                if hub.gate is not None and i == start:
                    self.wfile.flush()
                    hub.gate.wait(10)
            if end < len(body):  # a dropped connection part-way
                self.wfile.flush()
                self.connection.shutdown(2)
                self.close_connection = True

    return Handler


class _QuietServer(ThreadingHTTPServer):
    """A server whose clients may hang up mid-file (a cancelled download does): that is not an error to print."""

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class HubServer:
    """`with HubServer(hub) as url:` serves `hub` on 127.0.0.1 at a free port."""

    def __init__(self, hub: Hub):
        self.hub = hub
        self.server = _QuietServer(("127.0.0.1", 0), _handler(hub))
        self.server.daemon_threads = True

    def __enter__(self) -> str:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
