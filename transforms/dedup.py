"""Canonical URLs, stable article ids, and DedupEntries.

An article is identified by its canonical URL, so the same story linked from two feeds, or twice
from one feed with different tracking parameters, is fetched and written once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import apache_beam as beam

from transforms.metrics import count
from transforms.records import Entry
from transforms.state import LOOKUP_BATCH, StateStore, open_state

# Query parameters that identify a campaign or a click, never the article.
TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "ttclid",
    "igshid", "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok", "oly_anon_id",
    "oly_enc_id", "vero_id", "wickedid", "rb_clickid", "s_cid", "cmpid", "ocid", "ncid",
    "sr_share", "smid", "at_medium", "at_campaign",
})
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_")

DEFAULT_PORTS = {"http": 80, "https": 443}


def is_tracking_param(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def canonical_url(url: str) -> str:
    """The URL an article is known by.

    Lower-case scheme and host, no default port, no fragment, no user info, no tracking
    parameters; the remaining query parameters sorted (blank values kept); an empty path is "/".
    The path keeps its case: servers treat it as case-sensitive.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    query = sorted(
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if not is_tracking_param(name)
    )
    return urlunsplit((scheme, netloc, parts.path or "/", urlencode(query), ""))


def article_id(canonical: str) -> str:
    """A stable 128-bit id (32 hex digits) for an article, from its canonical URL."""
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def first_of_duplicates(entries: Iterable[Entry]) -> tuple[Entry, int]:
    """The entry to keep among entries sharing an id, and how many duplicates were dropped.

    The earliest feed in the feeds file wins, then the earliest position in that feed, so the
    choice does not depend on the order the runner delivers elements in.
    """
    ordered = sorted(entries, key=lambda e: (e.feed_index, e.position, e.feed_url))
    return ordered[0], len(ordered) - 1


class _KeepFirst(beam.DoFn):
    def process(self, element: tuple[str, Iterable[Entry]]) -> Iterator[Entry]:
        _, entries = element
        kept, duplicates = first_of_duplicates(entries)
        if duplicates:
            count("entries.duplicate", duplicates)
        yield kept


class _SkipSeen(beam.DoFn):
    """Drop entries whose article an earlier run already wrote (looked up in batches)."""

    def __init__(self, state_uri: str) -> None:
        self.state_uri = state_uri
        self._store: StateStore | None = None

    def setup(self) -> None:
        self._store = open_state(self.state_uri)

    def teardown(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def process(self, batch: list[Entry]) -> Iterator[Entry]:
        assert self._store is not None
        seen = self._store.seen([entry.article_id for entry in batch])
        if seen:
            count("entries.seen_before", sum(1 for e in batch if e.article_id in seen))
        yield from (entry for entry in batch if entry.article_id not in seen)


class DedupEntries(beam.PTransform):
    """One entry per article id: the first within the run, and none an earlier run wrote.

    Duplicates within the run are counted as `entries.duplicate`, articles seen in earlier runs
    (per the state store at `state_uri`; None to skip that check) as `entries.seen_before`.
    """

    def __init__(self, state_uri: str | None = None) -> None:
        super().__init__()
        self.state_uri = state_uri

    def expand(self, entries: beam.PCollection) -> beam.PCollection:
        unique = (
            entries
            | "KeyByArticleId" >> beam.Map(lambda entry: (entry.article_id, entry))
            | "GroupById" >> beam.GroupByKey()
            | "KeepFirst" >> beam.ParDo(_KeepFirst())
        )
        if self.state_uri is None:
            return unique
        return (
            unique
            # Fixed-size batches: adaptive batching starts at one element, one query each.
            | "Batch" >> beam.BatchElements(min_batch_size=LOOKUP_BATCH,
                                            max_batch_size=LOOKUP_BATCH)
            | "SkipSeen" >> beam.ParDo(_SkipSeen(self.state_uri))
        )
