"""ToRecords: the one place the output record is built."""

from __future__ import annotations

import apache_beam as beam

from transforms.metrics import count
from transforms.records import Record, TaggedArticle
from transforms.text import content_fingerprint, word_count


def build_record(tagged: TaggedArticle) -> Record:
    """The output record of a tagged article (see README, "Record schema")."""
    article = tagged.article
    entry = article.entry
    return Record(
        id=entry.article_id,
        url=article.url,
        # The page's own canonical URL when it declares one for its site; the id stays the
        # feed link's, which is known before the page is fetched.
        canonical_url=article.canonical_url or entry.canonical_url,
        feed_url=entry.feed_url,
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


def _counted(tagged: TaggedArticle) -> Record:
    record = build_record(tagged)
    count("records.output")
    for topic in record.topics:
        count(f"topics.{topic.name}.{topic.relevance}")
    return record


class ToRecords(beam.PTransform):
    """TaggedArticle -> Record, counting records and topics for the run summary."""

    def expand(self, tagged: beam.PCollection) -> beam.PCollection:
        return tagged | "Build" >> beam.Map(_counted)
