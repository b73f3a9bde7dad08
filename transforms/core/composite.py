"""The base of newsbeam's composite transforms."""

from __future__ import annotations

import apache_beam as beam


class Composite(beam.PTransform):
    """A PTransform written as a dataclass (`@dataclasses.dataclass(eq=False)`): its fields are
    its configuration, so constructing one does no I/O and holds nothing unpicklable, and its
    `expand` is a short chain of labelled steps. (eq=False keeps Beam's identity hashing.)"""

    def __post_init__(self) -> None:
        super().__init__()
