"""ToRecords: the one place the output record is built."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import apache_beam as beam

from transforms.core import (
    DEAD_LETTERS,
    TALLIES,
    TO_RECORDS,
    Composite,
    Measure,
    Record,
    StageFn,
    TaggedArticle,
    Tally,
    content_fingerprint,
    dead_letter,
    mask_userinfo,
    word_count,
)


class UnwritableTextError(ValueError):
    """A record field holds text no UTF-8 encoder takes: no sink could write the record."""


def build_record(tagged: TaggedArticle) -> Record:
    """The output record of a tagged article (see README, "Record schema");
    UnwritableTextError if no sink could write it."""
    article = tagged.article
    entry = article.entry
    record = Record(
        id=entry.article_id,
        # A private feed's credentials (https://user:token@host/...) stay out of records.
        url=mask_userinfo(article.url),
        # The page's own canonical URL when it declares one for its site; the id stays the
        # feed link's, which is known before the page is fetched.
        canonical_url=mask_userinfo(article.canonical_url or entry.canonical_url),
        feed_url=mask_userinfo(entry.feed_url),
        feed_title=entry.feed_title,
        guid=entry.guid,
        title=article.title,
        authors=article.authors,
        published_at=article.published_at,
        published_source=article.published_source,
        fetched_at=article.fetched_at,
        language=article.language,
        site_name=article.site_name,
        summary=article.summary,
        text=article.text,
        extraction_method=article.extraction_method,
        lead_image=article.image,
        paywalled=article.paywalled,
        word_count=word_count(article.text),
        topics=tagged.topics,
        taxonomy_version=tagged.taxonomy_version,
        content_fingerprint=content_fingerprint(article.text),
    )
    _check_writable(record)
    return record


def _check_writable(record: Record) -> None:
    """Refuse a record with a string no UTF-8 encoder takes (a lone surrogate): every sink
    would fail on it, and a file sink would fail the whole run rather than this one record."""
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        for text in value if isinstance(value, tuple) else (value,):
            if isinstance(text, str) and not text.isascii():
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError as error:
                    raise UnwritableTextError(
                        f"field {field.name!r} is not valid Unicode (a lone surrogate at"
                        f" {error.start})") from None


class _ToRecordFn(StageFn):
    stage = TO_RECORDS

    def handle(self, tagged: TaggedArticle) -> Iterator[Any]:
        try:
            record = build_record(tagged)
        except UnwritableTextError as error:  # foreseen: a dead letter with its own reason
            entry = tagged.article.entry
            yield beam.pvalue.TaggedOutput(DEAD_LETTERS, dead_letter(
                TO_RECORDS, "unwritable_text", subject="entry", url=entry.link,
                feed_url=entry.feed_url, message=str(error), error_type=type(error).__name__,
                article_id=entry.article_id))
            return
        yield Tally("records.output")
        polled_at = tagged.article.entry.polled_at
        if polled_at is not None:
            lag = max(0.0, time.time() - polled_at)
            yield Measure("records.poll_to_record_ms", round(lag * 1000))
        for topic in record.topics:
            yield Tally(f"topics.{topic.name}.{topic.relevance}")
        yield record


@dataclasses.dataclass(eq=False)
class ToRecords(Composite):
    """TaggedArticle -> Record (main) and DeadLetter (`dead_letters`), counting records and
    topics for the run summary."""

    def expand(self, tagged: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        return tagged | "Build" >> beam.ParDo(_ToRecordFn()).with_outputs(
            DEAD_LETTERS, TALLIES, main="records"
        )
