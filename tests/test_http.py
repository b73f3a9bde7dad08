"""The HTTP client against loopback fixture routes: limits, redirects, retries, address guard."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import email.utils
import gzip
import os
import socket
import struct
import threading
import time
import tracemalloc
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import brotli
import pytest

import transforms.fetch.guard as transforms_guard
import transforms.fetch.http as transforms_http
from pipeline.demo.loopback import Handler, LoopbackServer, RequestHandler, Route
from tests.helpers import LOOPBACK_HTTP, established_to, eventually
from tests.loopback_guard import NetworkGuardError
from transforms.fetch.guard import is_public_address
from transforms.fetch.http import (
    FetchError,
    HttpClient,
    HttpSettings,
    is_feed_content_type,
    is_page_content_type,
    parse_retry_after,
    validate_url,
)

HTML = {"Content-Type": "text/html; charset=utf-8"}


def _get(url: str, settings: HttpSettings = LOOPBACK_HTTP, **kwargs) -> object:
    with HttpClient(settings, sleep=lambda _: None) as client:
        return client.get(url, max_bytes=kwargs.pop("max_bytes", 1 << 20), **kwargs)


def _error(url: str, settings: HttpSettings = LOOPBACK_HTTP, **kwargs) -> FetchError:
    with pytest.raises(FetchError) as caught:
        _get(url, settings, **kwargs)
    return caught.value


def test_ok_body_and_headers(server: LoopbackServer) -> None:
    server.routes["/page"] = Route(b"<html>hi</html>", headers=HTML)
    response = _get(server.url("/page"))
    assert response.status == 200 and response.body == b"<html>hi</html>"
    assert response.content_type == "text/html; charset=utf-8"


def test_a_not_modified_answer_leaves_its_connection_for_the_next_request(
    server: LoopbackServer,
) -> None:
    # Polls of unchanged feeds are mostly 304s: each must not cost a new connection.
    ports: list[int] = []

    def feed(handler: RequestHandler) -> None:
        ports.append(handler.client_address[1])
        handler.send_route(Route(b"<rss/>", headers={"ETag": '"v1"'}))

    server.routes["/feed.xml"] = feed
    with HttpClient(LOOPBACK_HTTP, sleep=lambda _: None) as client:
        answers = [client.get(server.url("/feed.xml"), max_bytes=1 << 20,
                              headers={"If-None-Match": '"v1"'}).status for _ in range(3)]
    assert answers == [304, 304, 304]
    assert len(set(ports)) == 1  # one connection, kept alive


@pytest.mark.parametrize("status", [404, 410, 403])
def test_client_errors_are_not_retried_and_carry_the_status(
    server: LoopbackServer, status: int
) -> None:
    server.routes["/gone"] = Route(b"", status=status)
    error = _error(server.url("/gone"))
    assert (error.reason, error.status, error.error_type) == ("http_status", status,
                                                              f"HTTP {status}")
    assert server.requests["/gone"] == 1


def test_server_error_then_success_is_retried(server: LoopbackServer) -> None:
    calls = []

    def flaky(handler: BaseHTTPRequestHandler) -> None:
        calls.append(1)
        status = 503 if len(calls) == 1 else 200
        handler.send_response(status)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok")

    server.routes["/flaky"] = flaky
    assert _get(server.url("/flaky")).body == b"ok"
    assert len(calls) == 2


def test_redirects_are_followed_and_loops_refused(server: LoopbackServer) -> None:
    server.routes["/old"] = Route(status=301, headers={"Location": "/new"})
    server.routes["/new"] = Route(b"moved", headers=HTML)
    assert _get(server.url("/old")).url == server.url("/new")
    server.routes["/a"] = Route(status=302, headers={"Location": "/b"})
    server.routes["/b"] = Route(status=302, headers={"Location": "/a"})
    assert _error(server.url("/a")).reason == "too_many_redirects"
    for hop in range(10):
        server.routes[f"/hop{hop}"] = Route(status=302, headers={"Location": f"/hop{hop + 1}"})
    assert _error(server.url("/hop0")).reason == "too_many_redirects"
    assert server.requests["/hop6"] == 0  # 5 redirects followed, then stop


def test_a_cookie_set_on_a_redirect_goes_with_its_next_hops_and_no_further(
    server: LoopbackServer,
) -> None:
    # A consent wall: the article sends readers without its cookie to a page that sets it
    # and sends them back. The cookie goes with the rest of that request, and is not kept
    # for the next: a poll carries no trace of the last.
    cookies: list[str | None] = []

    def article(handler: RequestHandler) -> None:
        cookies.append(handler.headers.get("Cookie"))
        if handler.headers.get("Cookie") == "consent=yes":
            handler.send_route(Route(b"<html>story</html>", headers=HTML))
        else:
            handler.send_route(Route(status=302, headers={"Location": "/consent"}))

    server.routes["/story"] = article
    server.routes["/consent"] = Route(status=302, headers={
        "Location": "/story?consented", "Set-Cookie": "consent=yes; Path=/"})
    # A cookie for another path is kept by the same rules, and not sent here.
    server.routes["/elsewhere"] = Route(status=302, headers={
        "Location": "/story", "Set-Cookie": "other=1; Path=/other"})
    with HttpClient(LOOPBACK_HTTP, sleep=lambda _: None) as client:
        assert client.get(server.url("/story"), max_bytes=1024).body == b"<html>story</html>"
        assert cookies == [None, "consent=yes"]
        with pytest.raises(FetchError):  # /consent sends it back: nothing was kept
            client.get(server.url("/story?consented"), max_bytes=1024)
    assert cookies[2] is None
    with HttpClient(LOOPBACK_HTTP, sleep=lambda _: None) as client:
        client.get(server.url("/elsewhere"), max_bytes=1024)
    assert cookies[3:] == [None, "consent=yes"]  # never other=1


def test_cookies_gather_along_the_redirects_by_the_cookie_rules(server: LoopbackServer) -> None:
    # Two hops each set one; a third, set without a Path at /deep/..., belongs to /deep only.
    sent: list[str | None] = []

    def landing(handler: RequestHandler) -> None:
        sent.append(handler.headers.get("Cookie"))
        handler.send_route(Route(b"ok", headers=HTML))

    server.routes["/first"] = Route(status=302, headers={
        "Location": "/deep/second", "Set-Cookie": "a=1; Path=/"})
    server.routes["/deep/second"] = Route(status=302, headers={
        "Location": "/landing", "Set-Cookie": "b=2"})
    server.routes["/landing"] = landing
    server.routes["/again"] = Route(status=302, headers={
        "Location": "/deep/landing", "Set-Cookie": "c=3; Path=/"})
    server.routes["/deep/landing"] = landing
    _get(server.url("/first"))
    assert sent == ["a=1"]  # b=2 is /deep's
    with HttpClient(LOOPBACK_HTTP, sleep=lambda _: None) as client:
        client.get(server.url("/deep/second"), max_bytes=1024)
    assert sent[1] is None  # b=2 set at /deep/second is not sent to /landing
    _get(server.url("/again"))
    assert sent[2] == "c=3"


def test_header_values_beyond_latin_1_go_as_utf_8_and_odd_bytes_read_as_latin_1(
    server: LoopbackServer,
) -> None:
    received: list[bytes] = []

    def odd(handler: RequestHandler) -> None:
        received.append(handler.headers.get("If-None-Match", "").encode("latin-1",
                                                                         "surrogateescape"))
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok")

    def raw_etag(handler: RequestHandler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                            b"ETag: \"\xe9t\xe9\"\r\nContent-Length: 2\r\n\r\nok")

    server.routes["/odd"] = odd
    server.routes["/raw"] = raw_etag
    _get(server.url("/odd"), headers={"If-None-Match": '"\u2603"'})
    assert received == ['"\u2603"'.encode()]  # a snowman: UTF-8 on the wire
    assert _get(server.url("/raw")).headers["etag"] == '"\u00e9t\u00e9"'  # not UTF-8: Latin-1


def test_credentials_in_the_url_go_as_http_basic_decoded(server: LoopbackServer) -> None:
    sent: list[str | None] = []

    def record(handler: RequestHandler) -> None:
        sent.append(handler.headers.get("Authorization"))
        handler.send_route(Route(b"ok", headers=HTML))

    server.routes["/private"] = record
    _get(server.url("/private").replace("http://", "http://us%40er:p%3Ass@"))
    _get(server.url("/private"))
    assert sent == ["Basic " + base64.b64encode(b"us@er:p:ss").decode(), None]


def test_repeated_response_headers_are_joined_and_the_host_header_names_the_port(
    server: LoopbackServer,
) -> None:
    hosts: list[str] = []

    def twice(handler: RequestHandler) -> None:
        hosts.extend(handler.headers.get_all("Host") or [])
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Cache-Control", "public")
        handler.send_header("Cache-Control", "max-age=60")
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok")

    server.routes["/twice"] = twice
    response = _get(server.url("/twice"))
    assert response.headers["cache-control"] == "public, max-age=60"
    assert hosts == [server.base_url.split("://", 1)[1]]  # one Host header, newsbeam's


def test_body_over_the_cap_is_cut(server: LoopbackServer) -> None:
    def endless(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.end_headers()  # no Content-Length: the cap must hold while reading
        try:
            for _ in range(1000):
                handler.wfile.write(b"x" * 65536)
        except OSError:
            pass
        handler.close_connection = True

    server.routes["/declared"] = Route(b"y" * 5000, headers=HTML)
    server.routes["/endless"] = endless
    assert _error(server.url("/declared"), max_bytes=4096).reason == "too_large"
    assert _error(server.url("/endless"), max_bytes=100_000).reason == "too_large"


def test_wrong_content_type_for_a_page(server: LoopbackServer) -> None:
    server.routes["/file.pdf"] = Route(b"%PDF", headers={"Content-Type": "application/pdf"})
    error = _error(server.url("/file.pdf"), content_type_ok=is_page_content_type)
    assert error.reason == "bad_content_type"


def test_hang_times_out(server: LoopbackServer) -> None:
    def hang(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(2)

    server.routes["/hang"] = hang
    settings = dataclasses.replace(LOOPBACK_HTTP, read_timeout=0.3, retries=0)
    assert _error(server.url("/hang"), settings).reason == "timeout"


def test_the_read_timeout_is_the_one_configured(server: LoopbackServer) -> None:
    # The client gives up at its own read timeout, while the server still holds the answer
    # (httpx's default, 5 s, would outlast the hold).
    release, held_out = threading.Event(), threading.Event()

    def hold(handler: BaseHTTPRequestHandler) -> None:
        if not release.wait(4):
            held_out.set()  # the hold ran out with the client still waiting

    server.routes["/hold"] = hold
    settings = dataclasses.replace(LOOPBACK_HTTP, read_timeout=0.3, retries=0)
    try:
        assert _error(server.url("/hold"), settings).reason == "timeout"
        assert not held_out.is_set()
    finally:
        release.set()


def test_private_addresses_are_refused_before_any_connection(server: LoopbackServer) -> None:
    server.routes["/page"] = Route(b"secret", headers=HTML)
    guarded = dataclasses.replace(LOOPBACK_HTTP, allow_private_networks=False)
    error = _error(server.url("/page"), guarded)
    assert error.reason == "blocked_address"
    assert server.requests["/page"] == 0


def test_redirect_to_a_private_address_is_refused(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A public-looking name that resolves to a link-local metadata address: the guard must
    # refuse it from the resolved address alone, so no packet is sent anywhere.
    def resolve(host, port, *args, **kwargs):
        assert host == "metadata.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    guarded = dataclasses.replace(LOOPBACK_HTTP, allow_private_networks=False)
    assert _error("http://metadata.example/latest/", guarded).reason == "blocked_address"


@pytest.mark.parametrize(("address", "public"), [
    ("93.184.216.34", True), ("2606:2800:220:1::1", True), ("127.0.0.1", False),
    ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("0.0.0.0", False), ("224.0.0.1", False), ("::1", False),
    ("fe80::1", False), ("fc00::1", False), ("::ffff:10.0.0.1", False), ("ff02::1", False),
    ("::ffff:93.184.216.34", True),  # IPv4-mapped: judged as the IPv4 address
    ("fe80::1%eth0", False), ("2606:2800:220:1::1%2", True),  # with a zone, as resolved
])
def test_public_address_classification(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def test_retry_after_seconds_and_dates() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 12 ") == 12.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert parse_retry_after("") is None


def test_a_retry_after_date_in_the_future_is_the_time_until_it() -> None:
    in_two_minutes = email.utils.format_datetime(datetime.now(UTC) + timedelta(minutes=2),
                                                 usegmt=True)
    assert 115 <= parse_retry_after(in_two_minutes) <= 120
    naive = (datetime.now(UTC) + timedelta(minutes=2)).strftime("%a, %d %b %Y %H:%M:%S")
    assert 115 <= parse_retry_after(naive) <= 120  # no zone given: taken as UTC


def test_backoff_doubles_from_its_base_with_jitter_around_it(server: LoopbackServer) -> None:
    server.routes["/down"] = Route(b"", status=503)
    settings = dataclasses.replace(LOOPBACK_HTTP, retries=4, backoff=0.5)
    slept: list[float] = []
    with HttpClient(settings, sleep=slept.append) as client, pytest.raises(FetchError):
        client.get(server.url("/down"), max_bytes=100)
    assert len(slept) == 4
    for attempt, delay in enumerate(slept):
        base = 0.5 * 2 ** attempt
        assert 0.5 * base <= delay <= 1.5 * base  # each one within the jitter of its base


def test_a_zero_retry_after_waits_nothing(server: LoopbackServer) -> None:
    server.routes["/x"], _ = _status_then_ok(503, {"Retry-After": "0"})
    slept: list[float] = []
    with HttpClient(LOOPBACK_HTTP, sleep=slept.append) as client:
        client.get(server.url("/x"), max_bytes=100)
    assert slept == [0.0]


def test_the_servers_retry_after_is_kept_when_retries_give_up(server: LoopbackServer) -> None:
    server.routes["/busy"] = Route(b"", status=429, headers={"Retry-After": "5"})
    error = _error(server.url("/busy"))
    assert (error.reason, error.status, error.retry_after) == ("http_status", 429, 5.0)
    assert server.requests["/busy"] == LOOPBACK_HTTP.retries + 1  # 429 is retried


@pytest.mark.parametrize(("status", "retried"), [
    (429, True), (500, True), (502, True), (503, True), (504, True),
    (400, False), (401, False), (403, False), (404, False), (410, False), (501, False),
])
def test_which_statuses_are_retried(server: LoopbackServer, status: int, retried: bool) -> None:
    server.routes["/x"] = Route(b"", status=status)
    assert _error(server.url("/x")).status == status
    assert server.requests["/x"] == (LOOPBACK_HTTP.retries + 1 if retried else 1)


def test_every_request_carries_the_user_agent_and_accept(server: LoopbackServer) -> None:
    seen: list[tuple[str | None, str | None]] = []
    encodings: list[str | None] = []

    def record(handler: RequestHandler) -> None:
        seen.append((handler.headers.get("User-Agent"), handler.headers.get("Accept")))
        encodings.append(handler.headers.get("Accept-Encoding"))
        handler.send_route(Route(b"ok", headers=HTML))

    server.routes["/x"] = record
    settings = dataclasses.replace(LOOPBACK_HTTP, user_agent="newsbeam-test (+https://n.example)")
    with HttpClient(settings, sleep=lambda _: None) as client:
        client.get(server.url("/x"), max_bytes=100, accept="application/rss+xml")
    assert seen == [("newsbeam-test (+https://n.example)", "application/rss+xml")]
    assert encodings == [transforms_http.ACCEPT_ENCODING]  # what it can decode, bounded


def test_the_socket_guard_refuses_non_loopback_addresses() -> None:
    from tests import conftest

    with pytest.raises(NetworkGuardError):
        socket.create_connection(("192.0.2.1", 80), timeout=0.1)
    with pytest.raises(NetworkGuardError):
        socket.getaddrinfo("example.com", 80)
    # libpq connects from C, past the socket guard; its hosts are checked before it starts.
    import psycopg

    with pytest.raises(NetworkGuardError):
        psycopg.connect("postgresql://newsbeam@192.0.2.1:5432/news", connect_timeout=1)
    with pytest.raises(NetworkGuardError):
        psycopg.connect(host="127.0.0.1,192.0.2.1", dbname="test", connect_timeout=1)
    conftest._violations.clear()  # expected here; any other test doing this fails


def _status_then_ok(first_status: int, headers: dict[str, str] | None = None):
    calls: list[int] = []

    def handle(handler: BaseHTTPRequestHandler) -> None:
        calls.append(1)
        if len(calls) == 1:
            handler.send_response(first_status)
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        handler.send_response(200)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok")

    return handle, calls


def test_500_then_200_recovers(server: LoopbackServer) -> None:
    server.routes["/x"], calls = _status_then_ok(500)
    assert _get(server.url("/x")).body == b"ok" and len(calls) == 2


def test_429_waits_for_retry_after(server: LoopbackServer) -> None:
    server.routes["/x"], calls = _status_then_ok(429, {"Retry-After": "7"})
    slept: list[float] = []
    with HttpClient(LOOPBACK_HTTP, sleep=slept.append) as client:
        assert client.get(server.url("/x"), max_bytes=100).body == b"ok"
    assert slept == [7.0]  # the server's word, not our backoff
    server.routes["/y"], _ = _status_then_ok(503, {"Retry-After": "86400"})
    slept.clear()
    with HttpClient(LOOPBACK_HTTP, sleep=slept.append) as client:
        client.get(server.url("/y"), max_bytes=100)
    assert slept == [LOOPBACK_HTTP.max_retry_after]  # a day is capped


def test_retries_give_up_with_the_last_status(server: LoopbackServer) -> None:
    server.routes["/down"] = Route(b"", status=502)
    error = _error(server.url("/down"))
    assert (error.reason, error.status) == ("http_status", 502)
    assert server.requests["/down"] == LOOPBACK_HTTP.retries + 1


def test_slow_drip_hits_the_overall_deadline(server: LoopbackServer) -> None:
    sent = []
    hung_up = threading.Event()

    def drip(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        try:
            for _ in range(100):  # a byte every 0.1 s: never idle long enough to time out
                handler.wfile.write(b"x")
                handler.wfile.flush()
                sent.append(1)
                time.sleep(0.1)
        except OSError:
            hung_up.set()

    server.routes["/drip"] = drip
    settings = dataclasses.replace(LOOPBACK_HTTP, read_timeout=1.0, deadline=1.0, retries=0)
    error = _error(server.url("/drip"), settings)
    assert (error.reason, error.status, error.url) == ("timeout", 200, server.url("/drip"))
    assert str(error) == "overall deadline of 1s exceeded"
    # The client hung up at its deadline (a second: about 10 bytes), long before the drip's end.
    assert hung_up.wait(timeout=30)
    assert len(sent) < 50


def test_reset_connection(server: LoopbackServer) -> None:
    def reset(handler: BaseHTTPRequestHandler) -> None:
        # SO_LINGER with a zero timeout makes close() send a RST instead of a FIN.
        handler.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack("ii", 1, 0))
        handler.request.close()
        handler.close_connection = True

    server.routes["/reset"] = reset
    assert _error(server.url("/reset")).reason == "connection_error"
    assert server.requests["/reset"] == LOOPBACK_HTTP.retries + 1  # retried, then given up


def test_declared_50_mb_body_is_refused_before_reading(server: LoopbackServer) -> None:
    def huge(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", str(50 * 1024 * 1024))
        handler.end_headers()
        with contextlib.suppress(OSError):
            handler.wfile.write(b"x" * 1024 * 1024)

    server.routes["/huge"] = huge
    assert _error(server.url("/huge"), max_bytes=10 * 1024 * 1024).reason == "too_large"


@pytest.mark.slow  # a 512 MiB bomb per encoding
@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_compression_bombs_are_refused_not_inflated(server: LoopbackServer, encoding: str) -> None:
    bomb = _bomb(encoding, 512 * 1024 * 1024)  # half a gigabyte of zeros, a few hundred KB
    server.routes["/bomb"] = Route(bomb, headers={"Content-Type": "text/html",
                                                  "Content-Encoding": encoding})
    tracemalloc.start()
    try:
        error = _error(server.url("/bomb"), max_bytes=10 * 1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.reason == "too_large"
    assert peak < 64 * 1024 * 1024  # never inflated anywhere near its real size


def test_compressed_bodies_are_decoded(server: LoopbackServer) -> None:
    body = b"<html>" + b"news " * 10000 + b"</html>"
    server.routes["/gz"] = Route(gzip.compress(body), headers={"Content-Encoding": "gzip"})
    server.routes["/br"] = Route(brotli.compress(body), headers={"Content-Encoding": "br"})
    assert _get(server.url("/gz")).body == body
    assert _get(server.url("/br")).body == body
    server.routes["/zz"] = Route(b"x", headers={"Content-Encoding": "zstd"})
    assert _error(server.url("/zz")).reason == "bad_encoding"
    server.routes["/bad"] = Route(b"not gzip at all", headers={"Content-Encoding": "gzip"})
    assert _error(server.url("/bad")).reason == "bad_encoding"


def test_a_redirect_to_a_private_address_is_refused_at_that_hop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Let 127.0.0.1 stand in for a public site; 127.0.0.2 stays what it is, a private address.
    real = transforms_guard.is_public_address
    monkeypatch.setattr(transforms_guard, "is_public_address",
                        lambda address: address == "127.0.0.1" or real(address))
    with LoopbackServer({}, host="127.0.0.2") as internal, LoopbackServer({}) as public:
        internal.routes["/admin"] = Route(b"secret")
        public.routes["/go"] = Route(status=302, headers={"Location": internal.url("/admin")})
        guarded = dataclasses.replace(LOOPBACK_HTTP, allow_private_networks=False)
        error = _error(public.url("/go"), guarded)
        assert error.reason == "blocked_address" and error.url == internal.url("/admin")
        assert public.requests["/go"] == 1
        assert internal.requests["/admin"] == 0


def _bomb(encoding: str, size: int) -> bytes:
    zeros = b"\0" * (1024 * 1024)
    if encoding == "br":
        return brotli.compress(b"\0" * size, quality=5)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    return b"".join(compressor.compress(zeros) for _ in range(size // len(zeros))) + (
        compressor.flush())


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="counts sockets in /proc/net/tcp")
def test_a_client_that_reached_many_sites_keeps_at_most_max_connections_open() -> None:
    settings = dataclasses.replace(LOOPBACK_HTTP, max_connections=2)
    with contextlib.ExitStack() as stack:
        sites = [stack.enter_context(LoopbackServer({"/page": Route(b"ok", headers=HTML)}))
                 for _ in range(5)]
        ports = {int(site.base_url.rsplit(":", 1)[1]) for site in sites}
        with HttpClient(settings) as client:
            for _ in range(2):
                for site in sites:
                    assert client.get(site.url("/page"), max_bytes=1024).body == b"ok"
            # One more than the cap at most: the newest site is added before older ones close
            # (a closed socket leaves ESTABLISHED within moments).
            assert eventually(lambda: established_to(ports) <= settings.max_connections + 1)
            assert established_to(ports) >= 1
        assert sum(site.requests["/page"] for site in sites) == 10


def test_a_response_in_progress_is_never_closed_to_make_room_for_other_sites() -> None:
    settings = dataclasses.replace(LOOPBACK_HTTP, max_connections=1, read_timeout=10,
                                   deadline=20)
    size = 4 << 20
    body_started, go_on = threading.Event(), threading.Event()

    def half_then_the_rest(handler: RequestHandler) -> None:
        # The body arrives in two parts, the other sites fetched in between.
        handler.send_response(200)
        handler.send_header("Content-Length", str(size))
        handler.end_headers()
        handler.wfile.write(b"x" * 1024)
        handler.wfile.flush()
        body_started.set()
        go_on.wait(10)
        handler.wfile.write(b"x" * (size - 1024))

    with contextlib.ExitStack() as stack:
        slow = stack.enter_context(LoopbackServer({"/slow": half_then_the_rest}))
        others = [stack.enter_context(LoopbackServer({"/page": Route(b"ok", headers=HTML)}))
                  for _ in range(4)]
        with HttpClient(settings) as client, ThreadPoolExecutor(2) as pool:
            slow_response = pool.submit(client.get, slow.url("/slow"), max_bytes=size)
            assert body_started.wait(10)
            # Each new site asks for room while the slow one's socket is busy with its body.
            others_done = pool.submit(lambda: [client.get(site.url("/page"), max_bytes=1024).body
                                               for site in others])
            assert others_done.result(timeout=5) == [b"ok"] * len(others)
            go_on.set()
            assert slow_response.result(timeout=20).body == b"x" * size
        assert slow.requests["/slow"] == 1  # its socket was never lost, so never asked again


def _raw(status: int, headers: dict[str, str], body: bytes) -> Handler:
    def handle(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)
        handler.close_connection = True
    return handle


def test_every_failure_says_what_where_and_with_which_status(server: LoopbackServer) -> None:
    server.routes["/declared"] = Route(b"y" * 5000, headers=HTML)
    server.routes["/streamed"] = _raw(200, {"Content-Type": "text/html"}, b"z" * 9000)
    server.routes["/garbled"] = _raw(200, {"Content-Type": "text/html", "Content-Encoding": "gzip",
                                           "Content-Length": "20"}, b"definitely not gzip!")
    server.routes["/bomb"] = Route(_bomb("gzip", 1 << 20), headers={
        "Content-Type": "text/html", "Content-Encoding": "gzip"})
    def trickle(handler: BaseHTTPRequestHandler) -> None:  # small chunks, each under the cap
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.end_headers()
        try:
            for _ in range(100):
                handler.wfile.write(b"t" * 100)
                handler.wfile.flush()
                time.sleep(0.001)
        except OSError:
            pass
        handler.close_connection = True

    server.routes["/trickled"] = trickle
    server.routes["/compress"] = _raw(200, {"Content-Type": "text/html",
                                            "Content-Encoding": "compress",
                                            "Content-Length": "4"}, b"abcd")
    cases = {
        "/compress": ("bad_encoding", 200, "compress"),
        "/declared": ("too_large", 200, "5000"),
        "/streamed": ("too_large", 200, "body exceeds cap of 4096 bytes (cap 4096)"),
        "/trickled": ("too_large", 200, "body exceeds cap of 4096 bytes (cap 4096)"),
        "/garbled": ("bad_encoding", 200, "undecodable body: "),
        "/bomb": ("too_large", 200, "decoded body exceeds 4096 bytes (cap 4096)"),
        "/missing": ("http_status", 404, "404"),
    }
    for path, (reason, status, said) in cases.items():
        error = _error(server.url(path), max_bytes=4096)
        assert (error.reason, error.status, error.url) == (reason, status, server.url(path)), path
        assert str(error) and said in str(error), path


def test_a_failure_reads_as_its_message() -> None:
    error = FetchError("timeout", "read timed out after 30 s", url="https://n.example/a")
    assert str(error) == "read timed out after 30 s"
    assert (error.status, error.retry_after) == (None, None)


def test_a_successful_response_is_stamped_in_utc(server: LoopbackServer) -> None:
    server.routes["/x"] = Route(b"ok", headers=HTML)
    before = datetime.now(UTC)
    response = _get(server.url("/x"))
    assert response.fetched_at.tzinfo is UTC and before <= response.fetched_at


@pytest.mark.parametrize(("content_type", "feed", "page"), [
    # Feeds: lenient, as servers mislabel them (each of these by one word of its type only).
    ("APPLICATION/X-RSS; charset=utf-8", True, False),
    ("application/x-atom", True, False),
    ("application/x-rdf", True, False),
    ("application/x-json", True, False),
    ("application/x-xml", True, False),
    ("application/octet-stream", True, False),  # servers that do not know better
    ("text/plain", True, False),
    ("", True, True),  # none said: the body decides
    # Pages: HTML only.
    ("text/html;charset=UTF-8;x=y", True, True),
    ("Application/XHTML+XML", True, True),
    ("application/pdf", False, False),
    ("image/png", False, False),
])
def test_what_each_stage_accepts_as_content(content_type: str, feed: bool, page: bool) -> None:
    assert is_feed_content_type(content_type) is feed
    assert is_page_content_type(content_type) is page


def test_a_name_that_does_not_resolve_is_a_dns_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_name(*args: object, **kwargs: object) -> list:
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(transforms_guard.socket, "getaddrinfo", no_such_name)
    with pytest.raises(transforms_guard.AddressRefused) as refused:
        transforms_guard.resolve_allowed("gone.example", 443, allow_private_networks=False)
    assert (refused.value.reason, str(refused.value)) == (
        "dns_error", "cannot resolve gone.example: [Errno -2] Name or service not known")


def test_a_private_address_is_refused_with_how_to_allow_it() -> None:
    with pytest.raises(transforms_guard.AddressRefused) as refused:
        transforms_guard.resolve_allowed("127.0.0.1", 80, allow_private_networks=False)
    assert (refused.value.reason, str(refused.value)) == (
        "blocked_address", "127.0.0.1 resolves to non-public address 127.0.0.1"
        " (use --allow-private-networks to permit)")
    assert transforms_guard.resolve_allowed("127.0.0.1", 80, allow_private_networks=True) == [
        "127.0.0.1"]


@pytest.mark.parametrize(("url", "message"), [
    ("ftp://news.example/feed", "not an absolute http(s) URL: 'ftp://news.example/feed'"),
    ("https:///feed", "not an absolute http(s) URL: 'https:///feed'"),
    ("/feed.xml", "not an absolute http(s) URL: '/feed.xml'"),
    ("http://news.example:99999/feed", "malformed URL 'http://news.example:99999/feed': "),
])
def test_what_is_not_an_http_url_is_refused_before_any_request(url: str, message: str) -> None:
    with pytest.raises(FetchError) as refused:
        validate_url(url)
    assert (refused.value.reason, refused.value.url) == ("invalid_url", url)
    assert str(refused.value).startswith(message)
    assert validate_url("HTTPS://news.example/feed") == "HTTPS://news.example/feed"


def test_a_retry_carries_its_error_and_reads_as_it() -> None:
    error = FetchError("http_status", "HTTP 503", url="https://n.example/", status=503,
                       retry_after=4.0)
    retry = transforms_http._RetryableError(error, 4.0)
    assert (str(retry), retry.error, retry.retry_after) == ("HTTP 503", error, 4.0)
    assert error.retry_after == 4.0


def test_a_host_whose_first_address_refuses_is_reached_at_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A name with two addresses, the first of which refuses connections (nothing listens on
    # 127.0.0.2 at this port): the guard tries them in turn, as a resolver's order says.
    with LoopbackServer({"/x": Route(b"ok", headers=HTML)}) as site:
        port = int(site.base_url.rsplit(":", 1)[1])
        monkeypatch.setattr(transforms_guard, "resolve_allowed",
                            lambda host, port_, allow_private_networks: ["127.0.0.2",
                                                                         "127.0.0.1"])
        assert _get(f"http://two.example:{port}/x").body == b"ok"
        monkeypatch.setattr(transforms_guard, "resolve_allowed",
                            lambda host, port_, allow_private_networks: ["127.0.0.2"])
        refused = _error(f"http://two.example:{port}/x")
        assert refused.reason == "connection_error"
        assert str(refused).startswith("ConnectError: ConnectionRefusedError: ")


@pytest.mark.parametrize(("draw", "factor"), [(0.0, 0.5), (0.5, 1.0), (0.999, 1.499)])
def test_the_jitter_spreads_a_retry_from_half_to_one_and_a_half_times_its_backoff(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, draw: float, factor: float,
) -> None:
    monkeypatch.setattr(transforms_http.random, "random", lambda: draw)
    server.routes["/x"], _ = _status_then_ok(503)
    slept: list[float] = []
    settings = dataclasses.replace(LOOPBACK_HTTP, backoff=2.0)
    with HttpClient(settings, sleep=slept.append) as client:
        client.get(server.url("/x"), max_bytes=100)
    assert slept == [pytest.approx(2.0 * factor)]


def test_a_proxy_set_in_the_environment_is_never_used(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A feed must not be fetched through whatever proxy the worker's environment names (it
    # would see every request, and the address guard would check the proxy, not the site).
    with LoopbackServer({}) as proxy:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy.base_url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        server.routes["/x"] = Route(b"direct", headers=HTML)
        assert _get(server.url("/x")).body == b"direct"
        assert sum(proxy.requests.values()) == 0


def test_every_way_a_request_fails_is_told_with_its_reason_place_and_status(
    server: LoopbackServer,
) -> None:
    def hang(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(2)

    def reset(handler: BaseHTTPRequestHandler) -> None:
        handler.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.request.close()
        handler.close_connection = True

    routes: dict[str, Route | Handler] = {
        "/pdf": Route(b"%PDF", headers={"Content-Type": "application/pdf"}),
        "/no-location": Route(status=302),
        "/multiple-choices": Route(b"pick one", status=300, headers=HTML),
        "/loop-a": Route(status=302, headers={"Location": "/loop-b"}),
        "/loop-b": Route(status=302, headers={"Location": "/loop-a"}),
        "/gone": Route(b"", status=410),
        "/hang": hang,
        "/reset": reset,
    }
    for hop in range(7):
        routes[f"/hop{hop}"] = Route(status=302, headers={"Location": f"/hop{hop + 1}"})
    server.routes.update(routes)
    settings = dataclasses.replace(LOOPBACK_HTTP, read_timeout=0.3, retries=0)
    expected = {
        "/pdf": ("bad_content_type", "unexpected content type 'application/pdf'", "/pdf", 200),
        "/no-location": ("http_status", "HTTP 302 without Location", "/no-location", 302),
        "/multiple-choices": ("http_status", "HTTP 300", "/multiple-choices", 300),
        "/loop-a": ("too_many_redirects", f"redirect loop back to {server.url('/loop-a')}",
                    "/loop-a", 302),
        "/hop0": ("too_many_redirects", "more than 5 redirects", "/hop0", None),
        "/gone": ("http_status", "HTTP 410", "/gone", 410),
        "/hang": ("timeout", "ReadTimeout: ", "/hang", None),
        "/reset": ("connection_error", "", "/reset", None),
    }
    for path, (reason, message, where, status) in expected.items():
        error = _error(server.url(path), settings, content_type_ok=is_page_content_type)
        assert (error.reason, error.url, error.status) == (
            reason, server.url(where), status), path
        assert str(error).startswith(message), (path, str(error))
        if reason == "connection_error":
            assert str(error).split(":")[0].endswith("Error"), str(error)  # the kind, first
    assert server.requests["/hop5"] == 1 and server.requests["/hop6"] == 0  # 5 redirects


def test_a_not_modified_answer_is_returned_with_an_empty_body(server: LoopbackServer) -> None:
    server.routes["/feed"] = Route(b"<rss/>", headers={"ETag": '"v1"',
                                                       "Content-Type": "application/rss+xml"})
    with HttpClient(LOOPBACK_HTTP, sleep=lambda _: None) as client:
        response = client.get(server.url("/feed"), max_bytes=1024,
                              headers={"If-None-Match": '"v1"'})
    assert (response.status, response.body, response.url) == (304, b"", server.url("/feed"))


def test_the_guard_of_a_python_subprocess_refuses_and_records(tmp_path: Path) -> None:
    # Processes a test starts (Airflow, its task) get the guard through sitecustomize.
    import subprocess
    import sys

    log = tmp_path / "guard.log"
    guard = Path(__file__).resolve().parent / "subprocess_guard"
    done = subprocess.run(
        [sys.executable, "-c", "import socket; socket.create_connection(('192.0.2.1', 80), 1)"],
        env={**os.environ, "PYTHONPATH": str(guard), "NEWSBEAM_GUARD_LOG": str(log)},
        capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "NetworkGuardError" in done.stderr
    assert "name resolution of '192.0.2.1'" in log.read_text()
