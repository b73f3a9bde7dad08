"""One way to fail: an element that breaks a stage becomes one dead letter of that stage, and
the rest of the run completes and is accounted for."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import GlobalWindow

from pipeline import demo
from pipeline.demo.loopback import LoopbackServer
from pipeline.job.run_batch import run_batch
from tests.helpers import LOOPBACK_HTTP, entry, test_pipeline
from transforms.core import (
    FETCH_PAGES,
    Article,
    Entry,
    TaggedArticle,
    article_id,
    canonical_url,
    guarded,
)
from transforms.fetch import HostGate, PoliteFetchFn, Politeness
from transforms.records import ToRecords, build
from transforms.topics import TopicMatcher, load_taxonomy

# The demo article each test poisons, and words of its text.
POISONED_PATH = "/us/2024/05/15/overdose-deaths-fall.html"
POISONED_LINE = "the first annual decline since 2018"


@pytest.fixture
def site() -> Iterator[LoopbackServer]:
    server = demo.sample_server()
    yield server
    server.stop()


def _run(site: LoopbackServer, out: Path) -> dict:
    options = PipelineOptions(["--allow-private-networks", "--state=none"])
    return run_batch(options, demo.sample_feeds(site), load_taxonomy(), str(out))


def _lines(out: Path, prefix: str) -> list[dict]:
    return [json.loads(line) for f in out.glob(f"{prefix}-*.jsonl") for line in f.open()]


def _poisoned(function, error: Exception):  # type: ignore[no-untyped-def]
    """`function`, but raising `error` whenever one of its arguments mentions POISONED_LINE."""

    def poisoned(*args, **kwargs):  # type: ignore[no-untyped-def]
        if any(POISONED_LINE in str(arg) for arg in args):
            raise error
        return function(*args, **kwargs)

    return poisoned


def _assert_one_dead_letter_and_the_rest_written(
    site: LoopbackServer, out: Path, summary: dict, stage: str, error_type: str
) -> None:
    assert summary["accounted"] == {"feeds": True, "entries": True}
    assert summary["entries"]["records"] == 5  # six articles in the sample, one poisoned
    titles = {record["title"] for record in _lines(out, "articles")}
    assert "Overdose deaths fell last year for the first time since 2018" not in titles
    (letter,) = [d for d in _lines(out, "dead-letters") if d["stage"] == stage]
    assert (letter["reason"], letter["subject"], letter["error_type"]) == (
        "unexpected_error", "entry", error_type)
    assert letter["article_id"] == article_id(canonical_url(site.url(POISONED_PATH)))
    assert summary["dead_letters"][stage] == {"unexpected_error": 1}


@pytest.mark.slow
def test_a_taxonomy_that_raises_on_one_text_loses_only_that_article(
    site: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a user's regular expression might on one pathological text.
    monkeypatch.setattr(TopicMatcher, "tag", _poisoned(TopicMatcher.tag, RecursionError("deep")))
    summary = _run(site, tmp_path)
    _assert_one_dead_letter_and_the_rest_written(site, tmp_path, summary, "tag_topics",
                                                 "RecursionError")


@pytest.mark.slow
def test_a_text_that_breaks_record_building_loses_only_that_article(
    site: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build, "content_fingerprint", _poisoned(
        build.content_fingerprint, UnicodeEncodeError("utf-8", "", 0, 1, "surrogates")))
    summary = _run(site, tmp_path)
    _assert_one_dead_letter_and_the_rest_written(site, tmp_path, summary, "to_records",
                                                 "UnicodeEncodeError")


def _tagged(url: str, text: str) -> TaggedArticle:
    canonical = canonical_url(url)
    entry = Entry(feed_url="http://127.0.0.1/feed", feed_title=None, feed_tags=(), feed_index=0,
                  position=0, guid=None, link=url, canonical_url=canonical,
                  article_id=article_id(canonical), title=None, authors=(), published_at=None,
                  updated_at=None, categories=(), summary=None)
    article = Article(entry=entry, url=url, title="T", authors=(), published_at=None,
                      published_source="none", fetched_at=datetime(2026, 1, 1, tzinfo=UTC),
                      language="en", site_name=None, summary=None, text=text)
    return TaggedArticle(article, (), "v1")


@pytest.mark.slow
def test_a_record_no_sink_could_write_is_an_unwritable_text_dead_letter() -> None:
    good = _tagged("http://127.0.0.1/good", "A story in plain words.")
    # A lone surrogate: no UTF-8 encoder takes it, so every sink's write would fail on it.
    bad = _tagged("http://127.0.0.1/bad", "A story with a broken \ud800 character.")
    with test_pipeline() as p:
        built = p | beam.Create([good, bad]) | ToRecords()
        assert_that(built.records | beam.Map(lambda r: r.url),
                    equal_to(["http://127.0.0.1/good"]), label="Records")
        assert_that(built.dead_letters | beam.Map(lambda d: (d.stage, d.reason, d.url,
                                                             d.message)),
                    equal_to([("to_records", "unwritable_text", "http://127.0.0.1/bad",
                               "field 'text' is not valid Unicode (a lone surrogate at 22)")]),
                    label="DeadLetters")


def test_guarded_keeps_no_partial_outputs_of_a_failed_element() -> None:
    def half_done() -> Iterator[str]:
        yield "first output"
        raise ValueError("broke half-way")

    (only,) = guarded("to_records", _tagged("http://127.0.0.1/x", "t"), half_done)
    assert only.tag == "dead_letters" and only.value.message == "broke half-way"


class _HeldFetchFn(PoliteFetchFn):
    """Fetches nothing: each item waits for `release`, then counts itself as fetched."""

    stage = FETCH_PAGES

    def __init__(self, release: threading.Event) -> None:
        super().__init__(LOOPBACK_HTTP, 1 << 20, Politeness(per_host=1))
        self.release = release
        self.fetched: list[str] = []  # links

    def fetch_item(self, item: Entry, gate: HostGate) -> Iterator[Any]:
        gate.wait_turn()
        self.release.wait(10)
        self.get("http://127.0.0.1:9/")  # torn down by now: abandoned, not a dead letter
        self.fetched.append(item.link)
        yield item


def test_a_torn_down_fetch_stage_drops_its_queued_work_quietly(caplog) -> None:
    # Beam tears down the DoFns of a bundle that failed (a full disk, a sink gone) while their
    # fetches are still queued on the process's lanes: those are dropped, not fetched, not
    # dead letters, and not a traceback each in the log.
    release = threading.Event()
    fn = _HeldFetchFn(release)
    fn.setup()
    fn.start_bundle()
    entries = [entry(f"http://127.0.0.1/{n}.html") for n in range(20)]
    pending = list(fn.process(("127.0.0.1", entries), window=GlobalWindow(), timestamp=0))
    assert pending == []  # the first item is held; the others wait in the host's lane
    fn.teardown()
    release.set()
    (done,) = fn._pending
    assert done.result(timeout=10) is None  # every queued item was let go of
    assert fn.fetched == [] and fn._results.empty()
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
