"""Connection pools, one per site, that the HTTP client sends its requests through.

An httpcore pool walks all of its connections on every request and response, and for each
idle one all of them again, polling its socket. With the dozens of sites one worker fetches
from at once, that walk took much of the client's CPU per request (benchmarks/README.md). A
pool per site walks only the site's own few connections. When the pools hold more than
`max_sockets` connections, those of sites with no request in progress are closed, least
recently used first, so a worker that reaches thousands of sites does not keep a socket open
to each.

Requests and responses are httpcore's, over httpcore's public pools, whose connections go
through the network backend given (the address guard): httpx 0.29's own HTTPTransport takes no
network backend (encode/httpx discussion 3180, pull request 3749). The client calls the pools
directly rather than through an httpx.Client, whose per-request work (URL merging, a cookie
jar, hooks, response wrapping) was much of the CPU a 304 cost (benchmarks/README.md,
poll_scale). Errors come out as httpx's classes, which the client
catches.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import httpcore
import httpx

# httpcore's errors as the httpx errors of the same name (ConnectTimeout, ReadError, ...),
# which is what httpx's own transport raises and what callers catch.
_HTTPX_ERRORS: dict[type[Exception], type[httpx.TransportError]] = {
    getattr(httpcore, name): getattr(httpx, name) for name in (
        "TimeoutException", "ConnectTimeout", "ReadTimeout", "WriteTimeout", "PoolTimeout",
        "NetworkError", "ConnectError", "ReadError", "WriteError", "ProxyError",
        "UnsupportedProtocol", "ProtocolError", "LocalProtocolError", "RemoteProtocolError",
    )
}


def as_httpx_error(error: Exception) -> Exception:
    """The httpx error for an httpcore one (the most specific of its classes), else `error`."""
    for kind in type(error).__mro__:
        mapped = _HTTPX_ERRORS.get(kind)
        if mapped is not None:
            translated = mapped(str(error))
            translated.__cause__ = error
            return translated
    return error


@dataclasses.dataclass
class _Site:
    pool: httpcore.ConnectionPool
    in_progress: int = 0  # requests sent and not yet read to the end (or failed)


class PoolPerSite:
    """One httpcore pool per site (scheme, host and port), made by `new_pool`, with at most
    about `max_sockets` connections kept in all."""

    def __init__(self, new_pool: Callable[[], httpcore.ConnectionPool], max_sockets: int):
        self._new_pool = new_pool
        self._max_sockets = max_sockets
        self._lock = threading.Lock()
        self._sites: OrderedDict[tuple[bytes, bytes, int | None], _Site] = OrderedDict()

    def handle_request(self, request: httpcore.Request) -> httpcore.Response:
        """Send `request` through its site's pool. The response's body is to be read from its
        stream, and the response closed; errors are raised as httpx's."""
        url = request.url
        key = (url.scheme, url.host, url.port)
        closing: list[httpcore.ConnectionPool] = []
        with self._lock:
            site = self._sites.get(key)
            if site is None:
                site = self._sites[key] = _Site(self._new_pool(), in_progress=1)
                closing = self._forget_idle_sites()
            else:
                self._sites.move_to_end(key)  # least recently used first
                site.in_progress += 1
        for pool in closing:
            pool.close()
        try:
            response = site.pool.handle_request(request)
        except Exception as error:
            self._done(site)
            raise as_httpx_error(error) from error
        except BaseException:
            self._done(site)
            raise
        response.stream = _ReleasedOnClose(response.stream, lambda: self._done(site))
        return response

    def _done(self, site: _Site) -> None:
        with self._lock:
            site.in_progress -= 1

    def _forget_idle_sites(self) -> list[httpcore.ConnectionPool]:
        """Forget the sites with no request in progress whose pools hold no socket, and the
        least recently used of those holding some while the pools hold too many; return the
        pools to close, for the caller to close outside the lock. Runs when a site is added,
        so a worker that reaches ever more sites keeps a bounded number of them."""
        sockets = sum(len(site.pool.connections) for site in self._sites.values())
        closing = []
        for key, site in list(self._sites.items()):
            held = len(site.pool.connections)
            if site.in_progress or (held and sockets <= self._max_sockets):
                continue
            del self._sites[key]
            if held:
                sockets -= held
                closing.append(site.pool)
        return closing

    def close(self) -> None:
        with self._lock:
            pools = [site.pool for site in self._sites.values()]
            self._sites.clear()
        for pool in pools:
            pool.close()


class _ReleasedOnClose:
    """A response body stream, its errors as httpx's, that calls `release` once when it is
    closed."""

    def __init__(self, stream: Any, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._stream
        except Exception as error:
            translated = as_httpx_error(error)
            if translated is error:
                raise
            raise translated from error

    def close(self) -> None:
        try:
            if hasattr(self._stream, "close"):
                self._stream.close()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()
