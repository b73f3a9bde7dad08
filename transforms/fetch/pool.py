"""Connections kept per site (scheme, host and port), over which the HTTP client sends its
requests: Python's `http.client`, its sockets opened through the address guard.

`http.client` parses a response in far less CPU than httpcore and h11 did (benchmarks/README.md,
issue 26's fifth stop), and polls of unchanged feeds are most of what a stream does all day.
What a pool must do around
it is done here: an idle connection is reused (after checking that the site has not closed
it), a request that finds its reused connection closed under it goes again on a fresh one,
no site gets more than `per_site` connections at once, and when the pools hold more than
`max_sockets` sockets, the idle ones of the sites least recently asked are closed. Errors come
out as httpx's classes (ConnectTimeout, ReadError, RemoteProtocolError, ...), which the client
catches.
"""

from __future__ import annotations

import dataclasses
import http.client
import select
import socket
import ssl
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from transforms.fetch import guard

CHUNK = 65536  # bytes asked of the socket per read of a body
# A response's head (status line and header fields), and a chunked body's trailer, are read
# line by line; past these many bytes the response is refused (h11 refused a head over 16 KiB).
HEAD_LIMIT = 64 * 1024
TRAILER_LIMIT = 16 * 1024


@dataclasses.dataclass(frozen=True)
class Timeouts:
    """Seconds: to connect (the TLS handshake included), and for each read or write once
    connected."""

    connect: float
    read: float


class _LineBudget:
    """A response's reader whose lines count against a budget while one is set: http.client
    reads a head's (and a trailer's) lines without bound on their total."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader
        self.budget: int | None = None

    def readline(self, limit: int = -1) -> bytes:
        line: bytes = self._reader.readline(limit)
        if self.budget is not None:
            self.budget -= len(line)
            if self.budget < 0:
                raise http.client.HTTPException("the response's head or trailer is too long")
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reader, name)


class _Response(http.client.HTTPResponse):
    """http.client's response with the limits h11 kept: a bounded head and trailer, and
    informational answers (102, 103 Early Hints) skipped rather than taken as the answer.

    Overrides http.client's private _read_status and _read_and_discard_trailer, as they are
    in Python 3.11 and 3.12 (pyproject.toml's range); tests/test_pool.py pins each."""

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self._lines = _LineBudget(self.fp)
        self.fp = self._lines  # type: ignore[assignment]
        self.trailer_cut = False  # the site hung up inside a chunked body's trailer

    def begin(self) -> None:
        self._lines.budget = HEAD_LIMIT
        super().begin()
        self._lines.budget = None

    def _read_status(self) -> tuple[str, int, str]:
        while True:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if not 101 < status < 200:  # 100 Continue: begin() skips it itself
                return version, status, reason
            http.client.parse_headers(self.fp)  # an informational answer's own head

    def _read_and_discard_trailer(self) -> None:
        self._lines.budget = TRAILER_LIMIT
        try:
            while True:
                line = self._lines.readline(TRAILER_LIMIT + 1)
                if not line:
                    self.trailer_cut = True
                    return
                if line in (b"\r\n", b"\n"):
                    return
        finally:
            self._lines.budget = None


class GuardedConnection(http.client.HTTPConnection):
    """An HTTP/1.1 connection whose socket goes to an address the guard resolved and allowed
    (every hop of a redirect chain included, and no second DNS answer can steer it), wrapped
    in TLS for https, the certificate checked against the host name."""

    def __init__(self, host: str, port: int, *, timeouts: Timeouts,
                 allow_private_networks: bool, tls: ssl.SSLContext | None) -> None:
        super().__init__(host, port)  # its timeout goes unused: connect() sets the socket's
        self.response_class = _Response
        self._timeouts = timeouts
        self._allow_private_networks = allow_private_networks
        self._tls = tls

    def connect(self) -> None:
        try:
            sock = guard.connect_allowed(self.host, self.port, timeout=self._timeouts.connect,
                                         allow_private_networks=self._allow_private_networks)
        except TimeoutError as error:
            raise httpx.ConnectTimeout(_described(error)) from error
        except OSError as error:
            raise httpx.ConnectError(_described(error)) from error
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:  # the handshake, within the connect timeout
                sock = self._tls.wrap_socket(sock, server_hostname=self.host)
            sock.settimeout(self._timeouts.read)
        except BaseException as error:
            sock.close()
            if isinstance(error, TimeoutError):
                raise httpx.ConnectTimeout(_described(error)) from error
            if isinstance(error, OSError):  # ssl.SSLError among them
                raise httpx.ConnectError(_described(error)) from error
            raise
        self.sock = sock

    def dropped(self) -> bool:
        """True when the site has closed this idle connection (or sent what no request asked
        for): a readable idle socket has nothing good to say."""
        if self.sock is None:
            return True
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True  # decrypted already, so the socket itself may not show it
        poller = select.poll()  # not select(): it fails past file descriptor 1023
        poller.register(self.sock, select.POLLIN)
        try:
            return bool(poller.poll(0))
        except OSError:
            return True


@dataclasses.dataclass
class _Site:
    idle: list[GuardedConnection] = dataclasses.field(default_factory=list)
    in_progress: int = 0  # requests sent and not yet read to the end (or failed)
    waiting: int = 0  # requests waiting for their turn: the site is not forgotten meanwhile


Key = tuple[str, str, int]  # scheme, host (ASCII), port


class PoolPerSite:
    """Connections per site, made by `new_connection(scheme, host, port)`; at most `per_site`
    in use for one site, and about `max_sockets` kept in all."""

    def __init__(self, new_connection: Callable[[str, str, int], GuardedConnection], *,
                 max_sockets: int, per_site: int, pool_timeout: float) -> None:
        self._new_connection = new_connection
        self._max_sockets = max_sockets
        self._per_site = per_site
        self._pool_timeout = pool_timeout
        self._lock = threading.Condition()
        self._sites: OrderedDict[Key, _Site] = OrderedDict()

    def request(self, key: Key, target: str, headers: list[tuple[str, str]]) -> Exchange:
        """Send a GET of `target` to the site `key` names, with exactly `headers`. The response
        is to be read from the Exchange, and the Exchange closed."""
        site, closing = self._take_turn(key)
        for connection in closing:
            connection.close()
        try:
            while True:
                connection, reused = self._connection(key, site)
                try:
                    response = _send(connection, target, headers)
                except _ClosedUnderUs as closed:
                    connection.close()
                    if reused:  # the site closed it while it was idle: again, on a fresh one
                        continue
                    raise closed.error from closed.__cause__
                except BaseException:
                    connection.close()
                    raise
                return Exchange(response, connection, lambda c: self._release(key, site, c))
        except BaseException:
            self._release(key, site, None)
            raise

    def _take_turn(self, key: Key) -> tuple[_Site, list[GuardedConnection]]:
        """The site, with one more request in progress (waiting while it has `per_site`), and
        the idle connections to close to make room, if it is new."""
        with self._lock:
            site = self._sites.get(key)
            closing: list[GuardedConnection] = []
            if site is None:
                closing = self._forget_idle_sites()
                site = self._sites[key] = _Site()
            site.waiting += 1
            try:
                free = self._lock.wait_for(lambda: site.in_progress < self._per_site,
                                           self._pool_timeout)
            finally:
                site.waiting -= 1
            if not free:
                raise httpx.PoolTimeout(f"no connection to {key[1]} free within"
                                        f" {self._pool_timeout:g}s")
            self._sites.move_to_end(key)  # least recently used first
            site.in_progress += 1
            return site, closing

    def _connection(self, key: Key, site: _Site) -> tuple[GuardedConnection, bool]:
        """An idle connection of the site's that is still open, or a new one (not yet
        connected: that happens as the request is sent); whether it was reused."""
        while True:
            with self._lock:
                connection = site.idle.pop() if site.idle else None
            if connection is None:
                return self._new_connection(*key), False
            if not connection.dropped():
                return connection, True
            connection.close()

    def _release(self, key: Key, site: _Site, connection: GuardedConnection | None) -> None:
        """A request is done; its connection, if reusable, goes back to the site's idle ones."""
        with self._lock:
            site.in_progress -= 1
            if connection is not None and self._sites.get(key) is site:
                site.idle.append(connection)
                connection = None
            self._lock.notify_all()
        if connection is not None:
            connection.close()

    def _forget_idle_sites(self) -> list[GuardedConnection]:
        """Forget the sites with no request in progress that hold no socket, and the least
        recently used of those holding some while the pools hold too many; return their
        connections, for the caller to close outside the lock. Runs when a site is added, so
        a worker that reaches ever more sites keeps a bounded number of them."""
        sockets = sum(len(site.idle) + site.in_progress for site in self._sites.values())
        closing: list[GuardedConnection] = []
        for key, site in list(self._sites.items()):
            held = len(site.idle)
            if site.in_progress or site.waiting or (held and sockets <= self._max_sockets):
                continue
            del self._sites[key]
            sockets -= held
            closing += site.idle
            site.idle = []
        return closing

    def close(self) -> None:
        with self._lock:
            connections = [c for site in self._sites.values() for c in site.idle]
            for site in self._sites.values():
                site.idle = []
            self._sites.clear()
        for connection in connections:
            connection.close()


class _ClosedUnderUs(Exception):  # noqa: N818
    """The connection was found closed or reset as the request went out or its answer was
    awaited: on a reused connection, the site had closed it while idle."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error  # as httpx's, to raise if the connection was a fresh one


def _send(connection: GuardedConnection, target: str,
          headers: list[tuple[str, str]]) -> _Response:
    """Send the GET (connecting first, if the connection is new) and read the response's
    head."""
    sending = True
    try:
        try:
            connection.putrequest("GET", target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                connection.putheader(name, _header_bytes(value))
        except ValueError as error:  # a header http.client will not send (a CR or LF in it)
            raise httpx.LocalProtocolError(str(error)) from error
        connection.endheaders()
        sending = False
        response: _Response = connection.getresponse()  # type: ignore[assignment]
        return response
    except ConnectionError as error:  # RemoteDisconnected too: no whole head came
        raise _ClosedUnderUs(as_httpx_error(error, sending=sending)) from error
    except Exception as error:
        translated = as_httpx_error(error, sending=sending)
        if translated is error:
            raise
        raise translated from error


def _header_bytes(value: str) -> bytes:
    """A request header's value as bytes: Latin-1, as HTTP has it, or UTF-8 for what Latin-1
    cannot hold (an ETag a server sent in UTF-8 goes back as it came)."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


class Exchange:
    """A response whose head has arrived: its status and headers (names and values as sent,
    values read as Latin-1), its body to read once; closing it hands its connection back when
    the body was read to the end and the site keeps the connection open."""

    def __init__(self, response: _Response, connection: GuardedConnection,
                 release: Callable[[GuardedConnection | None], None]) -> None:
        self.status = response.status
        self.headers = response.getheaders()
        self._response = response
        self._connection = connection
        self._release: Callable[[GuardedConnection | None], None] | None = release
        self._complete = False  # the body was read to its end, as its framing says

    def iter_stream(self) -> Iterator[bytes]:
        """The body as it arrives, in chunks of at most CHUNK bytes."""
        response = self._response
        while not response.isclosed():
            if response.length == 0:  # all it said it would send has come: done with it
                response.close()
                self._complete = True
                return
            try:
                chunk = response.read1(CHUNK)
            except Exception as error:
                translated = as_httpx_error(error)
                if translated is error:
                    raise
                raise translated from error
            if not chunk:
                if response.length:  # the site hung up before all it said it would send
                    raise httpx.RemoteProtocolError(
                        f"IncompleteRead: the body ended {response.length} bytes short")
                # The end of a chunked body (or of one read to the connection's close).
                self._complete = response.chunked and not response.trailer_cut
                return
            yield chunk

    def read(self) -> bytes:
        return b"".join(self.iter_stream())

    def close(self) -> None:
        release, self._release = self._release, None
        if release is None:
            return
        reusable = (self._complete and not self._response.will_close
                    and self._connection.sock is not None)
        try:
            if not reusable:
                self._response.close()
                self._connection.close()
        finally:
            release(self._connection if reusable else None)


def as_httpx_error(error: BaseException, *, sending: bool = False) -> BaseException:
    """The httpx error for what the socket or http.client raised (a timeout, a reset, a
    response that breaks HTTP/1.1), else `error` itself. `sending`: raised before any of the
    response arrived."""
    translated: httpx.TransportError
    if isinstance(error, httpx.HTTPError):
        return error
    if isinstance(error, TimeoutError):
        translated = (httpx.WriteTimeout if sending else httpx.ReadTimeout)(_described(error))
    elif isinstance(error, http.client.HTTPException):  # RemoteDisconnected, IncompleteRead
        translated = httpx.RemoteProtocolError(_described(error))
    elif isinstance(error, OSError):
        translated = (httpx.WriteError if sending else httpx.ReadError)(_described(error))
    else:
        return error
    return translated


def _described(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
