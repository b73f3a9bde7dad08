"""Beam counters under one namespace, for monitoring and for the run summary.

Counter names are dotted: `feeds.fetched`, `feeds.not_modified`, `feeds.dead_letter`,
`feeds.failed.<reason>`, `feeds.ill_formed_kept.<error type>`, `entries.parsed`,
`entries.duplicate`, `entries.seen_before`, `entries.dead_letter`, `pages.fetched`,
`pages.feed_fallback.<reason>`, `robots.fetched`, `extraction.<method>`, `records.output`,
`topics.<name>.<relevance>` and `dead_letters.<stage>.<reason>`, and `written.<sink>` (records
a sink took). Distributions, in
milliseconds: `extraction.ms` (per page, in the extraction process) and `records.poll_to_record_ms`
(from the poll that found an entry to its record).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics

NAMESPACE = "newsbeam"
# The tag of every stage's output of tallies, which the run summary adds up.
TALLIES = "tallies"
# The tallies of the time spent waiting for a host's turn: politeness.wait_ms.<host>.
WAIT_TALLY = "politeness.wait_ms."


class Tally(NamedTuple):
    """A count a stage's work produced, output like any other result of that work: only when
    an element's work succeeded does it become a counter increment (for monitoring) and an
    output on the stage's `tallies` (for the run summary), so an element that fails half-way is
    not counted twice (once as done, once as a dead letter)."""

    name: str
    n: int = 1


class Measure(NamedTuple):
    """A measurement a stage's work made (milliseconds, say), output like a Tally: it becomes
    an update of the Beam distribution `name` (for monitoring), and nothing else."""

    name: str
    value: int


_counters: dict[str, Metrics.DelegatingCounter] = {}
_distributions: dict[str, Metrics.DelegatingDistribution] = {}


def count(name: str, n: int = 1) -> None:
    """Add `n` to the counter `name` (must be called on the thread running the bundle)."""
    # A counter finds the running bundle's metrics when it is incremented, so one object per
    # name serves every bundle; making a new one per increment costs more than the increment.
    counter = _counters.get(name)
    if counter is None:
        counter = _counters[name] = Metrics.counter(NAMESPACE, name)
    counter.inc(n)


def measure(name: str, value: int) -> None:
    """Add `value` to the distribution `name` (on the thread running the bundle)."""
    distribution = _distributions.get(name)
    if distribution is None:
        distribution = _distributions[name] = Metrics.distribution(NAMESPACE, name)
    distribution.update(value)


def emitted(outputs: Iterable[Any]) -> Iterator[Any]:
    """Outputs as Beam takes them: each tally is counted and goes to the `tallies` output, each
    measure updates its distribution, the rest passes."""
    for output in outputs:
        if isinstance(output, Tally):
            count(output.name, output.n)
            yield beam.pvalue.TaggedOutput(TALLIES, output)
        elif isinstance(output, Measure):
            measure(output.name, output.value)
        else:
            yield output
