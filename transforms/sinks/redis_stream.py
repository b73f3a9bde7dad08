"""The Redis sink: each record appended to a stream, for live consumers.

Entries carry the record's id in their own field and the record as JSON; the stream is capped
at about `maxlen` entries (approximate trimming, which Redis does cheaply). Appends are
idempotent on the id: a script run by the server appends an entry only if its id is not among
the ids the sink appended last (a sorted set beside the stream, `<stream>:ids`, kept to twice
`maxlen`), so a retried bundle, a restarted stream or a re-run does not append a record twice
while it can still be in the stream. Elements without an id are always appended. (Both keys
must be on one node: on Redis Cluster, give the stream a name with a hash tag, `{news}`.)
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam

from transforms.core import Composite, json_line
from transforms.sinks.postgres import batches
from transforms.sinks.uris import Sink, SinkError

BATCH_SIZE = 500

# KEYS: the stream, its id set. ARGV: maxlen, ids kept, now, then (id, JSON) pairs.
_APPEND_ONCE = """
local appended = 0
for i = 4, #ARGV, 2 do
  local id = ARGV[i]
  if id == '' or not redis.call('ZSCORE', KEYS[2], id) then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'id', id, 'record', ARGV[i + 1])
    if id ~= '' then
      redis.call('ZADD', KEYS[2], ARGV[3], id)  -- only once appended: a failed XADD is retried
    end
    appended = appended + 1
  end
end
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[2]) - 1)
return appended
"""


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


def ids_key(stream: str) -> str:
    """The sorted set of the ids a stream's sink appended last."""
    return f"{stream}:ids"


def present_in_stream(sink: Sink, ids: Sequence[str]) -> set[str]:
    """Which of `ids` the sink appended, among the ids it keeps (see the module's docstring)."""
    if not ids:
        return set()
    assert sink.stream is not None
    client = _client(sink)
    try:
        scores = client.zmscore(ids_key(sink.stream), list(ids))
    finally:
        client.close()
    return {article_id for article_id, score in zip(ids, scores, strict=True)
            if score is not None}


def stream_fields(element: Any) -> dict[str, str]:
    """The fields of one stream entry: the element's id (or its article id) and the JSON."""
    return {"id": getattr(element, "id", "") or getattr(element, "article_id", ""),
            "record": json_line(element)}


@dataclasses.dataclass(eq=False)
class _Append(beam.DoFn):
    sink: Sink
    _client: Any = dataclasses.field(default=None, init=False, repr=False)
    _script: Any = dataclasses.field(default=None, init=False, repr=False)

    def setup(self) -> None:
        self._client = _client(self.sink)
        self._script = self._client.register_script(_APPEND_ONCE)

    def teardown(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def process(self, batch: list[Any]) -> Iterator[int]:
        stream = self.sink.stream
        assert stream is not None  # parse_sink requires it for redis URIs
        arguments: list[Any] = [self.sink.maxlen, 2 * self.sink.maxlen, time.time()]
        for element in batch:
            fields = stream_fields(element)
            arguments += [fields["id"], fields["record"]]
        self._script(keys=[stream, ids_key(stream)], args=arguments)
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
