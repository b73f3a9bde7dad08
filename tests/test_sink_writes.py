"""What the database sinks write and recognise, against the real servers, without a pipeline
run: the rows and columns of a PostgreSQL table (created with its keys, NOT NULLs and indexes),
upserts, which ids a sink holds, Redis entries and their cap, and one-line connection errors."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime

import apache_beam as beam
import psycopg
import pytest
import redis

from tests.conftest import POSTGRES_URI, REDIS_URI
from tests.helpers import test_pipeline
from transforms.core import DeadLetter, Evidence, Record, TopicTag, dead_letter, json_line
from transforms.sinks import SinkError, parse_sink
from transforms.sinks.postgres import (
    WriteToPostgres,
    _connect,
    _first_line,
    _WriteBatches,
    prepare_table,
    present_in_table,
    write_batch,
)
from transforms.sinks.redis_stream import (
    WriteToRedisStream,
    _Append,
    check_stream,
    ids_key,
    present_in_stream,
    stream_fields,
)

AT = datetime(2025, 3, 4, 8, 0, tzinfo=UTC)
TOPIC = TopicTag("trade", "about", 2.5, (Evidence("tariff", 3, ("title", "body")),))


def _record(n: int, title: str = "Tariffs rise") -> Record:
    return Record(
        id=f"{n:032x}", url=f"https://news.example/{n}", canonical_url=f"https://news.example/{n}",
        feed_url="https://news.example/feed", feed_title=None, guid=None, title=title,
        authors=("A. Writer",), published_at=AT, published_source="feed", fetched_at=AT,
        language="en", site_name=None, summary=None, text="Tariffs rise again.",
        extraction_method="trafilatura", lead_image=None, paywalled=False, word_count=3,
        topics=(TOPIC,), taxonomy_version="v1", content_fingerprint="sha256:x")


@pytest.fixture
def table(postgres_uri: str) -> Iterator[str]:
    name = postgres_uri.split("table_prefix=")[1] + "articles"
    yield name
    with psycopg.connect(POSTGRES_URI, autocommit=True) as connection:
        connection.execute(f"DROP TABLE IF EXISTS {name}")


def _sink(table: str):  # noqa: ANN202
    return parse_sink(f"{POSTGRES_URI}?table={table}", default_table="x")


def test_a_record_table_is_created_with_its_keys_and_indexes(table: str) -> None:
    prepare_table(_sink(table), Record)
    with psycopg.connect(POSTGRES_URI) as connection:
        nullable = dict(connection.execute(
            "SELECT column_name, is_nullable FROM information_schema.columns"
            " WHERE table_name = %s", (table,)).fetchall())
        indexes = {row[0] for row in connection.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s", (table,)).fetchall()}
    assert (nullable["id"], nullable["url"], nullable["title"]) == ("NO", "NO", "YES")
    assert indexes == {f"{table}_pkey", f"{table}_published_at", f"{table}_topic_names"}
    prepare_table(_sink(table), Record)  # a second time: found, checked, left alone


def test_a_dead_letter_table_has_no_record_indexes(table: str) -> None:
    prepare_table(_sink(table), DeadLetter)
    with psycopg.connect(POSTGRES_URI) as connection:
        indexes = {row[0] for row in connection.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s", (table,)).fetchall()}
    assert indexes == {f"{table}_pkey"}


def test_records_are_upserted_with_topics_as_json_and_their_names(table: str) -> None:
    sink = _sink(table)
    prepare_table(sink, Record)
    with _connect(sink) as connection:
        write_batch(connection, table, [_record(1), _record(2)], Record)
        write_batch(connection, table, [_record(1, "Tariffs rise — again"), _record(1, "x")],
                    Record)  # one id twice in a batch: one row
    with psycopg.connect(POSTGRES_URI) as connection:
        rows = connection.execute(
            f"SELECT id, title, topics, topic_names, authors FROM {table} ORDER BY id").fetchall()
    assert [row[0] for row in rows] == [f"{1:032x}", f"{2:032x}"]
    assert rows[0][1] in ("Tariffs rise — again", "x") and rows[1][1] == "Tariffs rise"
    assert rows[1][2] == [{"name": "trade", "relevance": "about", "score": 2.5,
                           "evidence": [{"term": "tariff", "count": 3,
                                         "zones": ["title", "body"]}]}]
    assert (rows[1][3], rows[1][4]) == (["trade"], ["A. Writer"])
    assert present_in_table(sink, [f"{1:032x}", f"{3:032x}"]) == {f"{1:032x}"}


def test_the_composite_writes_every_element_in_batches(table: str) -> None:
    sink = _sink(table)
    prepare_table(sink, Record)
    with test_pipeline() as pipeline:
        _ = pipeline | beam.Create([_record(n) for n in range(5)]) | WriteToPostgres(sink)
    assert present_in_table(sink, [f"{n:032x}" for n in range(6)]) == {
        f"{n:032x}" for n in range(5)}


def test_an_unreachable_database_is_one_line_naming_the_sink() -> None:
    sink = parse_sink("postgresql://u:secret@127.0.0.1:1/news?table=t", default_table="x")
    with pytest.raises(SinkError) as refused:
        _connect(sink)
    message = str(refused.value)
    assert message.startswith("sink postgresql://u:***@127.0.0.1:1/news?table=t: cannot"
                              " connect: ")
    assert "\n" not in message and "secret" not in message
    assert "refused" in message.removeprefix("sink postgresql://u:***@127.0.0.1:1/news?table=t")


def test_an_error_is_told_by_its_first_line_or_else_its_kind() -> None:
    assert _first_line(OSError("connection refused\n\tIs the server running?")) == (
        "connection refused")
    assert _first_line(TimeoutError()) == "TimeoutError"


def test_the_sinks_steps_keep_their_names() -> None:
    # A running stream is updated step by step, by name (Dataflow's --update): renaming a
    # step breaks that, so the names are part of the contract.
    sink = _sink("articles")
    stream = parse_sink(f"{REDIS_URI}?stream=s", default_table="x")
    pipeline = test_pipeline()
    records = pipeline | "Records" >> beam.Create([_record(1)])
    _ = records | "ToPostgres" >> WriteToPostgres(sink)
    _ = records | "ToRedis" >> WriteToRedisStream(stream)
    names = {transform.unique_name
             for transform in pipeline.to_runner_api().components.transforms.values()}
    assert {"ToPostgres/Batch", "ToPostgres/Upsert", "ToRedis/Batch", "ToRedis/Append"} <= names


@dataclasses.dataclass(frozen=True)
class _Letterish:
    article_id: str

    def to_dict(self) -> dict[str, str]:
        return {"article_id": self.article_id}


def test_a_stream_entry_carries_the_id_or_the_article_id_and_the_json() -> None:
    record = _record(7)
    assert stream_fields(record) == {"id": record.id, "record": json_line(record)}
    assert stream_fields(_Letterish("a9"))["id"] == "a9"
    letter = dead_letter("fetch_pages", "timeout", subject="entry", url="u", feed_url="f",
                         message="m", article_id="a1")
    assert stream_fields(letter)["id"] == letter.id  # a letter's own id comes first


def test_a_stream_knows_the_ids_it_appended_and_is_capped(redis_stream: str) -> None:
    sink = parse_sink(f"{REDIS_URI}?stream={redis_stream}&maxlen=10", default_table="x")
    check_stream(sink)
    append = _Append(sink)
    append.setup()
    try:
        for start in range(0, 600, 100):
            list(append.process([_record(n) for n in range(start, start + 100)]))
    finally:
        append.teardown()
        assert append._client is None  # closed
        append.teardown()  # a second teardown is harmless
    client = redis.Redis.from_url(REDIS_URI)
    try:
        # Approximate trimming: Redis drops whole nodes of entries, so about maxlen are left.
        assert client.xlen(redis_stream) < 200
        assert client.zcard(ids_key(redis_stream)) == 20  # twice maxlen
    finally:
        client.close()
    assert present_in_stream(sink, [f"{599:032x}", f"{0:032x}"]) == {f"{599:032x}"}
    assert present_in_stream(sink, []) == set()


def test_the_redis_composite_appends_every_element(redis_stream: str) -> None:
    sink = parse_sink(f"{REDIS_URI}?stream={redis_stream}&maxlen=100", default_table="x")
    with test_pipeline() as pipeline:
        _ = pipeline | beam.Create([_record(n) for n in range(5)]) | WriteToRedisStream(sink)
    assert present_in_stream(sink, [f"{n:032x}" for n in range(6)]) == {
        f"{n:032x}" for n in range(5)}


def test_an_unreachable_redis_is_one_line_naming_the_sink() -> None:
    sink = parse_sink("redis://127.0.0.1:1/0?stream=s", default_table="x")
    with pytest.raises(SinkError, match=r"^sink redis://127\.0\.0\.1:1/0\?stream=s: cannot"
                                        r" reach Redis: "):
        check_stream(sink)


def test_a_connection_lost_while_writing_fails_naming_the_sink(table: str) -> None:
    sink = _sink(table)
    prepare_table(sink, Record)
    write = _WriteBatches(sink, Record)
    write.setup()
    try:
        pid = write._connection.info.backend_pid
        with psycopg.connect(POSTGRES_URI, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(SinkError) as lost:
            list(write.process([_record(1)]))
    finally:
        write.teardown()
    assert str(lost.value).startswith(f"sink {sink.shown}: lost the connection while writing: ")
    assert "terminating connection" in str(lost.value)  # the server's own words
    assert "\n" not in str(lost.value)
    assert write._connection is None  # torn down
