"""The connection pools per site behind the HTTP client: httpcore's errors as httpx's, and
which idle sites' connections are closed when the pools hold too many."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import httpcore
import httpx
import pytest

from pipeline.demo.loopback import LoopbackServer, RequestHandler, Route
from tests.helpers import LOOPBACK_HTTP, established_to, eventually
from transforms.fetch import FetchError, HttpClient
from transforms.fetch.pool import as_httpx_error


@pytest.mark.parametrize(("core", "expected"), [
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
])
def test_an_httpcore_error_becomes_the_httpx_error_of_its_name(core, expected) -> None:
    original = core("what went wrong")
    translated = as_httpx_error(original)
    assert type(translated) is expected
    assert str(translated) == "what went wrong" and translated.__cause__ is original


def test_an_error_of_another_kind_is_left_as_it_is() -> None:
    error = ValueError("not the network's")
    assert as_httpx_error(error) is error


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
    assert "RemoteProtocolError" in str(failed.value)


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
