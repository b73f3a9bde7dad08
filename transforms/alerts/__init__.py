"""Alerts: a topic far above its usual level in a run or a stream window, written as a record
with the articles that made it so (the rule is in rules.py and the README)."""

from typing import TYPE_CHECKING

from transforms import lazy_exports

if TYPE_CHECKING:
    from transforms.alerts.rules import (
        HISTORY as HISTORY,
        MIN_COUNT as MIN_COUNT,
        MIN_PERIODS as MIN_PERIODS,
        Surge as Surge,
        surge as surge,
    )
    from transforms.alerts.track import (
        WatchTopics as WatchTopics,
        alert_tally as alert_tally,
        topic_alerts as topic_alerts,
    )

__getattr__, __all__ = lazy_exports(__name__, __file__)
