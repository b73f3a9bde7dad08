"""What Beam 2.77's runners do that the stream's code relies on or works around, pinned on the
runners themselves: the in-process FnApiRunner and Prism (Beam's portable runner, the closest
to Dataflow's model that runs here). A workaround in the code names the fact it rests on; if an
upgrade of Beam changes one, the test that pins it fails and says which workaround to revisit.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.coders import FloatCoder
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.periodicsequence import PeriodicImpulse
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Timestamp

pytestmark = pytest.mark.slow  # pipelines on real runners

TICK = 1.0
TICKS = 4
HOUR = 3600.0


SOON = 2.9 * TICK  # short of the fourth tick


class _TimerProbe(beam.DoFn):
    """Logs each element and each firing of two event-time timers set from the first element,
    one SOON after it and one an hour after it, to a file: "element T", "soon T at WALL" and
    "later T at WALL" lines, in the order the runner ran them."""

    SEEN = ReadModifyWriteStateSpec("seen", FloatCoder())
    SOON = TimerSpec("soon", TimeDomain.WATERMARK)
    LATER = TimerSpec("later", TimeDomain.WATERMARK)

    def __init__(self, log: str) -> None:
        self.log = log

    def _write(self, line: str) -> None:
        with open(self.log, "a") as handle:
            handle.write(line + "\n")

    def process(self, element: tuple[str, float], timestamp=beam.DoFn.TimestampParam,
                seen=beam.DoFn.StateParam(SEEN), soon=beam.DoFn.TimerParam(SOON),
                later=beam.DoFn.TimerParam(LATER)):
        self._write(f"element {float(timestamp)}")
        if seen.read() is None:
            seen.write(float(timestamp))
            soon.set(Timestamp.of(float(timestamp) + SOON))
            later.set(Timestamp.of(float(timestamp) + HOUR))
        return []

    @on_timer(SOON)
    def fire_soon(self, fired_for=beam.DoFn.TimestampParam):
        self._write(f"soon {float(fired_for)} at {time.time()}")
        return []

    @on_timer(LATER)
    def fire_later(self, fired_for=beam.DoFn.TimestampParam):
        self._write(f"later {float(fired_for)} at {time.time()}")
        return []


def _probe_timers(options: list[str], log: Path) -> list[str]:
    start = time.time()
    with beam.Pipeline(options=PipelineOptions([*options, "--streaming"])) as pipeline:
        (pipeline
         | PeriodicImpulse(start_timestamp=start, stop_timestamp=start + TICKS * TICK,
                           fire_interval=TICK)
         | beam.Map(lambda tick: ("key", tick))
         | beam.ParDo(_TimerProbe(str(log))))
    return log.read_text().split("\n")[:-1]


def test_fnapi_runner_fires_an_event_time_timer_at_the_end_of_the_bundle_that_set_it(
    tmp_path: Path,
) -> None:
    # Why transforms/state/keyed.py sets no expiry timer on the FnApiRunner (expire_by_timer).
    events = _probe_timers(["--runner=FnApiRunner"], tmp_path / "events")
    kinds = [line.split()[0] for line in events]
    assert kinds[0] == "element"
    assert sorted(kinds[1:3]) == ["later", "soon"]  # an hour early, before the next tick
    assert kinds.count("element") == TICKS


def test_prism_fires_event_time_timers_by_the_watermark_which_a_periodic_impulse_holds_ahead_of_the_wall_clock(  # noqa: E501
    tmp_path: Path, prism: str
) -> None:
    # Why the expiry timer of transforms/state/keyed.py decides by its own time, not by the
    # wall clock: on Prism the impulse moves the watermark to its next tick as it emits one.
    events = _probe_timers(["--runner=PrismRunner", f"--prism_location={prism}"],
                           tmp_path / "events")
    kinds = [line.split()[0] for line in events]
    # The soon timer fires as the third tick goes out, before the fourth: its time is SOON
    # after the first tick, the wall clock is about 2 ticks after it.
    assert kinds == ["element"] * 3 + ["soon", "element", "later"]
    soon = next(line.split() for line in events if line.startswith("soon"))
    assert float(soon[3]) < float(soon[1])  # fired before the wall clock reached its time
    # The timer an hour ahead fires only when the bounded impulse ends (watermark at the end).
    later = next(line.split() for line in events if line.startswith("later"))
    assert float(later[3]) < float(later[1]) - HOUR / 2


def test_fileio_on_prism_names_a_late_pane_like_the_on_time_one_and_replaces_its_file(
    tmp_path: Path, prism: str,
) -> None:
    # Why a stream's window files are written by transforms/sinks/windowed.py's
    # WriteWindowFiles, not by Beam's fileio.WriteToFiles: its per-bundle writer passes no
    # pane to the file naming, so a late firing's file takes the on-time file's name.
    from apache_beam.io import fileio
    from apache_beam.testing.test_stream import TestStream as ScriptedStream
    from apache_beam.transforms.window import FixedWindows, TimestampedValue
    from apache_beam.utils.timestamp import Duration

    script = (ScriptedStream()
              .advance_watermark_to(0)
              .add_elements([TimestampedValue(f"on time {n}", 1 + n) for n in range(5)])
              .advance_watermark_to(30)
              .add_elements([TimestampedValue("late", 3)])
              .advance_watermark_to_infinity())

    def name(window, pane, shard, shards, compression, destination) -> str:  # noqa: ANN001
        late = "-late" if pane is not None and pane.index else ""
        return f"things{late}-{shard}-of-{shards}.txt"

    options = PipelineOptions(["--runner=PrismRunner", f"--prism_location={prism}",
                               "--streaming"])
    with beam.Pipeline(options=options) as pipeline:
        (pipeline
         | script
         | beam.WindowInto(FixedWindows(10), allowed_lateness=Duration(seconds=3600))
         | fileio.WriteToFiles(str(tmp_path), file_naming=name))
    files = {path.name: path.read_text().split() for path in tmp_path.glob("things*")}
    assert list(files) == ["things-0-of-1.txt"]  # no "-late" name: the pane never came
    assert files["things-0-of-1.txt"] == ["late"]  # ... and the on-time records are gone


# Beam's thread that reads the job's messages dies of the same deadline, in the background.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_waiting_for_a_job_on_prism_fails_once_the_job_server_timeout_passes(
    tmp_path: Path, prism: str,
) -> None:
    # Why run_to_the_end (pipeline/job/setup.py) gives --job_server_timeout ten years: the
    # portable runner's state stream takes it as its deadline, so a wait longer than it (300 s
    # by default) fails while the job still runs.
    import grpc

    start = time.time()
    options = PipelineOptions(["--runner=PrismRunner", f"--prism_location={prism}",
                               "--streaming", "--job_server_timeout=3"])
    pipeline = beam.Pipeline(options=options)
    (pipeline
     | PeriodicImpulse(start_timestamp=start, stop_timestamp=start + 8, fire_interval=1.0)
     | beam.Map(lambda tick: tick))
    with pytest.raises(grpc.RpcError, match="DEADLINE_EXCEEDED|Deadline Exceeded"):
        pipeline.run().wait_until_finish()
    # Let that thread die within this test, whose warnings filter expects it.
    for thread in threading.enumerate():
        if thread.name == "wait_until_finish_read":
            thread.join(timeout=30)


def test_newsbeam_lifts_the_deadline_of_a_job_it_waits_for_unless_told_one() -> None:
    from apache_beam.options.pipeline_options import PortableOptions

    from pipeline.job.setup import WAIT_DEADLINE, lift_wait_deadline

    default = PipelineOptions(["--runner=PrismRunner"])
    lift_wait_deadline(default)
    assert default.view_as(PortableOptions).job_server_timeout == WAIT_DEADLINE
    given = PipelineOptions(["--runner=PrismRunner", "--job_server_timeout=60"])
    lift_wait_deadline(given)
    assert given.view_as(PortableOptions).job_server_timeout == 60


def test_a_job_service_that_does_not_answer_fails_the_wait_in_a_minute_not_ten_years(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    from pipeline.job import setup

    listener = socket.socket()  # a port that accepts nothing: bound, never listening
    listener.bind(("127.0.0.1", 0))
    monkeypatch.setattr(setup, "JOB_SERVICE_ANSWERS_WITHIN", 1.0)
    options = PipelineOptions(
        ["--runner=PortableRunner", f"--job_endpoint=127.0.0.1:{listener.getsockname()[1]}"])
    try:
        with pytest.raises(setup.RunFailedError, match="did not answer within 1 s"):
            setup.lift_wait_deadline(options)
    finally:
        listener.close()
