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


class DedupEntries(beam.PTransform):
    """Keep one entry per article id within the run; count the rest as duplicates."""

    def expand(self, entries: beam.PCollection) -> beam.PCollection:
        return (
            entries
            | "KeyByArticleId" >> beam.Map(lambda entry: (entry.article_id, entry))
            | "GroupById" >> beam.GroupByKey()
            | "KeepFirst" >> beam.ParDo(_KeepFirst())
        )
