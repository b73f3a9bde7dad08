"""A stream polls a shard's due feeds at once, and hands each fetched feed on as soon as its
answer is in: the stages fused after the poll parse it while the others are still fetched."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pipeline.demo.loopback import LoopbackServer, RequestHandler, Route
from tests.helpers import LOOPBACK_HTTP
from transforms.core import Feed, FetchedFeed
from transforms.feeds import PollClock
from transforms.feeds.poll import _PollShardFn
from transforms.fetch import DEFAULT_POLITENESS

RSS = {"Content-Type": "application/rss+xml"}
BODY = (b"<?xml version='1.0'?><rss version='2.0'><channel><title>F</title>"
        b"<item><title>A</title><link>http://127.0.0.1/a.html</link></item></channel></rss>")
WATCHDOG = 10.0  # releases the held feed if the first one never comes out


class _State:
    """A keyed state cell, as Beam hands one to process()."""

    def __init__(self) -> None:
        self.value: Any = None

    def read(self) -> Any:
        return self.value

    def write(self, value: Any) -> None:
        self.value = value


@pytest.fixture
def site() -> Iterator[tuple[LoopbackServer, threading.Event]]:
    release = threading.Event()

    def held(handler: RequestHandler) -> None:
        release.wait(WATCHDOG)
        handler.send_route(Route(BODY, headers=RSS))

    server = LoopbackServer({"/quick.xml": Route(BODY, headers=RSS), "/held.xml": held}).start()
    yield server, release
    release.set()
    server.stop()


def test_a_fetched_feed_is_handed_on_before_the_shards_other_polls_end(site) -> None:
    server, release = site
    quick, held = Feed(server.url("/quick.xml")), Feed(server.url("/held.xml"))
    fn = _PollShardFn((held, quick), LOOPBACK_HTTP, DEFAULT_POLITENESS, poll_interval=60.0,
                      max_bytes=1 << 20, tick=60.0, clock=PollClock.WALL, shards=1)
    fn.setup()
    state = _State()
    outputs = fn.process(("0", 0), timestamp=time.time(), feed_states=state)

    first = next(output for output in outputs if isinstance(output, FetchedFeed))
    assert first.feed == quick and not release.is_set()
    release.set()
    rest = [output for output in outputs if isinstance(output, FetchedFeed)]
    assert [fetched.feed for fetched in rest] == [held]
    # The shard's state is written once all its polls are in, in the order of its feeds.
    assert list(state.value) == [held.url, quick.url]
    fn.teardown()


def test_beam_sees_no_return_beside_yield_in_the_poll_step(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Beam 2.77 warns of a `return` anywhere in the source of a process method that yields
    # (apache/beam#22969), nested functions included: every stream's log would carry it.
    import apache_beam as beam

    fn = _PollShardFn((Feed("http://127.0.0.1/f.xml"),), LOOPBACK_HTTP, DEFAULT_POLITENESS,
                      60.0, 1 << 20, 60.0, PollClock.TICKS, 1)
    with caplog.at_level("WARNING"):
        beam.ParDo(fn)
    assert not [r for r in caplog.records if "yield and return" in r.getMessage()]
