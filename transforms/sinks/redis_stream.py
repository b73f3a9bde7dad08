"""The Redis sink: each record appended to a stream, for live consumers.

Entries carry the record's id in their own field (consumers can drop what they have seen, since
a re-run may append a record again) and the record as JSON; the stream is capped at about
`maxlen` entries (approximate trimming, which Redis does cheaply).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import apache_beam as beam

from transforms.core import Composite, json_line
from transforms.sinks.postgres import batches
from transforms.sinks.uris import Sink, SinkError

BATCH_SIZE = 500


def _client(sink: Sink) -> Any:
    import redis  # imported here: only runs that write to Redis need the client

    return redis.Redis.from_url(sink.target, socket_connect_timeout=10, socket_timeout=30)


def check_stream(sink: Sink) -> None:
    """Fail fast, with one line, when the server cannot be reached or refuses us."""
    import redis

    try:
        _client(sink).ping()
    except redis.RedisError as exc:
        raise SinkError(f"sink {sink.shown}: cannot reach Redis: {exc}") from None


def stream_fields(element: Any) -> dict[str, str]:
    """The fields of one stream entry: the id (empty for dead letters) and the JSON."""
    return {"id": getattr(element, "id", "") or getattr(element, "article_id", ""),
            "record": json_line(element)}


@dataclasses.dataclass(eq=False)
class _Append(beam.DoFn):
    sink: Sink
    _client: Any = dataclasses.field(default=None, init=False, repr=False)

    def setup(self) -> None:
        self._client = _client(self.sink)

    def teardown(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def process(self, batch: list[Any]) -> Iterator[int]:
        pipe = self._client.pipeline(transaction=False)
        for element in batch:
            pipe.xadd(self.sink.stream, stream_fields(element), maxlen=self.sink.maxlen,
                      approximate=True)
        pipe.execute()
        yield len(batch)


@dataclasses.dataclass(eq=False)
class WriteToRedisStream(Composite):
    """Append every element to the sink's Redis stream, in pipelined batches."""

    sink: Sink

    def expand(self, elements: beam.PCollection) -> beam.PCollection:
        return (
            elements
            | "Batch" >> batches(BATCH_SIZE)
            | "Append" >> beam.ParDo(_Append(self.sink))
        )
