"""A stream's window files (WriteWindowFiles): a bounded set of files per firing of each window,
named by window, pane and shard, so a late pane never replaces the on-time files; on Prism
(TestStream drives its watermark) and on the in-process bundle-based runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

import apache_beam as beam
import pytest
from apache_beam.io import fileio
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_stream import TestStream as ScriptedStream
from apache_beam.transforms.window import FixedWindows, TimestampedValue
from apache_beam.utils.timestamp import Duration

from tests.helpers import LAUNCH
from transforms.sinks.windowed import WriteWindowFiles

pytestmark = pytest.mark.slow

WINDOW = 10  # seconds; the scripted stream starts at the epoch
SPAN_0 = "19700101T000000Z-19700101T000010Z"
SPAN_1 = "19700101T000010Z-19700101T000020Z"
FIRING_0 = f"{SPAN_0}-{LAUNCH}"  # the on-time firings, by this launch
FIRING_1 = f"{SPAN_1}-{LAUNCH}"


class LinesSink(fileio.FileSink):
    """Strings, one per line."""

    def open(self, fh: BinaryIO) -> None:
        self._fh = fh

    def write(self, element: Any) -> None:
        self._fh.write(f"{element}\n".encode())

    def flush(self) -> None:
        self._fh.flush()


def _write_with_a_late_element(options: list[str], out: Path, shards: int = 1) -> None:
    script = (
        ScriptedStream()
        .advance_watermark_to(0)
        .add_elements([TimestampedValue(f"on-time {n}", 1 + n % 8) for n in range(40)])
        .add_elements([TimestampedValue("next window", 12)])
        .advance_watermark_to(30)  # both windows close and fire
        .add_elements([TimestampedValue("late", 3)])  # for the first window, after it closed
        .advance_watermark_to_infinity()
    )
    with beam.Pipeline(options=PipelineOptions([*options, "--streaming"])) as pipeline:
        (pipeline
         | script
         | beam.WindowInto(FixedWindows(WINDOW), allowed_lateness=Duration(seconds=3600))
         | WriteWindowFiles(str(out), "things", ".txt", LinesSink, LAUNCH, shards=shards))


def _files(out: Path) -> dict[str, list[str]]:
    return {path.name: sorted(path.read_text().splitlines()) for path in out.iterdir()}


def _check(out: Path) -> None:
    files = _files(out)
    on_time = [f"on-time {n}" for n in range(40)]
    late_name = next(name for name in files if "-late" in name)
    assert late_name.startswith(f"things-{SPAN_0}-late") and files[late_name] == ["late"]
    assert late_name.endswith(f"-{LAUNCH}-00000-of-00001.txt")
    # The on-time pane's file is still there, whole, beside the late one: one file per window.
    assert files[f"things-{FIRING_0}-00000-of-00001.txt"] == sorted(on_time)
    assert files[f"things-{FIRING_1}-00000-of-00001.txt"] == ["next window"]
    assert len(files) == 3  # no temporary file left behind


def test_on_prism_a_late_pane_gets_files_of_its_own(tmp_path: Path, prism: str) -> None:
    _write_with_a_late_element(["--runner=PrismRunner", f"--prism_location={prism}"], tmp_path)
    _check(tmp_path)


def test_on_the_bundle_based_runner_a_late_pane_gets_files_of_its_own(tmp_path: Path) -> None:
    _write_with_a_late_element(["--runner=BundleBasedDirectRunner"], tmp_path)
    _check(tmp_path)


def test_a_window_is_written_to_at_most_its_shards(tmp_path: Path) -> None:
    _write_with_a_late_element(["--runner=BundleBasedDirectRunner"], tmp_path, shards=3)
    first = [name for name in _files(tmp_path)
             if name.startswith(f"things-{FIRING_0}-")]
    assert 1 <= len(first) <= 3 and all(name.endswith("-of-00003.txt") for name in first)
    lines = [line for name in first for line in _files(tmp_path)[name]]
    assert sorted(lines) == sorted(f"on-time {n}" for n in range(40))
