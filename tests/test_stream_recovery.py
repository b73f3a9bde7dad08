"""A stream started again after a kill: its window files and its state store are made to agree
before it polls (pipeline.incremental.recover_stream_windows), and it finds them under the same
stream id."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.job.incremental import recover_stream_windows, stream_identity
from pipeline.job.run_stream import stream_totals
from tests.conftest import POSTGRES_URI
from transforms.core import Record
from transforms.sinks import parse_sink, prepare_sinks
from transforms.state import open_state

W1 = "20261207T000000Z-20261207T001000Z-20261207T000001000Z"
W2 = "20261207T001000Z-20261207T002000Z-20261207T000001000Z"


def _jsonl(folder: Path, name: str, rows: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _parquet(folder: Path, name: str, ids: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    pq.write_table(pa.table({"id": ids}), path)
    return path


def _letter(article_id: str, reason: str, error_type: str = "") -> dict:
    return {"id": f"l-{article_id}", "article_id": article_id, "reason": reason,
            "error_type": error_type}


def test_a_window_in_every_file_sink_is_committed_and_one_missing_from_a_sink_rolled_back(
    tmp_path: Path,
) -> None:
    out, parquet = tmp_path / "out", tmp_path / "parquet"
    sinks = (parse_sink(f"jsonl:{out}", default_table="x"),
             parse_sink(f"parquet:{parquet}", default_table="x"))
    # W1: both sinks have it. W2: the Parquet sink never got it.
    _jsonl(out, f"articles-s-{W1}-00000-of-00001.jsonl", [{"id": "a"}, {"id": "b"}])
    _parquet(parquet, f"articles-s-{W1}-00000-of-00001.parquet", ["a", "b"])
    kept_back = _jsonl(out, f"articles-s-{W2}-00000-of-00001.jsonl", [{"id": "c"}])
    _jsonl(out, f"dead-letters-s-{W1}-00000-of-00001.jsonl", [
        _letter("d", "http_status", "HTTP 404"), _letter("e", "http_status", "HTTP 503"),
        _letter("", "entry_without_link")])
    temporary = _jsonl(out, f".articles-s-{W2}-00000-of-00001.jsonl.0f3c.tmp", [{"id": "c"}])
    store = open_state(f"sqlite:{tmp_path / 'state.db'}")
    try:
        recovered = recover_stream_windows("s", sinks, sinks[0], store)
        assert recovered.committed == (W1, W2) and recovered.rolled_back == (W2,)
        # W1's records and its permanent failure (404, not 503) are done with.
        assert store.seen(["a", "b", "c", "d", "e"]) == {"a", "b", "d"}
        assert not kept_back.exists() and not temporary.exists()
        assert store.committed_windows("s", [W1, W2, "other"]) == {W1, W2}
        # Once agreed, a second recovery finds nothing to do.
        assert recover_stream_windows("s", sinks, sinks[0], store).committed == ()
    finally:
        store.close()


def test_a_window_with_a_shard_missing_is_rolled_back(tmp_path: Path) -> None:
    out = tmp_path / "out"
    sink = parse_sink(f"jsonl:{out}", default_table="x")
    partial = _jsonl(out, f"articles-s-{W1}-00001-of-00002.jsonl", [{"id": "a"}])
    store = open_state(f"sqlite:{tmp_path / 'state.db'}")
    try:
        assert recover_stream_windows("s", (sink,), sink, store).rolled_back == (W1,)
        assert not partial.exists() and store.seen(["a"]) == set()
    finally:
        store.close()


@pytest.mark.services
def test_a_window_that_a_database_sink_lacks_is_rolled_back(
    tmp_path: Path, postgres_uri: str,
) -> None:
    out = tmp_path / "out"
    prefix = postgres_uri.split("table_prefix=")[1]
    files = parse_sink(f"jsonl:{out}", default_table="x")
    table = parse_sink(f"{POSTGRES_URI}?table={prefix}articles", default_table="x")
    prepare_sinks((table,), Record)
    _jsonl(out, f"articles-s-{W1}-00000-of-00001.jsonl", [{"id": "a"}])
    store = open_state(postgres_uri)
    try:
        assert recover_stream_windows("s", (files, table), files, store).rolled_back == (W1,)
        assert store.seen(["a"]) == set()
    finally:
        store.close()


def test_a_stream_has_the_same_id_at_every_launch_unless_its_outputs_change() -> None:
    first = stream_identity(None, "out", "postgresql://news:secret@db:5432/news")
    assert first == stream_identity(None, "out", "postgresql://news:secret@db:5432/news")
    assert first.startswith("stream-") and len(first) == len("stream-") + 12
    assert first != stream_identity(None, "elsewhere", "postgresql://news:secret@db:5432/news")
    assert first != stream_identity(None, "out", None)
    # The password is not part of it: a changed password is the same stream.
    assert first == stream_identity(None, "out", "postgresql://news:other@db:5432/news")
    assert stream_identity("desk-1", "out", None) == "desk-1"
    with pytest.raises(ValueError, match="--stream-id"):
        stream_identity("../x", "out", None)


def test_a_launchs_totals_leave_out_the_windows_of_earlier_launches(tmp_path: Path) -> None:
    earlier, this = "20261207T000000000Z", "20261207T010000000Z"
    for launch, records in ((earlier, 7), (this, 2), (this, 3)):
        window = f"20261207T0{records}0000Z-20261207T0{records}1000Z"
        name = f"summary-s-{window}-{launch}-00000-of-00001.json"
        (tmp_path / name).write_text(json.dumps({"counts": {"records.output": records}}))
    totals = stream_totals(str(tmp_path), "s", this)
    assert totals["windows"] == 2 and totals["entries"]["records"] == 5
