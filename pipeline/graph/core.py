"""The stages a batch run and a stream share, from feed bytes to records.

Only the ends differ between the two modes: where feed polls come from (a Create, or a periodic
impulse), where "seen before" lives (the state store, or keyed state: the `dedup` given here),
and how outputs are cut (per run, or per window). Everything in between is this one chain.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import apache_beam as beam

from transforms.core import DEFAULT_ISOLATION, IsolationSettings
from transforms.extract import ExtractArticles
from transforms.feeds import ParseEntries
from transforms.fetch import (
    BATCH_GROUPING,
    DEFAULT_POLITENESS,
    FetchPages,
    Grouping,
    HttpSettings,
    Politeness,
)
from transforms.records import ToRecords
from transforms.topics import TagTopics, Taxonomy


@dataclasses.dataclass(frozen=True)
class CoreConfig:
    """What the shared stages need."""

    taxonomy: Taxonomy
    http: HttpSettings
    politeness: Politeness = DEFAULT_POLITENESS
    isolation: IsolationSettings = DEFAULT_ISOLATION
    # Redistribute fetched pages before extraction: worth it where there is more than one
    # worker process to spread them over (a host's pages are all fetched by one worker).
    spread_extraction: bool = False
    grouping: Grouping = BATCH_GROUPING  # how pages are gathered by host


class Core(NamedTuple):
    """The shared stages' outputs: records, and every stage's dead letters and tallies."""

    records: beam.PCollection
    dead_letters: tuple[beam.PCollection, ...]
    tallies: tuple[beam.PCollection, ...]
    parsed_polls: beam.PCollection  # the poll of each full answer, with its entries (health)


def feed_bytes_to_records(
    fetched_feeds: beam.PCollection, dedup: beam.PTransform, config: CoreConfig
) -> Core:
    """FetchedFeed -> records: parse, `dedup`, fetch pages, extract, tag, build records."""
    parsed = fetched_feeds | "ParseEntries" >> ParseEntries(config.isolation)
    entries = parsed.entries | "DedupEntries" >> dedup
    pages = entries.entries | "FetchPages" >> FetchPages(
        config.http, config.politeness, grouping=config.grouping
    )
    articles = pages.pages | "ExtractArticles" >> ExtractArticles(
        config.isolation, spread=config.spread_extraction
    )
    tagged = articles.articles | "TagTopics" >> TagTopics(config.taxonomy)
    built = tagged.tagged | "ToRecords" >> ToRecords()
    return Core(
        records=built.records,
        dead_letters=(parsed.dead_letters, pages.dead_letters, articles.dead_letters,
                      tagged.dead_letters, built.dead_letters),
        tallies=(parsed.tallies, entries.tallies, pages.tallies, articles.tallies,
                 built.tallies),
        parsed_polls=parsed.polls,
    )
