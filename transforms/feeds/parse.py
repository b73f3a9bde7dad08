"""Entries out of fetched feed bytes, with feedparser (or the JSON Feed reader).

`parse_feed` is a plain function that imports no Beam: the worker processes run it
(transforms.feeds.parse_entries hands them the feeds), and tests run it on every corpus feed.
"""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime
from typing import Any

import feedparser

from transforms.core import (
    PARSE_ENTRIES,
    DeadLetter,
    Entry,
    Feed,
    FetchedFeed,
    article_id,
    canonical_url,
    clean_whitespace,
    dead_letter,
    html_to_text,
)
from transforms.feeds.jsonfeed import looks_like_json, parse_json_feed
from transforms.feeds.parsed import ParsedFeed
from transforms.feeds.repair import repair_surrogate_references

# An entry whose content has at least this many words carries the whole article: its text can
# stand in for a page that cannot be fetched or extracted.
FULL_TEXT_MIN_WORDS = 80


def parse_feed(fetched: FetchedFeed) -> ParsedFeed:
    """Parse fetched feed bytes (RSS, Atom or JSON Feed) into entries; ill-formed feeds keep
    what can be salvaged.

    feedparser only ever sees bytes (never a URL it could fetch itself); the HTTP Content-Type
    goes along so a charset the server declared is honoured, and Content-Location resolves
    relative links against the URL the feed was really served from.
    """
    feed = fetched.feed
    polled_at = fetched.poll.polled_at if fetched.poll else fetched.fetched_at.timestamp()
    if looks_like_json(fetched.body, fetched.content_type):
        json_feed = parse_json_feed(fetched.body, fetched.final_url)
        title = _text(json_feed.title) or feed.name
        raw_entries: list[Any] = json_feed.items
        bozo_reason = json_feed.error
        bozo_type = "JsonFeedError" if json_feed.error else None
    else:
        parsed = feedparser.parse(
            io.BytesIO(repair_surrogate_references(fetched.body)),
            response_headers={
                "content-type": fetched.content_type or "application/xml",
                "content-location": fetched.final_url,
            },
        )
        bozo = bool(parsed.get("bozo"))
        bozo_reason = _bozo_reason(parsed) if bozo else None
        bozo_type = _bozo_type(parsed) if bozo else None
        title = _text(parsed.feed.get("title")) or feed.name
        raw_entries = parsed.get("entries") or []
    if not raw_entries:
        reason = "feed_unparseable" if bozo_reason else "feed_empty"
        message = bozo_reason or "the feed has no entries"
        return ParsedFeed(
            title=title,
            entries=(),
            dead_letters=(
                dead_letter(
                    PARSE_ENTRIES, reason, subject="feed", url=feed.url, feed_url=feed.url,
                    message=message, error_type=bozo_type or "",
                ),
            ),
            bozo_reason=bozo_reason,
            bozo_type=bozo_type,
        )
    entries: list[Entry] = []
    rejected: list[DeadLetter] = []
    for position, raw in enumerate(raw_entries):
        link = _entry_link(raw)
        if link is None:
            url = str(raw.get("link") or raw.get("id") or "")
            entry_title = _text(raw.get("title")) or ""
            rejected.append(
                dead_letter(
                    PARSE_ENTRIES, "entry_without_link", subject="entry",
                    url=url, feed_url=feed.url,
                    message=f"entry {position} ({entry_title or 'untitled'!r}) has no http(s)"
                    " link",
                    # The same entry in the next version of the feed has the same id, wherever
                    # it sits (a stream reports it once; see transforms.state.keyed).
                    lost=f"{url}\x1f{entry_title}" if url or entry_title else "",
                )
            )
            continue
        entries.append(_entry(raw, link, position, feed, title, polled_at))
    return ParsedFeed(title, tuple(entries), tuple(rejected), bozo_reason, bozo_type)


def _entry(raw: Any, link: str, position: int, feed: Feed, feed_title: str | None,
           polled_at: float) -> Entry:
    canonical = canonical_url(link)
    return Entry(
        feed_url=feed.url,
        feed_title=feed_title,
        feed_tags=feed.tags,
        feed_index=feed.index,
        position=position,
        guid=_text(raw.get("id")) or None,
        link=link,
        canonical_url=canonical,
        article_id=article_id(canonical),
        title=_text(raw.get("title")) or None,
        authors=_authors(raw),
        published_at=_utc(raw.get("published_parsed")),
        # `in` first: a plain get() falls back to published_parsed with a DeprecationWarning.
        updated_at=_utc(raw["updated_parsed"]) if "updated_parsed" in raw else None,
        categories=tuple(
            dict.fromkeys(
                term for tag in raw.get("tags") or [] if (term := _text(tag.get("term")))
            )
        ),
        summary=html_to_text(raw.get("summary")) or None,
        full_text=_full_text(raw),
        polled_at=polled_at,
    )


def _entry_link(raw: Any) -> str | None:
    """The entry's article link: `link`, else an alternate link, else a permalink guid."""
    candidates = [raw.get("link")]
    candidates += [
        link.get("href") for link in raw.get("links") or [] if link.get("rel") == "alternate"
    ]
    if raw.get("guidislink"):
        candidates.append(raw.get("id"))
    for candidate in candidates:
        if isinstance(candidate, str):
            candidate = candidate.strip()
            if candidate.lower().startswith(("http://", "https://")):
                return candidate
    return None


def _authors(raw: Any) -> tuple[str, ...]:
    names = [_text(author.get("name")) for author in raw.get("authors") or []]
    if not any(names):
        names = [_text(raw.get("author"))]
    return tuple(dict.fromkeys(name for name in names if name))


def _full_text(raw: Any) -> str:
    """The text of the entry's longest full-content body (content:encoded, atom:content), if it
    is long enough to be the whole article; else ""."""
    bodies = [c.get("value") or "" for c in raw.get("content") or []]
    text = html_to_text(max(bodies, key=len, default=""))
    return text if len(text.split()) >= FULL_TEXT_MIN_WORDS else ""


def _utc(parsed: time.struct_time | None) -> datetime | None:
    """feedparser's *_parsed values are struct_time in UTC; out-of-range ones become None."""
    if not parsed:
        return None
    try:
        return datetime(*parsed[:6], tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str:
    return clean_whitespace(value) if isinstance(value, str) else ""


def _bozo_reason(parsed: Any) -> str:
    exc = parsed.get("bozo_exception")
    return f"{type(exc).__name__}: {exc}" if exc else "ill-formed feed"


def _bozo_type(parsed: Any) -> str:
    exc = parsed.get("bozo_exception")
    return type(exc).__name__ if exc else "Unknown"
