"""Beam counters under one namespace, for monitoring and for the run summary.

Counter names are dotted: `feeds.fetched`, `feeds.not_modified`, `feeds.dead_letter`,
`feeds.ill_formed_kept.<error type>`, `entries.parsed`, `entries.duplicate`,
`entries.seen_before`, `entries.dead_letter`, `pages.fetched`, `pages.feed_fallback.<reason>`,
`robots.fetched`, `extraction.<method>`, `records.output`, `topics.<name>.<relevance>` and
`dead_letters.<stage>.<reason>`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics

NAMESPACE = "newsbeam"
# The tag of every stage's output of tallies, which the run summary adds up.
TALLIES = "tallies"


class Tally(NamedTuple):
    """A count a stage's work produced, output like any other result of that work: only when
    an element's work succeeded does it become a counter increment (for monitoring) and an
    output on the stage's `tallies` (for the run summary), so an element that fails half-way is
    not counted twice (once as done, once as a dead letter)."""

    name: str
    n: int = 1


_counters: dict[str, Metrics.DelegatingCounter] = {}


def count(name: str, n: int = 1) -> None:
    """Add `n` to the counter `name` (must be called on the thread running the bundle)."""
    # A counter finds the running bundle's metrics when it is incremented, so one object per
    # name serves every bundle; making a new one per increment costs more than the increment.
    counter = _counters.get(name)
    if counter is None:
        counter = _counters[name] = Metrics.counter(NAMESPACE, name)
    counter.inc(n)


def emitted(outputs: Iterable[Any]) -> Iterator[Any]:
    """Outputs as Beam takes them: each tally is counted and goes to the `tallies` output, the
    rest passes."""
    for output in outputs:
        if isinstance(output, Tally):
            count(output.name, output.n)
            yield beam.pvalue.TaggedOutput(TALLIES, output)
        else:
            yield output
