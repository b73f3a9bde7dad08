"""What every stage shares: element types, dead letters and the one way to fail, metrics, URL
identity, text helpers, redaction, and the bases of newsbeam's DoFns and composites."""

from transforms.core.background import BackgroundFn, Place
from transforms.core.composite import Composite
from transforms.core.dead_letters import (
    DEAD_LETTERS,
    EXTRACT_ARTICLES,
    FETCH_FEEDS,
    FETCH_PAGES,
    PARSE_ENTRIES,
    REASONS,
    STAGES,
    TAG_TOPICS,
    TO_RECORDS,
    CollectDeadLetters,
    dead_letter,
    is_permanent,
)
from transforms.core.elements import (
    EXTRACTION_METHODS,
    PUBLISHED_SOURCES,
    SCHEMA_VERSION,
    Article,
    DeadLetter,
    Entry,
    Evidence,
    Feed,
    FetchedFeed,
    Page,
    Record,
    TaggedArticle,
    TopicTag,
    Validators,
    format_utc,
    json_line,
    plain_values,
)
from transforms.core.failures import StageFn, guarded, unexpected_error
from transforms.core.files import matching_paths, read_lines
from transforms.core.identity import article_id, canonical_url
from transforms.core.metrics import NAMESPACE, Tally, count
from transforms.core.redaction import redact
from transforms.core.text import (
    clean_whitespace,
    content_fingerprint,
    html_to_text,
    valid_unicode,
    word_count,
)

__all__ = [
    "Article", "BackgroundFn", "CollectDeadLetters", "Composite", "DEAD_LETTERS", "DeadLetter",
    "EXTRACTION_METHODS", "EXTRACT_ARTICLES", "Entry", "Evidence", "FETCH_FEEDS", "FETCH_PAGES",
    "Feed", "FetchedFeed", "NAMESPACE", "PARSE_ENTRIES", "PUBLISHED_SOURCES", "Page", "Place",
    "REASONS", "Record", "SCHEMA_VERSION", "STAGES", "StageFn", "TAG_TOPICS", "TO_RECORDS",
    "TaggedArticle", "Tally", "TopicTag", "Validators", "article_id", "canonical_url",
    "clean_whitespace", "content_fingerprint", "count", "dead_letter", "format_utc", "guarded",
    "html_to_text", "is_permanent", "json_line", "matching_paths", "plain_values", "read_lines",
    "redact", "unexpected_error", "valid_unicode", "word_count",
]
