"""`sqlflow docs serve`: the generated site over HTTP, on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import functools
import webbrowser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..errors import UserError


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per request would bury the address the user needs

    def end_headers(self) -> None:
        # The data files change on every generate; a reload must never show stale ones.
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


def make_server(directory: Path, host: str = "127.0.0.1", port: int = 8080) -> ThreadingHTTPServer:
    """An HTTP server for the site in `directory` (call `serve_forever`; port 0 picks a free one)."""
    if not (directory / "index.html").exists():
        raise UserError(
            f"no docs site in {directory}",
            hint="run `sqlflow docs generate` first",
        )
    handler = functools.partial(_QuietHandler, directory=str(directory))
    try:
        return ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise UserError(
            f"cannot serve on {host}:{port}: {exc.strerror or exc}",
            hint="pick another port with --port",
        ) from exc


def url_of(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    shown = (
        "localhost" if host in ("127.0.0.1", "::1") else ("[" + str(host) + "]" if ":" in str(host) else host)
    )
    return f"http://{shown}:{port}/"


def open_in_browser(url: str) -> None:
    webbrowser.open(url)
