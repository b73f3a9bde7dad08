"""Feed health: each feed's polls and articles kept across runs and stream windows, classed
healthy, quiet, failing or dead (the rule is in rules.py and the README)."""

from typing import TYPE_CHECKING

from transforms import lazy_exports

if TYPE_CHECKING:
    from transforms.health.rules import (
        CLASSES as CLASSES,
        FeedHealth as FeedHealth,
        as_row as as_row,
        classify as classify,
        decode as decode,
        encode as encode,
        updated as updated,
    )
    from transforms.health.track import (
        FeedHealthOutputs as FeedHealthOutputs,
        TrackFeedHealth as TrackFeedHealth,
        fold_health as fold_health,
        health_tallies as health_tallies,
        period_key as period_key,
    )

__getattr__, __all__ = lazy_exports(__name__, __file__)
