"""Beam counters under one namespace, for monitoring and for the run summary.

Counter names are dotted: `feeds.fetched`, `feeds.not_modified`, `feeds.dead_letter`,
`feeds.ill_formed_kept.<error type>`, `entries.parsed`, `entries.duplicate`,
`entries.seen_before`, `entries.dead_letter`, `pages.fetched`, `pages.feed_fallback.<reason>`,
`robots.fetched`, `extraction.<method>`, `records.output`, `topics.<name>.<relevance>` and
`dead_letters.<stage>.<reason>`.
"""

from __future__ import annotations

from typing import NamedTuple

from apache_beam.metrics import Metrics

NAMESPACE = "newsbeam"


class Tally(NamedTuple):
    """A count a stage's work produced, output like any other result of that work: the stage
    adapter turns it into a counter increment only when the element's work succeeded, so an
    element that fails half-way is not counted twice (once as done, once as a dead letter)."""

    name: str
    n: int = 1


def count(name: str, n: int = 1) -> None:
    """Add `n` to the counter `name` (must be called on the thread running the bundle)."""
    Metrics.counter(NAMESPACE, name).inc(n)
