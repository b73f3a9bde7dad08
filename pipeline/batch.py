"""The batch graph: one pass over every configured feed, read top to bottom like the data flow."""

from __future__ import annotations

import dataclasses

import apache_beam as beam

from transforms.dead_letters import CollectDeadLetters
from transforms.dedup import DedupEntries
from transforms.extract import ExtractArticles
from transforms.feeds import FetchFeeds, ParseEntries
from transforms.http import HttpSettings
from transforms.pages import FetchPages
from transforms.records import Feed
from transforms.sinks import WriteDeadLetters, WriteRecords
from transforms.to_records import ToRecords
from transforms.topics import TagTopics, Taxonomy


@dataclasses.dataclass(frozen=True)
class BatchOutputs:
    """The two PCollections every run produces, for sinks and for tests to assert on."""

    records: beam.PCollection
    dead_letters: beam.PCollection


def build_batch(
    pipeline: beam.Pipeline,
    feeds: tuple[Feed, ...],
    taxonomy: Taxonomy,
    http: HttpSettings,
    out: str,
) -> BatchOutputs:
    """Add the batch job to `pipeline`, writing records and dead letters under `out`."""
    fetched = pipeline | "Feeds" >> beam.Create(feeds) | "FetchFeeds" >> FetchFeeds(http)
    parsed = fetched.feeds | "ParseEntries" >> ParseEntries()
    entries = parsed.entries | "DedupEntries" >> DedupEntries()
    pages = entries | "FetchPages" >> FetchPages(http)
    articles = pages.pages | "ExtractArticles" >> ExtractArticles()
    records = (
        articles.articles
        | "TagTopics" >> TagTopics(taxonomy)
        | "ToRecords" >> ToRecords()
    )
    dead_letters = (
        fetched.dead_letters,
        parsed.dead_letters,
        pages.dead_letters,
        articles.dead_letters,
    ) | "DeadLetters" >> CollectDeadLetters()
    records | "WriteRecords" >> WriteRecords(out)
    dead_letters | "WriteDeadLetters" >> WriteDeadLetters(out)
    return BatchOutputs(records=records, dead_letters=dead_letters)
