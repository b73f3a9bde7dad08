"""PostgreSQL sink throughput: 10,000 records through the sink, next to one plain COPY.

Makes N records (the demo's article texts, about 4 KB each, with topics), writes them to a
fresh table through newsbeam's PostgreSQL sink (the records are made inside the pipeline, and
that tagging is part of the sink's time) (WriteToPostgres in a Beam pipeline: batched
COPY into a temporary table, then one upsert per batch), then COPYs the same rows into another
fresh table in a single statement, the practical limit. Uses the server on 127.0.0.1:5432,
database `test`, and drops its tables afterwards.

    .venv/bin/python benchmarks/sink_throughput.py [--records 10000]
"""

from __future__ import annotations

import argparse
import functools
import time
import uuid
from datetime import UTC, datetime

import apache_beam as beam
import psycopg
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline import demo
from transforms.core import Record, article_id, content_fingerprint, word_count
from transforms.sinks import parse_sink
from transforms.sinks.postgres import (
    BATCH_SIZE,
    WriteToPostgres,
    prepare_table,
    table_rows,
    write_batch,
)
from transforms.sinks.schema import postgres_columns
from transforms.topics import TopicMatcher, load_taxonomy

DATABASE = "postgresql://postgres@127.0.0.1:5432/test"


@functools.cache
def _matcher() -> TopicMatcher:
    return TopicMatcher(load_taxonomy())


@functools.cache
def _articles() -> list[dict]:
    return demo.sample_articles()


def make_record(n: int) -> Record:
    """Record number n: one of the demo's articles under its own URL, tagged."""
    articles = _articles()
    article = articles[n % len(articles)]
    text = "\n".join(article["paragraphs"]) * 2
    url = f"https://news.example/{n}/{article['path'].rsplit('/', 1)[-1]}"
    now = datetime.now(UTC)
    return Record(
        id=article_id(url), url=url, canonical_url=url, feed_url="https://news.example/feed",
        feed_title="Example", guid=str(n), title=article["title"], authors=("A. Writer",),
        published_at=now, published_source="feed", fetched_at=now, language="en",
        site_name="Example", summary=article["description"], text=text,
        extraction_method="trafilatura", lead_image=None, paywalled=False,
        word_count=word_count(text), topics=_matcher().tag(article["title"], text),
        taxonomy_version="bench", content_fingerprint=content_fingerprint(text),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    args = parser.parse_args()
    records = [make_record(n) for n in range(args.records)]
    suffix = uuid.uuid4().hex[:8]
    sink_table, copy_table = f"bench_sink_{suffix}", f"bench_copy_{suffix}"
    writer_table = f"bench_writer_{suffix}"
    sink = parse_sink(f"{DATABASE}?table={sink_table}", default_table=sink_table)
    for table in (sink_table, copy_table, writer_table):
        prepare_table(parse_sink(f"{DATABASE}?table={table}", default_table=table))
    try:
        # The sink's batch writer alone, fed the batches its DoFn receives.
        started = time.perf_counter()
        with psycopg.connect(DATABASE) as connection:
            for start in range(0, args.records, BATCH_SIZE):
                write_batch(connection, writer_table, records[start:start + BATCH_SIZE], Record)
        writer_seconds = time.perf_counter() - started

        # The sink in a Beam pipeline, records made (and tagged) inside it as in a real run.
        started = time.perf_counter()
        with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as pipeline:
            (pipeline | beam.Create(list(range(args.records)))
             | "Records" >> beam.Map(make_record) | WriteToPostgres(sink))
        sink_seconds = time.perf_counter() - started

        names = ", ".join(name for name, _, _ in postgres_columns())
        started = time.perf_counter()
        with (psycopg.connect(DATABASE) as connection, connection.cursor() as cursor,
              cursor.copy(f"COPY {copy_table} ({names}) FROM STDIN") as copy):
            for row in table_rows(records):
                copy.write_row(row)
        copy_seconds = time.perf_counter() - started

        with psycopg.connect(DATABASE) as connection:
            written = connection.execute(f"SELECT count(*) FROM {sink_table}").fetchone()[0]
    finally:
        with psycopg.connect(DATABASE, autocommit=True) as connection:
            for table in (sink_table, copy_table, writer_table):
                connection.execute(f"DROP TABLE IF EXISTS {table}")
    writer_rate = args.records / writer_seconds
    sink_rate, copy_rate = args.records / sink_seconds, args.records / copy_seconds
    print(f"single COPY of the same rows: {copy_seconds:.2f} s, {copy_rate:,.0f} rows/s")
    print(f"newsbeam sink writer (batches of {BATCH_SIZE}: COPY to a temporary table, upsert on"
          f" id): {writer_seconds:.2f} s, {writer_rate:,.0f} rows/s,"
          f" {writer_rate / copy_rate:.2f} of COPY")
    print(f"the same in a Beam pipeline, records made and tagged in it: {written} rows in"
          f" {sink_seconds:.2f} s, {sink_rate:,.0f} rows/s")


if __name__ == "__main__":
    main()
