"""Reason codes and the one way to build a dead letter.

A dead letter is data, not an exception: every feed or entry the pipeline cannot turn into a
record becomes one `DeadLetter` with a short reason code from `REASONS`, so a user can count,
filter and alert on them.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from transforms.core.elements import DeadLetter
from transforms.core.redaction import mask_userinfo

# The tag of every stage's dead-letter output (ParDo(...).with_outputs(DEAD_LETTERS, ...)).
DEAD_LETTERS = "dead_letters"

# Stage names, as written into dead letters; they match the pipeline's stage labels.
FETCH_FEEDS = "fetch_feeds"
PARSE_ENTRIES = "parse_entries"
FETCH_PAGES = "fetch_pages"
EXTRACT_ARTICLES = "extract_articles"
TAG_TOPICS = "tag_topics"
TO_RECORDS = "to_records"

STAGES = (FETCH_FEEDS, PARSE_ENTRIES, FETCH_PAGES, EXTRACT_ARTICLES, TAG_TOPICS, TO_RECORDS)

REASONS: dict[str, str] = {
    # HTTP layer (feeds and pages alike)
    "invalid_url": "the URL is not an absolute http(s) URL",
    "blocked_address": "the host resolves to a private, loopback or reserved address",
    "dns_error": "the host name could not be resolved",
    "connection_error": "the connection failed or was reset",
    "timeout": "connect, read or overall deadline exceeded",
    "http_status": "the server answered with an error status",
    "too_many_redirects": "more redirects than allowed, or a redirect loop",
    "too_large": "the body exceeded the size cap",
    "bad_content_type": "the content type is not one this stage accepts",
    "bad_encoding": "the body's Content-Encoding could not be decoded",
    # feeds
    "feed_unparseable": "the feed could not be parsed into any entry",
    "feed_empty": "the feed parsed but has no entries",
    "entry_without_link": "the entry has no usable http(s) link to an article",
    "feed_parse_timeout": "parsing the feed took longer than the time limit",
    "feed_parse_crashed": "the worker process parsing the feed died (memory, a native crash)",
    # pages and articles
    "robots_disallowed": "the site's robots.txt disallows fetching the page",
    "empty_extraction": "no article text could be extracted from the page",
    "extraction_error": "the extractor failed on this page",
    "extraction_timeout": "extracting the page took longer than the time limit",
    "extraction_crashed": "the extraction worker process died (memory, a native crash)",
    # records
    "unwritable_text": "a field of the record holds text no sink can encode (a lone surrogate)",
    # anything we did not foresee: still accounted for, never a crashed bundle
    "unexpected_error": "an unexpected error; see error_type and message",
}

SUBJECTS = ("feed", "entry")

def dead_letter(
    stage: str,
    reason: str,
    *,
    subject: str,
    url: str,
    feed_url: str,
    message: str,
    error_type: str = "",
    article_id: str = "",
    lost: str = "",
    at: datetime | None = None,
) -> DeadLetter:
    """Build a dead letter, refusing unknown stages, reasons and subjects (they are a contract).
    `lost` names what was lost where there is no article id (an entry without a link: its
    link and title); it keys the dead letter's id in place of the URL."""
    if stage not in STAGES:
        raise ValueError(f"unknown dead-letter stage {stage!r}")
    if reason not in REASONS:
        raise ValueError(f"unknown dead-letter reason {reason!r}")
    if subject not in SUBJECTS:
        raise ValueError(f"unknown dead-letter subject {subject!r}")
    # A private feed's credentials stay out of the dead letters, even where an error's
    # message quotes the URL.
    url, feed_url = mask_userinfo(url), mask_userinfo(feed_url)
    message = mask_userinfo(_one_line(message))
    return DeadLetter(
        id=letter_id(stage, subject, feed_url, article_id or lost or url or message),
        stage=stage,
        reason=reason,
        subject=subject,
        url=url,
        feed_url=feed_url,
        error_type=error_type,
        message=message,
        at=at or datetime.now(UTC),
        article_id=article_id,
    )


# Failures that will not go away by asking again: the article is remembered in the state like a
# written one, so scheduled runs do not request a dead page every few minutes. Timeouts,
# connection errors, 5xx and 429 are transient and retried by the next run.
PERMANENT_REASONS = frozenset({
    "invalid_url", "blocked_address", "too_many_redirects", "too_large", "bad_content_type",
    "bad_encoding", "empty_extraction", "extraction_error", "robots_disallowed",
})
_TRANSIENT_STATUSES = frozenset({"HTTP 408", "HTTP 425", "HTTP 429"})


def is_permanent(letter: DeadLetter) -> bool:
    """True when retrying the same article later is pointless (see PERMANENT_REASONS)."""
    return is_permanent_reason(letter.reason, letter.error_type)


def is_permanent_reason(reason: str, error_type: str) -> bool:
    """is_permanent, for a dead letter read back from a sink: its reason and error type."""
    if reason == "http_status":
        return error_type.startswith("HTTP 4") and error_type not in _TRANSIENT_STATUSES
    return reason in PERMANENT_REASONS


# A feed whose parsing did not finish: its next poll should ask for it in full again, not
# conditionally (the same body may well parse next time), so its validators are not kept.
_UNFINISHED_PARSE = frozenset({"feed_parse_timeout", "feed_parse_crashed", "unexpected_error"})


def is_unfinished_parse(letter: DeadLetter) -> bool:
    """True for the dead letter of a feed whose parsing timed out, crashed or raised."""
    return (letter.stage == PARSE_ENTRIES and letter.subject == "feed"
            and letter.reason in _UNFINISHED_PARSE)


def letter_id(stage: str, subject: str, feed_url: str, lost: str) -> str:
    """The key of a dead letter: what was lost (an article id, else what names an entry without
    one, else a URL, else the message), where, and at which stage (32 hex digits)."""
    key = "\x1f".join((stage, subject, feed_url, lost))
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:32]


def _one_line(message: str, limit: int = 500) -> str:
    flat = " ".join(message.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
