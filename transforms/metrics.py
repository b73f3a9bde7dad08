"""Beam counters under one namespace: the run summary is built from them.

Counter names are dotted: `feeds.fetched`, `entries.parsed`, `entries.duplicate`,
`records.written`, `topics.<name>`, `dead_letters.<stage>.<reason>` and so on.
"""

from __future__ import annotations

from apache_beam.metrics import Metrics

NAMESPACE = "newsbeam"


def count(name: str, n: int = 1) -> None:
    """Add `n` to the counter `name` (must be called inside a running DoFn)."""
    Metrics.counter(NAMESPACE, name).inc(n)
