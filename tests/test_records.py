"""One record per tagged article: every field from where it comes, the page's canonical URL
preferred, credentials masked, and a record no sink could write refused with its reason."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from tests.helpers import test_pipeline
from transforms.core import (
    Article,
    Entry,
    Evidence,
    TaggedArticle,
    TopicTag,
    article_id,
    canonical_url,
    content_fingerprint,
)
from transforms.records.build import ToRecords, build_record

LINK = "https://reader:tok@news.example/world/1.html?utm_source=rss"
PUBLISHED = datetime(2025, 3, 4, 7, 45, tzinfo=UTC)
FETCHED = datetime(2025, 3, 4, 8, 0, tzinfo=UTC)
TEXT = "Taiwan's  trade office said on Tuesday that tariffs would rise."
TOPICS = (TopicTag("taiwan", "about", 3.5, (Evidence("taiwan", 2, ("title", "body")),)),)


def _tagged(text: str = TEXT, page_canonical: str | None = None) -> TaggedArticle:
    canonical = canonical_url(LINK)
    entry = Entry(
        feed_url="https://reader:tok@news.example/feed.xml", feed_title="World", feed_tags=(),
        feed_index=0, position=0, guid="g-1", link=LINK, canonical_url=canonical,
        article_id=article_id(canonical), title="Feed title", authors=(), published_at=None,
        updated_at=None, categories=(), summary=None)
    article = Article(
        entry=entry, url="https://reader:tok@news.example/world/1.html", title="Page title",
        authors=("A. Writer",), published_at=PUBLISHED, published_source="page_meta",
        fetched_at=FETCHED, language="en", site_name="News", summary="Tariffs rise.",
        text=text, extraction_method="trafilatura", canonical_url=page_canonical,
        image="https://news.example/i.jpg", paywalled=True)
    return TaggedArticle(article, TOPICS, "v3")


def test_every_field_comes_from_the_entry_the_page_or_the_tagger() -> None:
    record = build_record(_tagged())
    assert record.id == article_id("https://news.example/world/1.html")
    assert record.url == "https://***@news.example/world/1.html"
    assert record.canonical_url == "https://news.example/world/1.html"  # the feed link's
    assert record.feed_url == "https://***@news.example/feed.xml"
    assert (record.feed_title, record.guid, record.title) == ("World", "g-1", "Page title")
    assert (record.authors, record.published_at, record.published_source) == (
        ("A. Writer",), PUBLISHED, "page_meta")
    assert (record.fetched_at, record.language, record.site_name, record.summary) == (
        FETCHED, "en", "News", "Tariffs rise.")
    assert (record.text, record.extraction_method, record.lead_image, record.paywalled) == (
        TEXT, "trafilatura", "https://news.example/i.jpg", True)
    # Words are runs of letters and digits: "Taiwan's" is two.
    assert (record.word_count, record.topics, record.taxonomy_version) == (11, TOPICS, "v3")
    assert record.content_fingerprint == content_fingerprint(TEXT)


def test_the_pages_own_canonical_url_is_preferred_but_the_id_stays_the_links() -> None:
    record = build_record(_tagged(page_canonical="https://news.example/story/1"))
    assert record.canonical_url == "https://news.example/story/1"
    assert record.id == article_id("https://news.example/world/1.html")


@pytest.mark.parametrize("text", ["bad \ud800 surrogate", "ascii only is fine"])
def test_a_record_no_sink_could_write_is_refused_with_its_field(text: str) -> None:
    if text.isascii():
        assert build_record(_tagged(text)).text == text
        return
    with pytest.raises(ValueError, match=r"field 'text' is not valid Unicode \(a lone"
                                         r" surrogate at 4\)"):
        build_record(_tagged(text))


def test_to_records_outputs_records_their_counts_and_a_dead_letter_for_the_unwritable() -> None:
    with test_pipeline() as pipeline:
        built = pipeline | beam.Create([_tagged(), _tagged("bad \ud800")]) | ToRecords()
        assert_that(built.records | beam.Map(lambda record: record.text), equal_to([TEXT]),
                    label="Records")
        assert_that(built.dead_letters | beam.Map(lambda letter: (letter.stage, letter.reason)),
                    equal_to([("to_records", "unwritable_text")]), label="Letters")
        assert_that(built.tallies | beam.Map(lambda tally: tally.name),
                    equal_to(["records.output", "topics.taiwan.about"]), label="Tallies")


def test_a_lone_surrogate_in_a_list_field_is_refused_too() -> None:
    tagged = _tagged()
    bad = dataclasses.replace(tagged, article=dataclasses.replace(
        tagged.article, authors=("A. Writer", "B. \udc80")))
    with pytest.raises(ValueError, match="field 'authors' is not valid Unicode"):
        build_record(bad)


def test_to_records_keeps_its_step_name() -> None:
    pipeline = test_pipeline()
    _ = pipeline | beam.Create([_tagged()]) | "ToRecords" >> ToRecords()
    names = {transform.unique_name
             for transform in pipeline.to_runner_api().components.transforms.values()}
    assert "ToRecords/Build" in names  # a running stream is updated by step name
