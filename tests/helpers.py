"""Helpers shared by tests: running the batch graph under TestPipeline on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline

from pipeline.graph.core import CoreConfig
from pipeline.graph.stream import StreamConfig
from pipeline.job.options import (
    DEFAULT_DEDUP_TTL,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_RETRY_AFTER,
    DEFAULT_WINDOW,
)
from transforms.core import Entry, article_id, canonical_url
from transforms.fetch import DEFAULT_POLITENESS, HttpSettings, Politeness
from transforms.topics import load_taxonomy

# A stream launch's id, as `newsbeam stream` makes one (a run id), for streams built in tests.
LAUNCH = "20261207T000000000Z"

# Spacing is measured where the server sees each request start; on loopback a request reaches
# its handler this much later or earlier than its neighbour at most (thread wake-ups), so two
# starts the client spaced by an interval are at least that interval less this apart.
ARRIVAL_JITTER = 0.05

# Short limits keep failure tests quick; private networks allowed because fixtures are loopback.
LOOPBACK_HTTP = HttpSettings(
    connect_timeout=2.0, read_timeout=2.0, deadline=5.0, retries=1, backoff=0.01,
    allow_private_networks=True,
)


def entry(url: str, feed: str = "http://127.0.0.1/feed") -> Entry:
    """A feed entry linking to `url`, with nothing else from its feed."""
    canonical = canonical_url(url)
    return Entry(feed_url=feed, feed_title=None, feed_tags=(), feed_index=0, position=0,
                 guid=None, link=url, canonical_url=canonical, article_id=article_id(canonical),
                 title=None, authors=(), published_at=None, updated_at=None, categories=(),
                 summary=None)


def loopback_core(politeness: Politeness = DEFAULT_POLITENESS) -> CoreConfig:
    """The shared stages' settings for loopback sites: the bundled taxonomy, LOOPBACK_HTTP."""
    return CoreConfig(load_taxonomy(), LOOPBACK_HTTP, politeness)


def stream_config(out: Path | str, stream_id: str, *,
                  politeness: Politeness = DEFAULT_POLITENESS, **fields: Any) -> StreamConfig:
    """A stream's config for loopback sites, with the options' defaults for what `fields`
    does not set."""
    times = dict(poll_interval=DEFAULT_POLL_INTERVAL, window=DEFAULT_WINDOW,
                 dedup_ttl=DEFAULT_DEDUP_TTL, retry_after=DEFAULT_RETRY_AFTER)
    return StreamConfig(out=str(out), core=loopback_core(politeness), stream_id=stream_id,
                        launch=LAUNCH, **{**times, **fields})


def test_pipeline() -> TestPipeline:
    """A TestPipeline on the FnApiRunner (no runner download, as in production runs)."""
    return TestPipeline(runner="FnApiRunner", options=PipelineOptions([]))


test_pipeline.__test__ = False  # type: ignore[attr-defined]  # not a test itself


def window_summaries(out: Path) -> list[dict]:
    """A stream's per-window summaries in `out` (a window's file may hold several panes'), in
    window order."""
    found = []
    for path in sorted(out.glob("summary-*.json")):
        text, decoder, position = path.read_text(), json.JSONDecoder(), 0
        while text[position:].strip():
            position += len(text[position:]) - len(text[position:].lstrip())
            summary, position = decoder.raw_decode(text, position)
            found.append(summary)
    return sorted(found, key=lambda summary: summary.get("window", {}).get("start", ""))


def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """True as soon as `condition()` is; False if it is still not after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def established_to(ports: set[int]) -> int:
    """This machine's established TCP connections to 127.0.0.1 on `ports`, client ends only
    (from /proc/net/tcp: addresses are little-endian hex, state 01 is ESTABLISHED)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        _, _local, remote, state, *_ = line.split()
        address, port = remote.split(":")
        if state == "01" and address == "0100007F" and int(port, 16) in ports:
            count += 1
    return count
