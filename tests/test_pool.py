"""The connections kept per site behind the HTTP client: what the socket and http.client
raise as httpx's errors, a connection the site closed while idle, the most one site gets at
once, and which idle sites' connections are closed when the pools hold too many."""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from pipeline.demo.loopback import LoopbackServer, RequestHandler, Route
from tests.helpers import LOOPBACK_HTTP, established_to, eventually
from transforms.fetch import FetchError, HttpClient
from transforms.fetch.pool import GuardedConnection, Timeouts, as_httpx_error

HTML = {"Content-Type": "text/html"}


@pytest.mark.parametrize(("error", "sending", "expected"), [
    (TimeoutError("timed out"), False, httpx.ReadTimeout),
    (TimeoutError("timed out"), True, httpx.WriteTimeout),
    (ConnectionResetError(104, "Connection reset by peer"), False, httpx.ReadError),
    (BrokenPipeError(32, "Broken pipe"), True, httpx.WriteError),
    (http.client.IncompleteRead(b"abc", 10), False, httpx.RemoteProtocolError),
    (http.client.RemoteDisconnected("Remote end closed connection"), False,
     httpx.RemoteProtocolError),
    (http.client.LineTooLong("header line"), False, httpx.RemoteProtocolError),
    (TimeoutError(), False, httpx.ReadTimeout),
])
def test_what_the_socket_and_http_client_raise_becomes_the_httpx_error_of_its_kind(
    error: Exception, sending: bool, expected: type[Exception],
) -> None:
    translated = as_httpx_error(error, sending=sending)
    assert type(translated) is expected
    said = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    assert str(translated) == said  # what happened stays told
    assert type(as_httpx_error(error)) is type(as_httpx_error(error, sending=False))


def test_an_error_of_another_kind_is_left_as_it_is() -> None:
    error = ValueError("not the network's")
    assert as_httpx_error(error) is error
    timeout = httpx.PoolTimeout("already httpx's")
    assert as_httpx_error(timeout) is timeout


def _closing_after_each_answer(ports: list[int]) -> Callable[[RequestHandler], None]:
    """A handler that answers as if it kept the connection (no Connection: close), then
    hangs up: the client finds its idle connection closed at the next request."""
    def handle(handler: RequestHandler) -> None:
        ports.append(handler.client_address[1])
        handler.send_route(Route(b"ok", headers=HTML))
        handler.close_connection = True
    return handle


def test_an_idle_connection_the_site_closed_is_not_reused() -> None:
    ports: list[int] = []
    with LoopbackServer({"/p": _closing_after_each_answer(ports)}) as site, \
            HttpClient(LOOPBACK_HTTP, sleep=lambda _: None) as client:
        assert client.get(site.url("/p"), max_bytes=100).body == b"ok"
        assert eventually(lambda: len(ports) == 1)
        threading.Event().wait(0.2)  # the site's FIN arrives
        assert client.get(site.url("/p"), max_bytes=100).body == b"ok"
        assert site.requests["/p"] == 2 and len(set(ports)) == 2


def test_a_request_on_a_connection_closed_under_it_goes_again_on_a_fresh_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The site closes the idle connection just after the check that it is open (as a
    # keep-alive timeout can): the request is sent again on a new connection, not failed, and
    # not counted as one of the client's retries.
    monkeypatch.setattr(GuardedConnection, "dropped", lambda self: False)
    ports: list[int] = []
    no_retries = dataclasses.replace(LOOPBACK_HTTP, retries=0)
    with LoopbackServer({"/p": _closing_after_each_answer(ports)}) as site, \
            HttpClient(no_retries, sleep=lambda _: None) as client:
        assert client.get(site.url("/p"), max_bytes=100).body == b"ok"
        threading.Event().wait(0.2)
        assert client.get(site.url("/p"), max_bytes=100).body == b"ok"
        assert site.requests["/p"] == 2 and len(set(ports)) == 2


def test_a_site_gets_at_most_max_connections_at_once_and_a_wait_has_the_deadline() -> None:
    settings = dataclasses.replace(LOOPBACK_HTTP, max_connections=2, deadline=0.5, retries=0)
    release = threading.Event()

    def held(handler: RequestHandler) -> None:
        release.wait(10)
        handler.send_route(Route(b"late", headers=HTML))

    with LoopbackServer({"/held": held, "/p": Route(b"ok", headers=HTML)}) as site, \
            HttpClient(settings) as client:
        def ask_held() -> None:
            with contextlib.suppress(FetchError):  # past its own deadline by then
                client.get(site.url("/held"), max_bytes=100)

        holding = [threading.Thread(target=ask_held) for _ in range(2)]
        for thread in holding:
            thread.start()
        try:
            assert eventually(lambda: site.requests["/held"] == 2)
            with pytest.raises(FetchError) as waited:
                client.get(site.url("/p"), max_bytes=100)
        finally:
            release.set()
            for thread in holding:
                thread.join(10)
        assert (waited.value.reason, site.requests["/p"]) == ("timeout", 0)
        assert "no connection to 127.0.0.1 free within 0.5s" in str(waited.value)
        assert client.get(site.url("/p"), max_bytes=100).body == b"ok"  # its turn came


def test_a_body_cut_short_is_a_connection_error_and_retried() -> None:
    def cut_short(handler: RequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        handler.wfile.write(b"<html>only the start")
        handler.wfile.flush()
        handler.close_connection = True

    with LoopbackServer({"/page": cut_short}) as site, \
            HttpClient(LOOPBACK_HTTP, sleep=lambda _: None) as client:
        with pytest.raises(FetchError) as failed:
            client.get(site.url("/page"), max_bytes=1 << 20)
        assert site.requests["/page"] == LOOPBACK_HTTP.retries + 1
    assert failed.value.reason == "connection_error"
    assert str(failed.value).startswith("RemoteProtocolError: IncompleteRead")


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="counts sockets in /proc/net/tcp")
def test_past_the_cap_the_least_recently_used_idle_sites_are_closed_until_it_holds() -> None:
    # One connection per site, at most two kept: each site added closes the least recently
    # used idle ones while the pools hold more than two (the new one is added first).
    settings = dataclasses.replace(LOOPBACK_HTTP, max_connections=2)
    page = {"/p": Route(b"ok", headers={"Content-Type": "text/html"})}
    with contextlib.ExitStack() as stack:
        sites = [stack.enter_context(LoopbackServer(page)) for _ in range(5)]
        port = [int(site.base_url.rsplit(":", 1)[1]) for site in sites]

        def open_to(expected: set[int]) -> bool:
            return {n for n in range(5) if established_to({port[n]})} == expected

        with HttpClient(settings) as client:
            for n in (0, 1, 2):
                client.get(sites[n].url("/p"), max_bytes=1024)
            assert eventually(lambda: open_to({0, 1, 2}))  # two held when 2 was added: kept
            client.get(sites[3].url("/p"), max_bytes=1024)
            assert eventually(lambda: open_to({1, 2, 3}))  # 0 closed, the oldest
            client.get(sites[0].url("/p"), max_bytes=1024)
            assert eventually(lambda: open_to({2, 3, 0}))
            client.get(sites[4].url("/p"), max_bytes=1024)
            assert eventually(lambda: open_to({3, 0, 4}))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for the name "localhost" alone, and its key."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return folder / "cert.pem", folder / "key.pem"


def test_an_https_site_is_reached_over_tls_and_its_certificate_checked(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ssl

    cert, key = certificate
    ports: list[int] = []

    def page(handler: RequestHandler) -> None:
        ports.append(handler.client_address[1])
        handler.send_route(Route(b"over tls", headers=HTML))

    site = LoopbackServer({"/p": page})
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    site._httpd.socket = server_side.wrap_socket(site._httpd.socket, server_side=True)
    with site:
        port = int(site.base_url.rsplit(":", 1)[1])
        with HttpClient(LOOPBACK_HTTP, sleep=lambda _: None) as client:  # the usual trust
            unknown = pytest.raises(FetchError)
            with unknown:
                client.get(f"https://localhost:{port}/p", max_bytes=100)
        assert unknown.excinfo.value.reason == "connection_error"
        assert "CERTIFICATE_VERIFY_FAILED" in str(unknown.excinfo.value)
        monkeypatch.setattr(httpx, "create_ssl_context",
                            lambda: ssl.create_default_context(cafile=str(cert)))
        with HttpClient(LOOPBACK_HTTP, sleep=lambda _: None) as client:
            bodies = [client.get(f"https://localhost:{port}/p", max_bytes=100).body
                      for _ in range(2)]
            with pytest.raises(FetchError) as other_name:  # trusted, but not for this name
                client.get(f"https://127.0.0.1:{port}/p", max_bytes=100)
    assert bodies == [b"over tls"] * 2 and len(set(ports)) == 1  # one connection, kept
    assert "IP address mismatch" in str(other_name.value)


def _raw(answer: bytes, ports: list[int] | None = None) -> Callable[[RequestHandler], None]:
    """A handler that writes `answer`, bytes as they go on the wire, and keeps the
    connection open for the next request."""
    def handle(handler: RequestHandler) -> None:
        if ports is not None:
            ports.append(handler.client_address[1])
        handler.wfile.write(answer)
        handler.wfile.flush()
    return handle


def _kept(client: HttpClient) -> int:
    """The idle connections the client keeps, all sites together."""
    return sum(len(site.idle) for site in client._pools._sites.values())


def _assert_refused_as_too_long(handler: Callable[[RequestHandler], None]) -> None:
    with LoopbackServer({"/p": handler}) as site, \
            HttpClient(dataclasses.replace(LOOPBACK_HTTP, retries=0)) as client, \
            pytest.raises(FetchError) as refused:
        client.get(site.url("/p"), max_bytes=1000)
    assert refused.value.reason == "connection_error"
    assert "the response's head or trailer is too long" in str(refused.value)


def test_informational_answers_are_skipped_for_the_answer_behind_them() -> None:
    ports: list[int] = []
    answer = (b"HTTP/1.1 102 Processing\r\n\r\n"
              b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
              b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nok")
    with LoopbackServer({"/p": _raw(answer, ports)}) as site, \
            HttpClient(LOOPBACK_HTTP, sleep=lambda _: None) as client:
        bodies = [client.get(site.url("/p"), max_bytes=100).body for _ in range(2)]
    assert bodies == [b"ok", b"ok"] and len(set(ports)) == 1


def test_an_endless_chunked_trailer_is_refused_not_read() -> None:
    # Once the last chunk is in, http.client reads a trailer's lines with no bound of its
    # own, inside one read: neither the deadline nor the byte cap would get a say.
    def endless_trailer(handler: RequestHandler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n")
        with contextlib.suppress(OSError):
            for _ in range(20_000):  # 20 MB, then it gives up
                handler.wfile.write(b"X-Trailer: " + b"a" * 1000 + b"\r\n")
        handler.close_connection = True

    _assert_refused_as_too_long(endless_trailer)


def test_a_head_over_its_limit_is_refused() -> None:
    fields = b"".join(b"X-Field-%d: %s\r\n" % (n, b"v" * 8000) for n in range(20))
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + fields + b"\r\nok"
    _assert_refused_as_too_long(_raw(answer))


def test_a_connection_whose_body_was_cut_short_is_not_kept() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100\r\n\r\nshort"

    def cut_short(handler: RequestHandler) -> None:
        _raw(answer)(handler)
        handler.close_connection = True

    with LoopbackServer({"/p": cut_short, "/ok": Route(b"ok", headers=HTML)}) as site, \
            HttpClient(dataclasses.replace(LOOPBACK_HTTP, retries=0)) as client:
        assert client.get(site.url("/ok"), max_bytes=100).body == b"ok"
        assert _kept(client) == 1  # kept
        with pytest.raises(FetchError):
            client.get(site.url("/p"), max_bytes=1000)
        assert _kept(client) == 0


def test_a_chunked_body_with_its_trailer_leaves_its_connection_for_the_next_request() -> None:
    ports: list[int] = []
    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"2\r\nok\r\n3\r\n!!!\r\n0\r\nX-Checksum: 1\r\n\r\n")
    bare = answer.replace(b"X-Checksum: 1\r\n\r\n", b"\n")  # a trailer ended by a bare LF
    with LoopbackServer({"/p": _raw(answer, ports), "/bare": _raw(bare, ports)}) as site, \
            HttpClient(LOOPBACK_HTTP, sleep=lambda _: None) as client:
        bodies = [client.get(site.url(path), max_bytes=100).body
                  for path in ("/p", "/bare", "/p")]
    assert bodies == [b"ok!!!"] * 3 and len(set(ports)) == 1


def test_a_site_that_hangs_up_inside_a_trailer_leaves_no_connection_kept() -> None:
    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"2\r\nok\r\n0\r\nX-Checksum: 1\r\n")  # no blank line: the trailer is cut

    def cut_in_trailer(handler: RequestHandler) -> None:
        _raw(answer)(handler)
        handler.close_connection = True

    with LoopbackServer({"/p": cut_in_trailer}) as site, \
            HttpClient(dataclasses.replace(LOOPBACK_HTTP, retries=0)) as client:
        assert client.get(site.url("/p"), max_bytes=100).body == b"ok"
        assert _kept(client) == 0


def test_a_head_of_exactly_its_limit_is_read() -> None:
    from transforms.fetch.pool import HEAD_LIMIT

    start = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n"
    padding = HEAD_LIMIT - len(start) - len(b"X-Pad: \r\n\r\n")
    answer = start + b"X-Pad: " + b"p" * padding + b"\r\n\r\nok"
    assert len(answer) == HEAD_LIMIT + 2
    with LoopbackServer({"/p": _raw(answer)}) as site, \
            HttpClient(dataclasses.replace(LOOPBACK_HTTP, retries=0)) as client:
        assert client.get(site.url("/p"), max_bytes=100).body == b"ok"


def test_an_idle_connection_is_dropped_once_the_site_hangs_up_and_not_before() -> None:
    hang_up = threading.Event()

    def answer_then_hang_up(handler: RequestHandler) -> None:
        handler.send_route(Route(b"ok", headers=HTML))
        hang_up.wait(10)
        handler.close_connection = True

    with LoopbackServer({"/p": answer_then_hang_up}) as site:
        port = int(site.base_url.rsplit(":", 1)[1])
        timeouts = Timeouts(connect=2.0, read=2.0)
        connection = GuardedConnection("127.0.0.1", port, timeouts=timeouts,
                                       allow_private_networks=True, tls=None)
        assert connection.dropped()  # not connected yet: nothing to reuse
        connection.request("GET", "/p")
        assert connection.getresponse().read() == b"ok"
        assert not connection.dropped()  # idle, and open
        hang_up.set()
        assert eventually(connection.dropped)
        connection.close()
