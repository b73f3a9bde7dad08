"""JSON Feed (versions 1 and 1.1), read into the same entry shape feedparser produces.

feedparser 6.0 reads RSS and Atom only; this module lets `parse_feed` treat a JSON Feed like any
other feed, so everything after parsing has one path.
"""

from __future__ import annotations

import dataclasses
import email.utils
import html
import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from transforms.core import valid_unicode

JSON_FEED_VERSION_PREFIX = "https://jsonfeed.org/version/"


@dataclasses.dataclass(frozen=True)
class JsonFeed:
    """A JSON Feed's title and items (as feedparser-style dicts), or why it is unusable."""

    title: str | None
    items: list[dict[str, Any]]
    error: str | None = None


def looks_like_json(body: bytes, content_type: str) -> bool:
    """True when the body is meant as JSON: a JSON content type, or a body starting with '{'."""
    return "json" in content_type.lower() or body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")


def parse_json_feed(body: bytes, base_url: str) -> JsonFeed:
    """Read a JSON Feed; relative item URLs resolve against the feed's URL."""
    try:
        document = _valid_strings(json.loads(body.decode("utf-8-sig", errors="replace")))
    except json.JSONDecodeError as exc:
        return JsonFeed(None, [], f"JSONDecodeError: {exc}")
    if not isinstance(document, dict) or not str(document.get("version", "")).startswith(
        JSON_FEED_VERSION_PREFIX
    ):
        return JsonFeed(None, [], "not a JSON Feed: no https://jsonfeed.org/version/ version")
    items = document.get("items")
    if not isinstance(items, list):
        return JsonFeed(_str(document.get("title")), [], "JSON Feed without an 'items' list")
    base = _str(document.get("feed_url")) or base_url
    feed_authors = _authors(document)
    return JsonFeed(
        title=_str(document.get("title")),
        items=[_item(item, base, feed_authors) for item in items if isinstance(item, dict)],
    )


def _valid_strings(value: Any) -> Any:
    """The decoded document with every string valid Unicode (JSON escapes can encode lone
    surrogates, which nothing downstream could write out)."""
    if isinstance(value, str):
        return valid_unicode(value)
    if isinstance(value, list):
        return [_valid_strings(item) for item in value]
    if isinstance(value, dict):
        return {valid_unicode(key): _valid_strings(item) for key, item in value.items()}
    return value


def _item(item: dict[str, Any], base: str, feed_authors: list[dict[str, str]]) -> dict[str, Any]:
    url = _str(item.get("url")) or _str(item.get("external_url"))
    content = _str(item.get("content_html")) or (
        f"<p>{html.escape(text)}</p>" if (text := _str(item.get("content_text"))) else None
    )
    entry: dict[str, Any] = {
        "id": _str(item.get("id")),
        "link": urljoin(base, url) if url else None,
        "title": _str(item.get("title")),
        "authors": _authors(item) or feed_authors,
        "tags": [{"term": t} for t in item.get("tags") or [] if isinstance(t, str)],
        "summary": _str(item.get("summary")),
        "content": [{"value": content}] if content else [],
        "published_parsed": _time(item.get("date_published")),
    }
    updated = _time(item.get("date_modified"))
    if updated is not None:
        entry["updated_parsed"] = updated
    return entry


def _authors(holder: dict[str, Any]) -> list[dict[str, str]]:
    # Version 1.1 has an "authors" list; version 1 had a single "author" object.
    raw = holder.get("authors")
    if not isinstance(raw, list):
        raw = [holder["author"]] if isinstance(holder.get("author"), dict) else []
    return [{"name": name} for a in raw if isinstance(a, dict) and (name := _str(a.get("name")))]


def _time(value: Any) -> time.struct_time | None:
    """An RFC 3339 date as a UTC struct_time, like feedparser's *_parsed values."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        try:  # publishers sometimes put RSS-style dates in JSON feeds
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).timetuple()


def _str(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None
