"""Element types that flow between newsbeam's stages, and the output record schema.

Every element is a frozen dataclass defined here and nowhere else, so the stages, the sinks and the
tests share one definition of each. The output contract is `Record.to_dict()` (JSON field names)
and `DeadLetter.to_dict()`; bump `SCHEMA_VERSION` whenever a field of either changes meaning or
disappears.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any, NamedTuple

SCHEMA_VERSION = 1

# Where a record's published_at came from (see README: "published_source").
PUBLISHED_SOURCES = ("feed", "page", "url", "http", "none")
# Which extraction produced a record's text (see README: "extraction_method").
EXTRACTION_METHODS = ("trafilatura", "trafilatura_recall", "feed")


@dataclasses.dataclass(frozen=True)
class Feed:
    """One configured feed. `index` is its position in the feeds file, for stable ordering;
    `etag` and `last_modified` are the validators of the last fetch, for a conditional GET."""

    url: str
    name: str | None = None
    tags: tuple[str, ...] = ()
    index: int = 0
    etag: str | None = None
    last_modified: str | None = None


@dataclasses.dataclass(frozen=True)
class FeedValidators:
    """The validators a feed's server sent with a full response, to be kept for the next run."""

    feed_url: str
    etag: str | None
    last_modified: str | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class FetchedFeed:
    """A feed body as fetched over HTTP: bytes only, parsing happens in ParseEntries."""

    feed: Feed
    final_url: str
    status: int
    content_type: str
    body: bytes
    fetched_at: datetime


@dataclasses.dataclass(frozen=True)
class Entry:
    """One feed entry with the metadata its feed gave, before its page is fetched."""

    feed_url: str
    feed_title: str | None
    feed_tags: tuple[str, ...]
    feed_index: int
    position: int  # order within the feed, for a deterministic choice among duplicates
    guid: str | None
    link: str
    canonical_url: str
    article_id: str
    title: str | None
    authors: tuple[str, ...]
    published_at: datetime | None
    updated_at: datetime | None
    categories: tuple[str, ...]
    summary: str | None  # plain text
    content_html: str | None  # the entry's full content, when the feed carries it


@dataclasses.dataclass(frozen=True)
class Page:
    """An article page as fetched: the entry it belongs to, and its bytes."""

    entry: Entry
    final_url: str
    status: int
    content_type: str
    body: bytes
    fetched_at: datetime
    last_modified: str | None = None  # the HTTP header, a last resort for the date


@dataclasses.dataclass(frozen=True)
class Article:
    """An extracted article: page text and metadata merged with what the feed said."""

    entry: Entry
    url: str  # the page URL after redirects
    title: str | None
    authors: tuple[str, ...]
    published_at: datetime | None
    published_source: str
    fetched_at: datetime
    language: str | None
    site_name: str | None
    summary: str | None
    text: str
    extraction_method: str = "trafilatura"
    canonical_url: str | None = None  # what the page declares (rel=canonical, og:url)
    image: str | None = None
    paywalled: bool = False


class Evidence(NamedTuple):
    """One matched term of a topic: how often it matched, and in which zones of the article."""

    term: str
    count: int
    zones: tuple[str, ...]  # subset of ("title", "lead", "body"), in that order

    def to_dict(self) -> dict[str, Any]:
        return {"term": self.term, "count": self.count, "zones": list(self.zones)}


class TopicTag(NamedTuple):
    """A topic the tagger assigned: `relevance` is "about" or "mention".

    (NamedTuples rather than dataclasses: the tagger makes many of these per article.)
    """

    name: str
    relevance: str
    score: float
    evidence: tuple[Evidence, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "relevance": self.relevance,
            "score": self.score,
            "evidence": [e.to_dict() for e in self.evidence],
        }


@dataclasses.dataclass(frozen=True)
class TaggedArticle:
    """An article with the topics assigned to it, by the taxonomy of the given version."""

    article: Article
    topics: tuple[TopicTag, ...]
    taxonomy_version: str


@dataclasses.dataclass(frozen=True)
class Record:
    """One enriched article: the pipeline's output. Field names are the JSON contract."""

    id: str
    url: str
    canonical_url: str
    feed_url: str
    feed_title: str | None
    guid: str | None
    title: str | None
    authors: tuple[str, ...]
    published_at: datetime | None
    published_source: str
    fetched_at: datetime
    language: str | None
    site_name: str | None
    summary: str | None
    text: str
    extraction_method: str
    lead_image: str | None
    paywalled: bool
    word_count: int
    topics: tuple[TopicTag, ...]
    taxonomy_version: str
    content_fingerprint: str
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values: lists for tuples, ISO 8601 UTC strings for times."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "topics":
                value = [t.to_dict() for t in value]
            elif isinstance(value, datetime):
                value = format_utc(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[field.name] = value
        return out


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """One failure: which stage, a reason code from `transforms.dead_letters.REASONS`, and context.

    `subject` says whether a whole feed ("feed") or one entry ("entry") was lost, so the run
    summary can account for every feed and every entry; `article_id` names the article an
    entry pointed to, when it had a usable link.
    """

    stage: str
    reason: str
    subject: str
    url: str
    feed_url: str
    error_type: str
    message: str
    at: datetime
    article_id: str = ""  # the entry's article id, when the entry had a usable link

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["at"] = format_utc(self.at)
        return out


def json_line(element: Record | DeadLetter) -> str:
    """One record or dead letter as a compact JSON line (non-ASCII kept as is)."""
    return json.dumps(element.to_dict(), ensure_ascii=False, separators=(",", ":"))


def format_utc(value: datetime) -> str:
    """ISO 8601 in UTC with a trailing Z, to the second, e.g. 2023-06-18T02:15:00Z."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: newsbeam keeps every time in UTC")
    return value.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat() + "Z"
