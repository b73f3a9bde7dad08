"""GatherOnce: everything a run (or a stream window) produced into one group, once what it
must wait for is complete: for a step that reads and writes the state store once per run or
window rather than once per element."""

from __future__ import annotations

import dataclasses
from typing import Any

import apache_beam as beam

from transforms.core.composite import Composite


def _nothing(_: Any) -> None:
    return None


@dataclasses.dataclass(eq=False)
class GatherOnce(Composite):
    """(elements, *outputs to wait for) -> one ("", elements) per run, or per window of the
    elements; the outputs waited for add a None each to the group (and hold it back until they
    are complete), which the step after skips. With `gathered` > 1, the first `gathered`
    inputs are all elements: one Flatten for them all, where a Flatten of each step's own
    would be a stage of its own on Beam's runners, reading and writing every element again."""

    gathered: int = 1

    def expand(self, inputs: tuple[beam.PCollection, ...]) -> beam.PCollection:
        elements, after = inputs[:self.gathered], inputs[self.gathered:]
        waits = [done | f"Wait{index}" >> beam.Map(_nothing) for index, done in enumerate(after)]
        return (
            (*elements, *waits)
            | "Together" >> beam.Flatten()
            | "OneKey" >> beam.WithKeys(lambda _: "")
            | "Gather" >> beam.GroupByKey()
        )
