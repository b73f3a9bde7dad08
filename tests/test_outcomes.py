"""A stream's commit to the state store waits for every sink to have written the window
(RememberOutcomes), pinned on Prism with a sink that takes its time."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_stream import TestStream as ScriptedStream
from apache_beam.transforms.window import FixedWindows, TimestampedValue

from tests.helpers import LAUNCH
from transforms.state import RememberOutcomes

pytestmark = pytest.mark.slow

SLOW = 3.0  # seconds the slow sink takes to write a window


@dataclasses.dataclass(frozen=True)
class _Written:
    id: str


@dataclasses.dataclass(eq=False)
class _SlowSink(beam.DoFn):
    """Writes a window's elements (grouped) in SLOW seconds, then logs when it finished."""

    log: str

    def process(self, element: tuple[str, Iterable[Any]]) -> Iterator[int]:
        time.sleep(SLOW)
        with open(self.log, "a") as handle:
            handle.write(f"{time.time()}\n")
        yield len(list(element[1]))


def test_on_prism_a_window_is_committed_only_after_every_sink_wrote_it(
    tmp_path: Path, prism: str,
) -> None:
    state = tmp_path / "state.db"
    log = tmp_path / "written"
    script = (ScriptedStream()
              .advance_watermark_to(0)
              .add_elements([TimestampedValue(_Written(f"a{n}"), 1 + n) for n in range(3)])
              .advance_watermark_to_infinity())
    options = PipelineOptions(["--runner=PrismRunner", f"--prism_location={prism}",
                               "--streaming"])
    with beam.Pipeline(options=options) as pipeline:
        records = pipeline | script | beam.WindowInto(FixedWindows(10))
        no_letters = records | "NoLetters" >> beam.FlatMap(lambda _: [])
        fast = records | "FastSink" >> beam.Map(lambda record: record.id)
        slow = (records
                | "Key" >> beam.Map(lambda record: ("", record))
                | "Window" >> beam.GroupByKey()
                | "SlowSink" >> beam.ParDo(_SlowSink(str(log))))
        (records, no_letters, fast, slow) | RememberOutcomes(f"sqlite:{state}", "s", LAUNCH)

    written_at = float(log.read_text().split()[0])
    with sqlite3.connect(state) as db:
        ids = sorted(row[0] for row in db.execute("SELECT id FROM seen_articles"))
        (label, committed_at), = db.execute("SELECT label, committed_at FROM stream_windows")
    assert ids == ["a0", "a1", "a2"]
    assert label == f"19700101T000000Z-19700101T000010Z-{LAUNCH}"
    assert datetime.fromisoformat(committed_at).timestamp() >= written_at
