"""Sinks against the real servers: Parquet files, PostgreSQL upserts, a Redis stream."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import demo
from pipeline.cli import main
from pipeline.demo.loopback import LoopbackServer
from pipeline.job.run_batch import run_batch
from tests.conftest import POSTGRES_URI, REDIS_URI
from transforms.core import SCHEMA_VERSION, DeadLetter
from transforms.sinks import SinkError, parse_sink
from transforms.sinks.postgres import prepare_table
from transforms.sinks.redis_stream import _Append, ids_key
from transforms.sinks.schema import arrow_schema, bigquery_schema
from transforms.topics import load_taxonomy


@pytest.fixture
def site() -> Iterator[LoopbackServer]:
    server = demo.sample_server()
    yield server
    server.stop()


def _run(site: LoopbackServer, out: Path, *flags: str) -> dict:
    options = PipelineOptions(["--allow-private-networks", "--state=none", *flags])
    return run_batch(options, demo.sample_feeds(site), load_taxonomy(), str(out))


def _table(postgres_uri: str, name: str) -> str:
    prefix = postgres_uri.split("table_prefix=")[1]
    return f"{prefix}{name}"


@pytest.mark.slow
def test_parquet_files_carry_the_derived_schema(site: LoopbackServer, tmp_path: Path) -> None:
    folder = tmp_path / "parquet"
    summary = _run(site, tmp_path / "out", f"--sink=parquet:{folder}",
                   f"--sink=jsonl:{tmp_path / 'jsonl'}")
    table = pq.read_table(sorted(folder.glob("articles-*.parquet")))
    assert table.num_rows == summary["entries"]["records"] == 6
    assert table.schema.field("published_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("topics").type == arrow_schema().field("topics").type
    rows = {row["title"]: row for row in table.to_pylist()}
    seed = rows["Blinken meets China's Qin Gang in Beijing"]
    assert sorted(t["name"] for t in seed["topics"]) == ["fentanyl", "taiwan", "trade"]
    assert seed["published_at"].isoformat() == "2023-06-18T03:40:00+00:00"
    assert len(list((tmp_path / "jsonl").glob("articles-*.jsonl"))) == 1  # every sink fed


@pytest.mark.slow
def test_postgres_upserts_leave_the_same_rows_on_a_second_run(
    site: LoopbackServer, tmp_path: Path, postgres_uri: str
) -> None:
    table = _table(postgres_uri, "articles")
    letters = _table(postgres_uri, "dead_letters")
    sink = f"{POSTGRES_URI}?table={table}"
    first = _run(site, tmp_path / "a", f"--sink={sink}",
                 f"--dead-letters={POSTGRES_URI}?table={letters}")
    with psycopg.connect(POSTGRES_URI) as connection:
        rows = connection.execute(f"SELECT id, topic_names, topics, schema_version, published_at"
                                  f" FROM {table} ORDER BY id").fetchall()
        assert len(rows) == first["entries"]["records"] == 6
        assert all(row[3] == SCHEMA_VERSION and row[2] is not None for row in rows)
        assert any(sorted(row[1]) == ["fentanyl", "taiwan", "trade"] for row in rows)
        assert connection.execute(f"SELECT count(*) FROM {letters}").fetchone()[0] == 3
        indexes = {r[0] for r in connection.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s", (table,)).fetchall()}
        assert {f"{table}_published_at", f"{table}_topic_names"} <= indexes
    _run(site, tmp_path / "b", f"--sink={sink}", f"--dead-letters={POSTGRES_URI}?table={letters}")
    with psycopg.connect(POSTGRES_URI) as connection:
        again = connection.execute(f"SELECT id FROM {table} ORDER BY id").fetchall()
        # The same three failures again: the same keys, so no second row for any of them.
        assert connection.execute(f"SELECT count(*) FROM {letters}").fetchone()[0] == 3
    assert [r[0] for r in again] == [r[0] for r in rows]


def test_a_dead_letter_table_without_keys_is_refused_with_its_migration(
    postgres_uri: str,
) -> None:
    table = _table(postgres_uri, "old_letters")
    with psycopg.connect(POSTGRES_URI, autocommit=True) as connection:
        connection.execute(f"CREATE TABLE {table} (stage text, reason text)")
        connection.execute(f"COMMENT ON TABLE {table} IS 'newsbeam schema_version=1'")
    with pytest.raises(SinkError) as error:
        prepare_table(parse_sink(f"{POSTGRES_URI}?table={table}", default_table="x"),
                      DeadLetter)
    message = str(error.value)
    assert f"ALTER TABLE {table} ADD COLUMN id text" in message
    assert f"ALTER TABLE {table} ADD PRIMARY KEY (id)" in message
    # The statements it names do migrate the table.
    statements = message.split("migrate it with: ", 1)[1].split("; ")
    with psycopg.connect(POSTGRES_URI, autocommit=True) as connection:
        for statement in statements:
            connection.execute(statement)
    prepare_table(parse_sink(f"{POSTGRES_URI}?table={table}", default_table="x"), DeadLetter)


def test_a_table_with_an_older_layout_fails_naming_the_migration(postgres_uri: str) -> None:
    table = _table(postgres_uri, "old")
    with psycopg.connect(POSTGRES_URI, autocommit=True) as connection:
        connection.execute(f"CREATE TABLE {table} (id text PRIMARY KEY, url text)")
    with pytest.raises(SinkError) as error:
        prepare_table(parse_sink(f"{POSTGRES_URI}?table={table}", default_table="x"))
    message = str(error.value)
    assert "schema version none" in message
    assert f"ALTER TABLE {table} ADD COLUMN canonical_url text" in message


def test_an_unreachable_sink_fails_before_any_feed_is_fetched(
    site: LoopbackServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds: [{site.url('/feeds/world.rss')}]\n")
    for sink in ("postgresql://postgres@127.0.0.1:1/test?table=t",
                 "redis://127.0.0.1:1/0?stream=s", "ftp://example/x"):
        try:
            status = main(["run", "--feeds", str(feeds), "--out", str(tmp_path / "o"),
                           "--allow-private-networks", "--state=none", f"--sink={sink}"])
        except SystemExit as exit_:
            status = exit_.code
        err = capsys.readouterr().err
        assert status == 2, sink
        assert err.count("\n") == 1 and err.startswith("newsbeam: error: sink "), err
    assert sum(site.requests.values()) == 0


@pytest.mark.slow
def test_redis_stream_gets_every_record_with_its_id(
    site: LoopbackServer, tmp_path: Path, redis_stream: str
) -> None:
    summary = _run(site, tmp_path, f"--sink={REDIS_URI}?stream={redis_stream}&maxlen=1000")
    client = redis.Redis.from_url(REDIS_URI)
    entries = client.xrange(redis_stream)
    assert len(entries) == summary["entries"]["records"] == 6
    for _, fields in entries:
        record = json.loads(fields[b"record"])
        assert fields[b"id"].decode() == record["id"]
    # The same records again (a run without a state writes everything): none appended twice.
    again = _run(site, tmp_path, f"--sink={REDIS_URI}?stream={redis_stream}&maxlen=1000")
    assert again["entries"]["records"] == 6
    assert client.xrange(redis_stream) == entries
    assert client.zcard(ids_key(redis_stream)) == 6
    client.close()


@dataclasses.dataclass
class _Element:
    """The least a sink element is: an id, and its JSON form."""

    id: str

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id}


@pytest.mark.services
def test_redis_appends_keep_ids_for_twice_maxlen_and_always_append_elements_without_one(
    redis_stream: str,
) -> None:
    sink = parse_sink(f"{REDIS_URI}?stream={redis_stream}&maxlen=2", default_table="x")
    append = _Append(sink)
    append.setup()
    try:
        letters = [_Element(f"id-{n}") for n in range(6)]
        for batch in (letters[:3], letters[:3], letters[3:]):
            list(append.process(batch))
        list(append.process([_Element(""), _Element("")]))
        client = redis.Redis.from_url(REDIS_URI)
        ids = [fields[b"id"].decode() for _, fields in client.xrange(redis_stream)]
        assert ids == [f"id-{n}" for n in range(6)] + ["", ""]
        # Ids are kept for twice maxlen: the oldest are forgotten (and may be appended again).
        kept = [member.decode() for member in client.zrange(ids_key(redis_stream), 0, -1)]
        assert kept == ["id-2", "id-3", "id-4", "id-5"]
        client.close()
    finally:
        append.teardown()


@pytest.mark.parametrize(("uri", "message"), [
    ("jsonl:", "needs a folder"),
    ("postgresql://postgres@127.0.0.1/test?table=bad-name", "is not a plain SQL name"),
    ("redis://127.0.0.1:6379/0", "name the stream"),
    ("redis://127.0.0.1:6379/0?stream=s&maxlen=lots", "maxlen must be a whole number"),
    ("bigquery:nope", "expected bigquery:PROJECT:DATASET.TABLE"),
    ("postgresql://u:secret@127.0.0.1:5432/db?table=bad-name", "u:***@"),
])
def test_bad_sink_uris(uri: str, message: str) -> None:
    with pytest.raises(SinkError, match=message.replace("*", r"\*")) as error:
        parse_sink(uri, default_table="t")
    assert "secret" not in str(error.value)


def test_bigquery_schema_comes_from_the_record_definition() -> None:
    sink = parse_sink("bigquery:my-project:news.articles", default_table="t")
    assert sink.table == "my-project:news.articles"
    fields = {f["name"]: f for f in bigquery_schema()["fields"]}
    assert fields["id"] == {"name": "id", "type": "STRING", "mode": "REQUIRED"}
    assert fields["published_at"]["type"] == "TIMESTAMP"
    assert fields["authors"]["mode"] == "REPEATED"
    topics = fields["topics"]
    assert (topics["type"], topics["mode"]) == ("RECORD", "REPEATED")
    assert [f["name"] for f in topics["fields"]] == ["name", "relevance", "score", "evidence"]


def test_bigquery_sink_is_wired_to_write_to_bigquery_with_the_derived_schema() -> None:
    import apache_beam as beam
    from apache_beam.io.gcp.bigquery import WriteToBigQuery

    from transforms.sinks import WriteRecords, prepare_sinks

    sink = parse_sink("bigquery:my-project:news.articles", default_table="t")
    prepare_sinks((sink,), object)  # the connectors are installed: nothing to complain about
    pipeline = beam.Pipeline()
    pipeline | beam.Create([]) | WriteRecords((sink,), "run")  # built, never run: no network
    found = []

    class Finder(beam.pipeline.PipelineVisitor):
        def enter_composite_transform(self, node: object) -> None:
            if isinstance(node.transform, WriteToBigQuery):  # type: ignore[attr-defined]
                found.append(node.transform)  # type: ignore[attr-defined]

    pipeline.visit(Finder())
    (write,) = found
    assert write.table_reference.projectId == "my-project"
    assert (write.table_reference.datasetId, write.table_reference.tableId) == (
        "news", "articles")
    assert write.schema == bigquery_schema()
    assert write.create_disposition == beam.io.BigQueryDisposition.CREATE_IF_NEEDED
