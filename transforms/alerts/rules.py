"""When a topic's count in a run or window is an alert: above its usual level, the mean of
its counts in the same kind of period over the last HISTORY, by more than SIGMAS standard
deviations, and at least MIN_COUNT articles; judged only once MIN_PERIODS periods make the
usual level (a topic no period mentioned counts 0 in it)."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from datetime import timedelta

HISTORY = timedelta(days=30)
SIGMAS = 3.0
MIN_COUNT = 5
MIN_PERIODS = 10


@dataclasses.dataclass(frozen=True)
class Surge:
    """A count measured against its usual level."""

    count: int
    mean: float
    stdev: float
    threshold: float
    periods: int

    @property
    def alert(self) -> bool:
        return self.periods >= MIN_PERIODS and self.count >= MIN_COUNT and (
            self.count > self.threshold)


def surge(history: Sequence[int], count: int) -> Surge:
    """`count` against the counts of earlier periods, `history` (oldest first)."""
    mean = statistics.fmean(history) if history else 0.0
    stdev = statistics.pstdev(history) if len(history) > 1 else 0.0
    return Surge(count, mean, stdev, mean + SIGMAS * stdev, len(history))
