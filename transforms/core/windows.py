"""How a stream names a firing of one of its windows: in its files' names, and in the state
store's record of the windows committed (so both sides name a firing the same way)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from apache_beam.transforms.window import BoundedWindow
from apache_beam.utils.windowed_value import PaneInfoTiming


def window_span(span: BoundedWindow) -> str:
    """"20261129T134000Z-20261129T135000Z" for a window of ten minutes ("all" for the global
    one)."""
    try:
        start = datetime.fromtimestamp(float(span.start), UTC)
        end = datetime.fromtimestamp(float(span.end), UTC)
    except (AttributeError, OverflowError, OSError, ValueError):
        return "all"
    return f"{start:%Y%m%dT%H%M%SZ}-{end:%Y%m%dT%H%M%SZ}"


def firing_label(span: BoundedWindow, pane: Any, launch: str) -> str:
    """Names one firing of a window by one launch of a stream: "WINDOW[-lateN]-LAUNCH".

    A late firing (elements that reached the window after it closed; N the firing's index) is
    told apart from the on-time one, and so is each launch (its start, a run id): a stream
    drained mid-window and started again within it writes that window twice, and neither
    launch's files may replace the other's.
    """
    late = (f"-late{pane.index}"
            if pane is not None and getattr(pane, "timing", None) == PaneInfoTiming.LATE else "")
    return f"{window_span(span)}{late}-{launch}"
