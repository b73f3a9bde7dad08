"""Durations as people write them on a command line or in a feeds file: 90s, 5m, 1h30m, 7d."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in a duration such as "90s", "5m", "1h30m", "7d" or a bare number of seconds;
    ValueError for anything else, zero or negative."""
    value = text.strip().lower()
    try:
        seconds = float(value)
    except ValueError:
        parts = _PART.findall(value)
        if not parts or "".join(number + unit for number, unit in parts) != value:
            raise ValueError(
                f"{text!r} is not a duration (write it like 90s, 5m, 1h30m or 7d)") from None
        seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if not seconds > 0:
        raise ValueError(f"{text!r}: a duration must be more than zero")
    return seconds


def format_duration(seconds: float) -> str:
    """A duration the way parse_duration reads it ("1h30m", "45s")."""
    remaining = int(round(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if remaining >= size:
            parts.append(f"{remaining // size}{unit}")
            remaining %= size
    return "".join(parts) or "0s"
