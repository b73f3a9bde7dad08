"""Every feed of ../shared/corpus/feeds through fetch-and-parse: nothing escapes or is lost."""

from __future__ import annotations

import json

import apache_beam as beam
import feedparser
import pytest
from apache_beam.testing.util import assert_that, equal_to

from pipeline.demo.loopback import LoopbackServer, Route
from tests.conftest import CORPUS
from tests.helpers import LOOPBACK_HTTP, test_pipeline
from transforms.core import Feed, FetchedFeed
from transforms.feeds import FetchFeeds, ParseEntries, parse_feed
from transforms.fetch import HttpClient


def _manifest() -> list[dict]:
    path = CORPUS / "feeds" / "manifest.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.open(encoding="utf-8")]


MANIFEST = _manifest()


def _content_type(item: dict) -> str:
    """The Content-Type the fixture is meant to be served with (some test HTTP charsets)."""
    header = item.get("http_header")
    if header and header.lower().startswith("content-type:"):
        return header.split(":", 1)[1].strip()
    return "application/xml"


@pytest.fixture(scope="module")
def corpus_site() -> LoopbackServer:
    if not MANIFEST:
        pytest.skip(f"shared corpus not found at {CORPUS} (it lives beside the repository)")
    routes = {
        f"/{item['file']}": Route(
            (CORPUS / "feeds" / item["file"]).read_bytes(),
            headers={"Content-Type": _content_type(item)},
        )
        for item in MANIFEST
    }
    with LoopbackServer(routes) as site:
        yield site


@pytest.mark.parametrize("item", MANIFEST, ids=[m["file"] for m in MANIFEST])
def test_every_corpus_feed_is_accounted_for(item: dict, corpus_site: LoopbackServer) -> None:
    url = corpus_site.url(f"/{item['file']}")
    with HttpClient(LOOPBACK_HTTP) as client:
        response = client.get(url, max_bytes=5 * 1024 * 1024)
    fetched = FetchedFeed(Feed(url), response.url, response.status, response.content_type,
                          response.body, response.fetched_at)
    parsed = parse_feed(fetched)
    raw_entries = len(feedparser.parse(response.body, response_headers={
        "content-type": response.content_type})["entries"])
    entry_letters = [d for d in parsed.dead_letters if d.subject == "entry"]
    feed_letters = [d for d in parsed.dead_letters if d.subject == "feed"]
    if raw_entries == 0:
        assert parsed.entries == () and len(feed_letters) == 1
        assert feed_letters[0].reason in ("feed_empty", "feed_unparseable")
    else:
        assert len(parsed.entries) + len(entry_letters) == raw_entries
        assert not feed_letters
    if item["feedparser_bozo"] and parsed.entries:
        assert parsed.bozo_reason  # ill-formed but salvaged: kept, with its reason
    for entry in parsed.entries:
        assert entry.link.startswith(("http://", "https://"))
        assert len(entry.article_id) == 32
        assert entry.published_at is None or entry.published_at.tzinfo is not None
    for letter in parsed.dead_letters:
        assert letter.reason and letter.message


@pytest.mark.slow
def test_corpus_through_fetch_and_parse_transforms(corpus_site: LoopbackServer) -> None:
    feeds = tuple(
        Feed(corpus_site.url(f"/{item['file']}"), index=i) for i, item in enumerate(MANIFEST)
    )
    expected_entries = sum(item["entries"] for item in MANIFEST)
    with test_pipeline() as p:
        fetched = p | beam.Create(feeds) | "FetchFeeds" >> FetchFeeds(LOOPBACK_HTTP)
        parsed = fetched.feeds | "ParseEntries" >> ParseEntries()
        entries_and_rejects = (
            (parsed.entries | "EntryOnes" >> beam.Map(lambda _: 1)),
            (parsed.dead_letters
             | "EntryLetters" >> beam.Filter(lambda d: d.subject == "entry")
             | "LetterOnes" >> beam.Map(lambda _: 1)),
        ) | beam.Flatten() | beam.combiners.Count.Globally()
        # The manifest's counts are feedparser's with no HTTP headers; the two feeds served with
        # a charset header parse to the same number of entries.
        assert_that(entries_and_rejects, equal_to([expected_entries]), label="AllEntries")
        # Each feed ends once: lost at fetch, lost at parse, or parsed (its entries, kept or
        # dead-lettered one by one, name it).
        parsed_feeds = (
            (parsed.entries | "FeedOfEntry" >> beam.Map(lambda e: e.feed_url)),
            (parsed.dead_letters
             | "EntryLetterFeeds" >> beam.Filter(lambda d: d.subject == "entry")
             | "FeedOfLetter" >> beam.Map(lambda d: d.feed_url)),
        ) | "ParsedFeeds" >> beam.Flatten() | "Distinct" >> beam.Distinct()
        feed_outcomes = (
            (fetched.dead_letters | "FetchLost" >> beam.Map(lambda d: d.feed_url)),
            (parsed.dead_letters
             | "FeedLetters" >> beam.Filter(lambda d: d.subject == "feed")
             | "ParseLost" >> beam.Map(lambda d: d.feed_url)),
            parsed_feeds,
        ) | "AllFeeds" >> beam.Flatten() | "CountFeeds" >> beam.combiners.Count.Globally()
        assert_that(feed_outcomes, equal_to([len(feeds)]), label="EveryFeedOnce")
