"""parse_feed beyond the corpus: JSON Feed 1 and 1.1, and what a feed's HTTP says."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from transforms.core import Feed, FetchedFeed
from transforms.feeds import parse_feed
from transforms.fetch import is_feed_content_type

FEED_URL = "http://127.0.0.1:8000/feed.json"


# Full text long enough to stand for the article (FULL_TEXT_MIN_WORDS words or more).
STORY_TEXT = "Officials signed the trade deal on Tuesday. " * 12
WHOLE_STORY = f"<p>{STORY_TEXT}</p><p>Markets rose.</p>"
STORY_TEXT = f"{STORY_TEXT.strip()}\nMarkets rose."


def _parse(body: bytes, content_type: str = "application/feed+json"):
    return parse_feed(FetchedFeed(Feed(FEED_URL, name="Configured name"), FEED_URL, 200,
                                  content_type, body, datetime(2026, 1, 1, tzinfo=UTC)))


def test_json_feed_1_1() -> None:
    parsed = _parse(json.dumps({
        "version": "https://jsonfeed.org/version/1.1", "title": "Desk",
        "items": [
            {"id": "1", "url": "/a?utm_source=x", "title": "A", "content_html": WHOLE_STORY,
             "summary": "Sum", "date_published": "2024-01-02T03:04:05+02:00",
             "date_modified": "2024-01-03T00:00:00Z", "authors": [{"name": "Ann"}],
             "tags": ["Trade"]},
            {"id": "2", "title": "No link at all"},
        ],
    }).encode())
    assert parsed.title == "Desk" and parsed.bozo_reason is None
    (entry,) = parsed.entries
    assert entry.link == "http://127.0.0.1:8000/a?utm_source=x"
    assert entry.canonical_url == "http://127.0.0.1:8000/a"
    assert (entry.guid, entry.title, entry.authors, entry.categories) == (
        "1", "A", ("Ann",), ("Trade",))
    assert entry.published_at == datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert entry.updated_at == datetime(2024, 1, 3, tzinfo=UTC)
    assert entry.full_text == STORY_TEXT and entry.summary == "Sum"
    assert [d.reason for d in parsed.dead_letters] == ["entry_without_link"]


def test_an_entry_without_a_link_keeps_its_dead_letter_id_wherever_it_sits_in_the_feed() -> None:
    def letters(*items: dict) -> list[str]:
        body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": items})
        return [letter.id for letter in _parse(body.encode()).dead_letters]

    lost, other = {"title": "No link at all"}, {"title": "Another without one"}
    story = {"id": "1", "url": "/a", "content_text": "text"}
    (first,) = letters(lost, story)
    assert letters(story, story | {"id": "2", "url": "/b"}, lost) == [first]  # a later version
    assert letters(other, lost)[1] == first and letters(other, lost)[0] != first


def test_json_feed_1_with_feed_author_and_text_content() -> None:
    parsed = _parse(json.dumps({
        "version": "https://jsonfeed.org/version/1", "author": {"name": "Bob"},
        "items": [{"id": "x", "url": "https://news.example/b", "content_text": "1 < 2 " * 30,
                   "date_published": "Tue, 04 Mar 2025 05:10:00 GMT"}],
    }).encode(), content_type="application/json")
    (entry,) = parsed.entries
    assert entry.authors == ("Bob",) and entry.full_text.startswith("1 < 2 1 < 2")
    assert entry.published_at == datetime(2025, 3, 4, 5, 10, tzinfo=UTC)
    assert parsed.title == "Configured name"  # the feed has none: the feeds file's name


def test_a_short_content_is_not_taken_for_the_whole_article() -> None:
    parsed = _parse(json.dumps({
        "version": "https://jsonfeed.org/version/1.1",
        "items": [{"id": "1", "url": "https://news.example/a",
                   "content_html": "<p>A short summary of the story.</p>"}],
    }).encode())
    (entry,) = parsed.entries
    assert entry.full_text == ""  # a teaser cannot stand in for the page


def test_broken_json_feed_is_a_feed_dead_letter() -> None:
    parsed = _parse(b'{"version": "https://jsonfeed.org/version/1.1", "items": [')
    (letter,) = parsed.dead_letters
    assert (letter.reason, letter.subject, letter.error_type) == (
        "feed_unparseable", "feed", "JsonFeedError")


def test_json_that_is_not_a_feed() -> None:
    (letter,) = _parse(b'{"hello": "world"}', content_type="application/json").dead_letters
    assert letter.reason == "feed_unparseable" and "jsonfeed.org" in letter.message


def test_feed_content_types() -> None:
    for ok in ("application/rss+xml", "application/atom+xml; charset=utf-8", "text/xml",
               "application/feed+json", "application/json", "text/html", ""):
        assert is_feed_content_type(ok), ok
    for bad in ("image/png", "application/pdf", "video/mp4", "application/zip"):
        assert not is_feed_content_type(bad), bad


def test_rss_with_invalid_utf8_keeps_its_entries() -> None:
    body = ("<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>T</title>"
            "<item><title>Caf\u00e9 news</title><link>https://news.example/a</link></item>"
            "</channel></rss>").encode().replace(b"Caf\xc3\xa9", b"Caf\xe9\xff")
    parsed = _parse(body, content_type="application/rss+xml; charset=utf-8")
    (entry,) = parsed.entries
    assert entry.link == "https://news.example/a" and entry.title.startswith("Caf")


def test_surrogate_character_references_do_not_lose_the_feed() -> None:
    # Old publishing systems write an emoji as two UTF-16 surrogate references; feedparser
    # raises on them, which would lose every entry of the feed.
    rss = (b"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Desk"
           b"</title><item><title>Smile &#55357;&#56832; and a stray &#xD800;</title>"
           b"<link>https://news.example/a</link><description>Low &#56832; alone"
           b"</description></item><item><title>B</title><link>https://news.example/b</link>"
           b"</item></channel></rss>")
    parsed = _parse(rss, content_type="application/rss+xml")
    assert [entry.title for entry in parsed.entries] == [
        "Smile \U0001F600 and a stray \ufffd", "B"]
    assert parsed.entries[0].summary == "Low \ufffd alone"


def test_json_feed_lone_surrogates_become_replacement_characters() -> None:
    body = (b'{"version": "https://jsonfeed.org/version/1.1", "title": "Desk \\ud800",'
            b' "items": [{"id": "1", "url": "https://news.example/a", "title": "A \\udc00 b",'
            b' "summary": "Pair \\ud83d\\ude00", "tags": ["x\\ud800"]}]}')
    parsed = _parse(body)
    (entry,) = parsed.entries
    assert parsed.title == "Desk \ufffd"
    assert (entry.title, entry.summary, entry.categories) == (
        "A \ufffd b", "Pair \U0001F600", ("x\ufffd",))
