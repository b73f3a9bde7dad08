"""A small HTTP server on a loopback address, for the offline demo and the test suite.

Routes map a path (with its query string) to a fixed response or to a handler function; the
server counts the requests each path received, so tests can check what was fetched.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclasses.dataclass(frozen=True)
class Route:
    """A fixed response."""

    body: bytes = b""
    status: int = 200
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)


class RequestHandler(BaseHTTPRequestHandler):
    """Answers each GET from the server's routes; a route that is a function receives this
    handler and answers through `send_route` (after a delay, a hold, a count...)."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm on, the body then waits for
    # the client's delayed ACK (40 ms on Linux) on every keep-alive request.
    disable_nagle_algorithm = True
    server: _QuietServer

    def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
        site = self.server.site
        with site.lock:
            site.requests[self.path] += 1
        # Like a real site, ignore query strings the route does not name (?utm_source=...).
        route = site.routes.get(self.path) or site.routes.get(self.path.split("?", 1)[0])
        if route is None:
            self.send_route(Route(b"not found", 404, {"Content-Type": "text/plain"}))
        elif isinstance(route, Route):
            self.send_route(route)
        else:
            route(self)

    def send_route(self, route: Route) -> None:
        """Answer with `route`, or 304 when the request's validators match it."""
        if route.status == 200 and self._not_modified(route):
            self.send_response(304)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(route.status)
        for name, value in route.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        self.wfile.write(route.body)

    def _not_modified(self, route: Route) -> bool:
        """Conditional GET as real servers answer it: ETag first, else Last-Modified."""
        etag = route.headers.get("ETag")
        if etag and self.headers.get("If-None-Match"):
            return self.headers["If-None-Match"] == etag
        modified = route.headers.get("Last-Modified")
        return bool(modified) and self.headers.get("If-Modified-Since") == modified

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test and demo output clean


Handler = Callable[[RequestHandler], None]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops connections when clients open many at once
    # (they retry after a second); a web server's is in the hundreds.
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], site: LoopbackServer) -> None:
        super().__init__(address, RequestHandler)
        self.site = site

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up mid-response are expected (size caps, timeouts)


class LoopbackServer:
    """Serve `routes` on host:port (port 0 picks a free one) in a background thread."""

    def __init__(self, routes: Mapping[str, Route | Handler], host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.routes: dict[str, Route | Handler] = dict(routes)
        self.requests: Counter[str] = Counter()
        self.lock = threading.Lock()
        self._httpd = _QuietServer((host, port), self)
        # serve_forever looks for a shutdown request every poll_interval: stop() waits that long.
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
