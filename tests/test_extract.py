"""extract_article on fetched pages: text, metadata merge, charsets, failures."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline import demo
from transforms.core import Entry, Page, article_id, canonical_url
from transforms.extract import ExtractionError, extract_article

URL = "http://127.0.0.1:8000/world/story.html"
SEED = next(a for a in demo.sample_articles() if a["title"].startswith("Blinken"))


def _entry(**overrides: object) -> Entry:
    fields = dict(feed_url="http://127.0.0.1:8000/feed", feed_title="Feed", feed_tags=(),
                  feed_index=0, position=0, guid="g1", link=URL, canonical_url=canonical_url(URL),
                  article_id=article_id(canonical_url(URL)), title="Feed headline",
                  authors=("Feed Author",), published_at=None, updated_at=None, categories=(),
                  summary="Feed summary.")
    fields.update(overrides)
    return Entry(**fields)  # type: ignore[arg-type]


def _page(body: bytes, content_type: str = "text/html; charset=utf-8", **entry: object) -> Page:
    return Page(_entry(**entry), URL, 200, content_type, body, datetime(2026, 1, 1, tzinfo=UTC))


def test_page_metadata_wins_and_feed_fills_gaps() -> None:
    published = datetime(2023, 6, 18, 3, 40, tzinfo=UTC)
    article = extract_article(_page(demo.render_page(SEED, "http://127.0.0.1:8000"),
                                    published_at=published))
    assert article.title == SEED["title"]  # the page's own headline
    assert article.published_at == published and article.published_source == "feed"
    assert article.language == "en" and article.site_name == "The Harbour Ledger"
    assert article.summary == "Feed summary."
    assert article.text.split("\n")[0] == SEED["paragraphs"][0]  # headline not repeated


def test_page_date_is_used_when_the_feed_has_none() -> None:
    article = extract_article(_page(demo.render_page(SEED, "http://127.0.0.1:8000")))
    assert article.published_source == "page"
    assert article.published_at == datetime(2023, 6, 18, tzinfo=UTC)


def test_implausible_feed_dates_are_ignored() -> None:
    future = datetime(2099, 1, 1, tzinfo=UTC)
    article = extract_article(_page(demo.render_page(SEED, "http://127.0.0.1:8000"),
                                    published_at=future))
    assert article.published_source == "page"


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    body = demo.render_page(SEED, "http://127.0.0.1:8000").replace(
        b"Diaoyutai", b"Diao\xff\xfeyutai")
    article = extract_article(_page(body))
    assert "Diao\ufffd\ufffdyutai" in article.text


def test_charset_from_meta_when_the_header_has_none() -> None:
    html = ("<html><head><meta charset='windows-1252'><title>Caf\xe9</title></head><body>"
            "<article><h1>Caf\xe9 owners protest</h1>"
            + "".join(f"<p>Paragraph {n}: the caf\xe9 on the corner says \u201cno\u201d to the "
                      "new rules, and its owners explain why at length.</p>" for n in range(6))
            + "</article></body></html>").encode("windows-1252")
    article = extract_article(_page(html, content_type="text/html"))
    assert "café on the corner says “no”" in article.text


def test_a_page_without_article_text_is_an_empty_extraction() -> None:
    with pytest.raises(ExtractionError) as failure:
        extract_article(_page(b"<html><head><title>Loading</title></head><body>"
                              b"<script>window.app = {}</script></body></html>"))
    assert failure.value.reason == "empty_extraction"


FEED_TEXT = " ".join(["The feed carried the whole story in its content element."] * 20)


def test_a_page_that_could_not_be_fetched_falls_back_to_the_feed_text() -> None:
    page = Page(_entry(full_text=FEED_TEXT), URL, 0, "", b"", datetime(2026, 1, 1, tzinfo=UTC))
    article = extract_article(page)
    assert article.extraction_method == "feed"
    assert article.text.startswith("The feed carried the whole story")
    assert article.title == "Feed headline"


def test_the_feed_text_wins_when_the_page_gives_much_less() -> None:
    thin = (b"<html><body><article><h1>Headline</h1><p>Only a teaser paragraph of the story "
            b"is on the page, behind a wall.</p></article></body></html>")
    article = extract_article(_page(thin, full_text=FEED_TEXT))
    assert article.extraction_method == "feed"
