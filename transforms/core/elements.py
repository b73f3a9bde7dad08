"""Element types that flow between newsbeam's stages, and the output record schema.

Every element is defined here and nowhere else, so the stages, the sinks and the tests share one
definition of each. The output contract is `Record.to_dict()` (JSON field names) and
`DeadLetter.to_dict()`; bump `SCHEMA_VERSION` whenever a field of either changes meaning or
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
class Validators:
    """What a feed's server sent to identify the version it served (ETag, Last-Modified), kept
    so the next fetch can be conditional. The same shape is carried by a Feed, emitted by
    FetchFeeds (keyed by feed URL) and kept by the state stores."""

    etag: str | None = None
    last_modified: str | None = None

    def __bool__(self) -> bool:
        return bool(self.etag or self.last_modified)


@dataclasses.dataclass(frozen=True)
class Feed:
    """One configured feed. `index` is its position in the feeds file, for stable ordering;
    `validators` are those of its last full fetch, for a conditional GET; `poll_interval` is
    how often a stream polls it, in seconds (None: the stream's default)."""

    url: str
    name: str | None = None
    tags: tuple[str, ...] = ()
    index: int = 0
    validators: Validators = Validators()
    poll_interval: float | None = None


@dataclasses.dataclass(frozen=True)
class FetchedFeed:
    """A feed body as fetched over HTTP: bytes only, parsing happens in ParseEntries."""

    feed: Feed
    final_url: str
    status: int
    content_type: str
    body: bytes
    fetched_at: datetime
    # What the poll that fetched it tells of the feed's health; parsing adds the entries.
    poll: PollObservation | None = None


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
    full_text: str = ""  # the article's whole text as the feed carried it ("" if it did not)
    polled_at: float | None = None  # when the poll that found it was made (epoch seconds)


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
    extraction_seconds: float = 0.0  # how long extracting it took, in its worker process


class Evidence(NamedTuple):
    """One matched term of a topic: how often it matched, and in which zones of the article."""

    term: str
    # Shadows tuple.count, but "count" is the name in every sink's schema (JSON, Parquet, SQL).
    count: int  # type: ignore[assignment]
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
        return _json_ready(plain_values(self))


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """One failure: which stage, a reason code from `dead_letters.REASONS`, and context.

    `subject` says whether a whole feed ("feed") or one entry ("entry") was lost, so the run
    summary can account for every feed and every entry; `article_id` names the article an
    entry pointed to, when it had a usable link. `id` is the same for the same input lost at
    the same stage, so a retried bundle or a re-run that loses it again adds no second row.
    """

    id: str
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
        """The dead letter as JSON-ready values (`at` as an ISO 8601 UTC string)."""
        return _json_ready(plain_values(self))


# The tag of the fetch and parse stages' output of PollObservation, from which each feed's
# health is kept (transforms/health): the fetch stage's for failed and 304 polls, the parse
# stage's (with the entries) for full answers.
POLLS = "polls"


@dataclasses.dataclass(frozen=True)
class PollObservation:
    """What one poll of a feed answered."""

    feed_url: str
    feed_title: str | None
    polled_at: float  # seconds since the epoch
    outcome: str  # "fetched" (a full answer), "not_modified" (304) or "failed"
    status: int | None = None  # the HTTP status, where there was an answer
    reason: str | None = None  # a failure's dead-letter reason
    response_seconds: float | None = None
    entries: int = 0  # entries in a full answer
    interval: float | None = None  # seconds until the next poll (a stream's), if known
    interval_reason: str = "config"  # "config", "server" (it asked) or "backoff" (failures)


@dataclasses.dataclass(frozen=True)
class Alert:
    """A topic far above its usual level in one run or stream window (transforms/alerts), with
    the articles that made it so. `id` is the topic and the period, so a sink keyed on it
    holds an alert once."""

    id: str
    topic: str
    period: str  # "run", or "window" (of `period_seconds`)
    period_seconds: float | None
    period_end: datetime
    count: int  # records about the topic in the period
    usual_mean: float  # over the same kind of period in the last 30 days
    usual_stdev: float
    threshold: float  # what the count had to exceed
    history_periods: int  # how many periods the usual level is made of
    article_ids: tuple[str, ...]
    article_titles: tuple[str, ...]
    article_urls: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The alert as JSON-ready values (times as ISO 8601 UTC strings)."""
        return _json_ready(plain_values(self))


@dataclasses.dataclass(frozen=True)
class FeedHealthRow:
    """One feed's health as a sink writes it (`--feed-health`): one row per feed, replaced on
    every run or window that polls it (`id` is the feed's URL). See transforms/health/rules.py
    for how it is kept and classed."""

    id: str  # the feed's URL: the row's key
    feed_title: str | None
    health_class: str  # healthy, quiet, failing or dead
    class_reason: str
    updated_at: datetime
    first_polled: datetime
    last_poll: datetime | None
    last_success: datetime | None
    last_200: datetime | None
    last_304: datetime | None
    consecutive_failures: int
    failing_since: datetime | None
    last_status: int | None
    last_failure_reason: str | None
    last_failure_at: datetime | None
    new_articles_day: int
    new_articles_week: int
    last_new_article: datetime | None
    median_entries_per_poll: float | None
    mean_seconds_between_new_articles: float | None
    poll_interval_seconds: float | None
    poll_interval_reason: str  # config, server (it asked) or backoff (failures)
    response_seconds: float | None

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON-ready values (times as ISO 8601 UTC strings)."""
        return _json_ready(plain_values(self))


def plain_values(element: Record | DeadLetter | FeedHealthRow | Alert) -> dict[str, Any]:
    """A record or dead letter as plain values, field by field: lists for tuples, dicts for
    topics and their evidence, times kept as datetimes (for sinks that store times natively)."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(element):
        value = getattr(element, field.name)
        if field.name == "topics":
            value = [tag.to_dict() for tag in value]
        elif isinstance(value, tuple):
            value = list(value)
        values[field.name] = value
    return values


def _json_ready(values: dict[str, Any]) -> dict[str, Any]:
    return {name: format_utc(value) if isinstance(value, datetime) else value
            for name, value in values.items()}


def json_line(element: Record | DeadLetter | FeedHealthRow | Alert) -> str:
    """One record or dead letter as a compact JSON line (non-ASCII kept as is)."""
    return json.dumps(element.to_dict(), ensure_ascii=False, separators=(",", ":"))


def format_utc(value: datetime) -> str:
    """ISO 8601 in UTC with a trailing Z, to the second, e.g. 2023-06-18T02:15:00Z."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: newsbeam keeps every time in UTC")
    return value.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat() + "Z"
