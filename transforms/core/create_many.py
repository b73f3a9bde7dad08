"""CreateMany: a Create for thousands of values, put into the job's graph once.

Beam 2.77's Create encodes each value and pickles the list into the graph three times (the
Create itself, its FlatMap and its MaybeReshuffle), each compressed with bz2 at level 9, and
its first step decodes them one by one: with a large feeds file, a noticeable part of every
run's start on the local runner (benchmarks/README.md, issue 26's fourth stop). Here the
values are pickled once, compressed with a fast zlib level, and given to the one step that
emits them; Beam compresses that small blob once more when it pickles the step.
"""

from __future__ import annotations

import dataclasses
import pickle
import zlib
from collections.abc import Iterator
from typing import Any

import apache_beam as beam

from transforms.core.composite import Composite


def packed(values: tuple[Any, ...]) -> bytes:
    """`values` as one compressed pickle."""
    return zlib.compress(pickle.dumps(values, protocol=pickle.HIGHEST_PROTOCOL), 1)


def unpacked(_: Any, values: bytes) -> Iterator[Any]:
    """The values `packed` packed, one by one."""
    yield from pickle.loads(zlib.decompress(values))


@dataclasses.dataclass(eq=False)
class CreateMany(Composite):
    """Begin -> the given values, as beam.Create(values, reshuffle=False) gives them (in one
    bundle of the runner's, not redistributed), at a fraction of Create's cost in the graph.
    The values must pickle with the standard library's pickle."""

    values: tuple[Any, ...] = dataclasses.field(repr=False)
    element_type: type = object

    def expand(self, begin: beam.pvalue.PBegin) -> beam.PCollection:
        return (begin
                | "Impulse" >> beam.Impulse()
                | "Unpack" >> beam.FlatMap(unpacked, packed(self.values))
                .with_output_types(self.element_type))
