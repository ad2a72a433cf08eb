"""``dataengine ui``: a read-only local web UI over a warehouse (standard-library HTTP server).

Binds 127.0.0.1 unless another host is asked for explicitly; serves GET only; every page is
rendered on the server (no script, nothing from the network), so it works offline and
shows the same reports as ``dataengine report``. Ctrl-C stops it cleanly.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import OrderedDict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from dataengine import api
from dataengine.ui import pages

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ReportCache:
    """Rendered report pages per (path, lake snapshot): a page is redrawn only when the lake changed."""

    def __init__(self, size: int = 32):
        self.size, self._lock, self._pages = size, threading.Lock(), OrderedDict()

    def get(self, key, render):
        with self._lock:
            if key in self._pages:
                self._pages.move_to_end(key)
                return self._pages[key]
        html = render()
        with self._lock:
            self._pages[key] = html
            while len(self._pages) > self.size:
                self._pages.popitem(last=False)
        return html


class UiServer(ThreadingHTTPServer):
    daemon_threads = True  # a slow page never blocks Ctrl-C
    allow_reuse_address = True

    def __init__(self, address, wh):
        super().__init__(address, Handler)
        self.wh = wh
        self.cache = ReportCache()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/"


class Handler(BaseHTTPRequestHandler):
    server: UiServer
    server_version = "dataengine-ui"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if not self.host_allowed():
            self.send_error(HTTPStatus.FORBIDDEN, "this UI answers only to http://127.0.0.1 or http://localhost")
            return
        url = urlsplit(self.path)
        path, params = unquote(url.path), parse_qs(url.query)
        wh = self.server.wh
        try:
            status, html = self.route(wh, path, params)
        except api.DataEngineError as exc:
            status, html = HTTPStatus.NOT_FOUND, pages.message(wh, "not found", str(exc))
        except Exception as exc:  # a page that fails says so; the server keeps serving
            status, html = HTTPStatus.INTERNAL_SERVER_ERROR, pages.message(wh, "error", f"{type(exc).__name__}: {exc}")
        self.send_html(status, html)

    def route(self, wh, path: str, params: dict) -> tuple[int, str]:
        if path in ("/", "/index.html"):
            return HTTPStatus.OK, pages.overview(wh)
        if path == "/sql":
            query = params.get("q", [None])[0]
            number = _int(params.get("page", ["0"])[0])
            size = _int(params.get("size", ["50"])[0], 50)
            return HTTPStatus.OK, pages.sql_page(wh, query, number, size)
        for prefix, kind in (("/table/", "table:"), ("/blend/", "blend:"), ("/run/", "run:")):
            if path.startswith(prefix) and len(path) > len(prefix):
                target = api.resolve_target(wh, kind + path[len(prefix):])
                key = (str(target), target.kind, wh.current_snapshot())
                return HTTPStatus.OK, self.server.cache.get(key, lambda: pages.report(wh, target))
        return HTTPStatus.NOT_FOUND, pages.message(wh, "not found", f"no page at {path}")

    def host_allowed(self) -> bool:
        """On loopback, only a loopback Host header: a web page elsewhere cannot reach the UI through
        DNS rebinding (a name of theirs that resolves to 127.0.0.1)."""
        if not is_loopback(self.server.server_address[0]):
            return True
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
        return is_loopback(host)

    def do_POST(self):  # noqa: N802
        self.refuse()

    do_PUT = do_DELETE = do_PATCH = do_POST

    def refuse(self):
        self.send_html(HTTPStatus.METHOD_NOT_ALLOWED,
                       pages.message(self.server.wh, "read-only", "this UI only reads the warehouse"))

    def send_html(self, status: int, html: str) -> None:
        body = html.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        # the pages need nothing from anywhere: say so, so a browser blocks any attempt
        self.send_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; "
                                                    "img-src data:; form-action 'self'")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        if self.server.log is not None:
            self.server.log(f"{self.address_string()} {format % args}")


def _int(text: str, default: int = 0) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        return default


def make_server(wh, host: str = "127.0.0.1", port: int = 8765, log=None) -> UiServer:
    """A bound (not yet serving) UI server; ``port=0`` picks a free port."""
    server = UiServer((host, port), api.open_warehouse(wh))
    server.log = log
    return server


def serve(server: UiServer, on_ready=None) -> None:
    """Serve until Ctrl-C (KeyboardInterrupt), SIGTERM or :meth:`shutdown`; always closes the socket."""
    threading.Thread(target=api.prepare_charts, daemon=True).start()  # the chart engine starts in ~1-5 s
    if threading.current_thread() is threading.main_thread():  # a service manager's stop is a clean stop too
        signal.signal(signal.SIGTERM, _interrupt)
    if on_ready:
        on_ready(server.url)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


def wait_until_up(url: str, timeout: float = 30.0) -> None:
    """Block until the server answers (for tests and scripts that start it in the background)."""
    import urllib.request

    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)
