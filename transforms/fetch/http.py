"""The one HTTP client newsbeam uses for feeds and pages alike.

It owns every network decision: User-Agent, connect/read timeouts and an overall deadline, a
byte cap enforced while reading, manual redirects (so every hop is checked; a cookie one hop
sets goes with the hops after it, and none is kept between requests), the address guard
that refuses private and reserved networks (guard.py, through the pools per site of pool.py),
conditional-GET headers, a content-type check, and retries with backoff on the failures that
retrying can fix. Callers get bytes or a `FetchError`
whose `reason` is a dead-letter reason code; feedparser and trafilatura never touch the network.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import email.utils
import random
import time
import zlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import brotli
import httpx

from transforms.fetch.decoding import (
    ACCEPT_ENCODING,
    BoundedDecoder,
    DecodedTooLarge,
    UnsupportedEncoding,
)
from transforms.fetch.guard import AddressRefused
from transforms.fetch.pool import Exchange, GuardedConnection, PoolPerSite, Timeouts

DEFAULT_USER_AGENT = "newsbeam/0.1 (+https://github.com/newsbeam/newsbeam)"

MiB = 1024 * 1024

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclasses.dataclass(frozen=True)
class HttpSettings:
    """Limits and identity for every request; picklable, so DoFns can carry it."""

    user_agent: str = DEFAULT_USER_AGENT
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    deadline: float = 60.0  # whole request, redirects and body included
    max_redirects: int = 5
    retries: int = 2  # extra attempts after the first, for RETRYABLE_STATUSES and network errors
    backoff: float = 0.5  # seconds before the first retry; doubles each time, with jitter
    max_retry_after: float = 30.0  # a longer Retry-After is capped, not obeyed
    allow_private_networks: bool = False
    # Per client: idle sockets over this many are closed (those of the sites least recently
    # asked first), and no site gets more at once.
    max_connections: int = 100


@dataclasses.dataclass(frozen=True)
class Response:
    """A successful (2xx or 304) response with its body read in full, within the cap."""

    url: str  # after redirects
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    fetched_at: datetime

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


class FetchError(Exception):
    """A request that produced no usable body. `reason` is a dead-letter reason code."""

    def __init__(self, reason: str, message: str, *, url: str, status: int | None = None,
                 retry_after: float | None = None):
        super().__init__(message)
        self.reason = reason
        self.url = url
        self.status = status
        self.retry_after = retry_after  # what the server asked for (429, 503), in seconds

    def __reduce__(self) -> tuple[Any, ...]:
        # Whole through a pickle: a poll made in a lane process comes back with its error.
        return (_remade, (type(self), self.reason, str(self), self.url, self.status,
                          self.retry_after))

    @property
    def error_type(self) -> str:
        """For dead letters: the HTTP status when there was one."""
        return f"HTTP {self.status}" if self.status else type(self).__name__


def _remade(kind: type[FetchError], reason: str, message: str, url: str, status: int | None,
            retry_after: float | None) -> FetchError:
    return kind(reason, message, url=url, status=status, retry_after=retry_after)


def media_type(content_type: str) -> str:
    """The bare, lower-case media type of a Content-Type header ("" when absent)."""
    return content_type.split(";", 1)[0].strip().lower()


def is_feed_content_type(content_type: str) -> bool:
    """Feeds come as XML, JSON or text of some kind; servers mislabel them often, so be lenient."""
    kind = media_type(content_type)
    return (
        kind in ("", "application/octet-stream")
        or kind.startswith("text/")
        or any(word in kind for word in ("xml", "json", "rss", "atom", "rdf"))
    )


def is_page_content_type(content_type: str) -> bool:
    """Article pages must be HTML or XHTML (an absent type is given the benefit of the doubt)."""
    return media_type(content_type) in ("", "text/html", "application/xhtml+xml")


def validate_url(url: str) -> str:
    """Return the URL if it is an absolute http(s) URL with a host, else raise FetchError."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError as exc:
        raise FetchError("invalid_url", f"malformed URL {url!r}: {exc}", url=url) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError("invalid_url", f"not an absolute http(s) URL: {url!r}", url=url)
    return url


class HttpClient:
    """A synchronous client with newsbeam's limits. Open one per DoFn in setup(), close it in
    teardown(); it is not picklable and need not be."""

    def __init__(
        self, settings: HttpSettings, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        # Connections go through the address guard, kept per site.
        tls = httpx.create_ssl_context()
        timeouts = Timeouts(connect=settings.connect_timeout, read=settings.read_timeout)

        def connection(scheme: str, host: str, port: int) -> GuardedConnection:
            return GuardedConnection(host, port, timeouts=timeouts,
                                     allow_private_networks=settings.allow_private_networks,
                                     tls=tls if scheme == "https" else None)

        self._pools = PoolPerSite(connection, max_sockets=settings.max_connections,
                                  per_site=settings.max_connections,
                                  pool_timeout=settings.deadline)
        self._identity = [("User-Agent", settings.user_agent),
                          ("Accept-Encoding", ACCEPT_ENCODING)]

    def close(self) -> None:
        self._pools.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def get(
        self,
        url: str,
        *,
        max_bytes: int,
        accept: str = "*/*",
        content_type_ok: Callable[[str], bool] = lambda _: True,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """GET `url`, following redirects, retrying what is worth retrying.

        Raises FetchError for every failure; returns 2xx responses and 304 (with an empty body).
        """
        attempt = 0
        while True:
            try:
                return self._get_once(url, max_bytes, accept, content_type_ok, headers or {})
            except _RetryableError as retry:
                attempt += 1
                if attempt > self.settings.retries:
                    retry.error.retry_after = retry.retry_after
                    raise retry.error from None
                self._sleep(self._retry_delay(attempt, retry.retry_after))

    def _retry_delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.settings.max_retry_after)
        base = self.settings.backoff * (2 ** (attempt - 1))
        return base * (0.5 + random.random())  # jitter, so retries from many workers spread

    def _get_once(
        self,
        url: str,
        max_bytes: int,
        accept: str,
        content_type_ok: Callable[[str], bool],
        headers: Mapping[str, str],
    ) -> Response:
        started = time.monotonic()
        seen: set[str] = set()
        current = validate_url(url)
        cookies: httpx.Cookies | None = None  # set along this request's redirects, if any
        for _hop in range(self.settings.max_redirects + 1):
            seen.add(current)
            try:
                response = self._send(current, accept, headers, cookies)
                try:
                    status = response.status
                    answer = _headers(response.headers)
                    if status in REDIRECT_STATUSES:
                        location = answer.get("location")
                        if not location:
                            raise FetchError(
                                "http_status", f"HTTP {status} without Location", url=current,
                                status=status,
                            )
                        target = validate_url(urljoin(current, location.strip()))
                        if "set-cookie" in answer:
                            cookies = _kept_cookies(cookies, current, response)
                        if target in seen:
                            raise FetchError(
                                "too_many_redirects", f"redirect loop back to {target}",
                                url=url, status=status,
                            )
                        current = target
                        continue
                    if status == 304:
                        # A 304 has no body by definition; reading its end lets the connection
                        # go back to the pool (closed unread, it would be dropped).
                        response.read()
                        return _response(current, status, answer, b"")
                    if status in RETRYABLE_STATUSES:
                        raise _RetryableError(
                            FetchError("http_status", f"HTTP {status}", url=current,
                                       status=status),
                            parse_retry_after(answer.get("retry-after")),
                        )
                    if not 200 <= status < 300:
                        raise FetchError("http_status", f"HTTP {status}", url=current,
                                         status=status)
                    content_type = answer.get("content-type", "")
                    if not content_type_ok(content_type):
                        raise FetchError(
                            "bad_content_type", f"unexpected content type {content_type!r}",
                            url=current, status=status,
                        )
                    body = self._read_capped(response, status, answer, current, max_bytes,
                                             started)
                    return _response(current, status, answer, body)
                finally:
                    response.close()
            except AddressRefused as refused:
                raise FetchError(refused.reason, str(refused), url=current) from refused
            except httpx.TimeoutException as exc:
                raise _RetryableError(
                    FetchError("timeout", f"{type(exc).__name__}: {exc}", url=current)
                ) from exc
            except httpx.TransportError as exc:
                raise _RetryableError(
                    FetchError("connection_error", f"{type(exc).__name__}: {exc}", url=current)
                ) from exc
            except (httpx.InvalidURL, UnicodeError) as exc:  # e.g. a host name IDNA rejects
                raise FetchError("invalid_url", f"unusable URL {current!r}: {exc}",
                                 url=current) from exc
        raise FetchError(
            "too_many_redirects",
            f"more than {self.settings.max_redirects} redirects", url=url,
        )

    def _send(self, url: str, accept: str, headers: Mapping[str, str],
              cookies: httpx.Cookies | None) -> Exchange:
        """The GET of one hop, sent: newsbeam's identity, `accept`, the caller's `headers` and
        the cookies set earlier along the same redirects."""
        parsed = httpx.URL(url)  # IDNA and the URL's checks, as httpx does them
        host = parsed.raw_host.decode("ascii")
        scheme = parsed.scheme
        port = parsed.port or (443 if scheme == "https" else 80)
        bracketed = f"[{host}]" if ":" in host else host  # an IPv6 address
        authority = bracketed if parsed.port is None else f"{bracketed}:{parsed.port}"
        fields = [("Host", authority), *self._identity, ("Accept", accept)]
        if parsed.userinfo:  # a feed's credentials in its URL: HTTP Basic, as httpx sends them
            secret = f"{parsed.username}:{parsed.password}".encode()
            fields.append(("Authorization", "Basic " + base64.b64encode(secret).decode()))
        fields += headers.items()
        if cookies:
            carrier = httpx.Request("GET", parsed)
            cookies.set_cookie_header(carrier)  # those the cookie rules send to this URL
            if "cookie" in carrier.headers:
                fields.append(("Cookie", carrier.headers["cookie"]))
        return self._pools.request((scheme, host, port), parsed.raw_path.decode("ascii"),
                                   fields)

    def _read_capped(
        self, response: Exchange, status: int, headers: Mapping[str, str], url: str,
        max_bytes: int, started: float,
    ) -> bytes:
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise FetchError(
                "too_large", f"Content-Length {declared} exceeds cap of {max_bytes} bytes",
                url=url, status=status,
            )
        try:
            decoder = BoundedDecoder(headers.get("content-encoding", ""), max_bytes)
        except UnsupportedEncoding as exc:
            raise FetchError("bad_encoding", str(exc), url=url, status=status) from exc
        chunks: list[bytes] = []
        received = 0
        try:
            # Raw bytes, decoded here with a bound: a compression bomb is refused, not inflated.
            for raw in response.iter_stream():
                received += len(raw)
                if received > max_bytes:
                    raise DecodedTooLarge(f"body exceeds cap of {max_bytes} bytes")
                if time.monotonic() - started > self.settings.deadline:
                    raise FetchError(
                        "timeout", f"overall deadline of {self.settings.deadline:g}s exceeded",
                        url=url, status=status,
                    )
                chunks.append(decoder.decode(raw))
            chunks.append(decoder.flush())
        except DecodedTooLarge as exc:
            raise FetchError("too_large", f"{exc} (cap {max_bytes})", url=url,
                             status=status) from exc
        except (zlib.error, brotli.error) as exc:
            raise FetchError("bad_encoding", f"undecodable body: {exc}", url=url,
                             status=status) from exc
        return b"".join(chunks)


def _headers(raw: list[tuple[str, str]]) -> dict[str, str]:
    """A response's headers (as http.client reads them: Latin-1) by lower-case name,
    repeated ones joined with ", " (as httpx's Headers.items() gives them); values are UTF-8
    where their bytes decode as such, else Latin-1."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.lower()
        if not value.isascii():
            with contextlib.suppress(UnicodeDecodeError):
                value = value.encode("latin-1").decode("utf-8")
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _response(url: str, status: int, headers: dict[str, str], body: bytes) -> Response:
    return Response(url=url, status=status, headers=headers, body=body,
                    fetched_at=datetime.now(UTC))


def _kept_cookies(cookies: httpx.Cookies | None, url: str,
                  response: Exchange) -> httpx.Cookies:
    """The cookies of one request's redirects, with those `response` (to a GET of `url`) sets,
    by the cookie rules of Python's cookie jar, as httpx applies them. None is kept between
    requests: a poll carries no trace of the last."""
    kept = cookies if cookies is not None else httpx.Cookies()
    raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers]
    kept.extract_cookies(httpx.Response(response.status, headers=raw,
                                        request=httpx.Request("GET", url)))
    return kept


class _RetryableError(Exception):
    """Internal: a failure worth another attempt, carrying the error to raise if none is left."""

    def __init__(self, error: FetchError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
