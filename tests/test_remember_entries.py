"""A stream's dedup: an id passes once per TTL, and a repeat within one poll is counted as a
duplicate before it reaches the runner's keyed state."""

from __future__ import annotations

from collections import Counter
from typing import Any

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.windowed_value import WindowedValue

from tests.helpers import entry
from transforms.core import TALLIES, Entry, Tally
from transforms.state.keyed import RememberEntries, _DropRepeatsInBundleFn

TTL = 600.0


def _passed(fn: _DropRepeatsInBundleFn, value: Entry, at: float) -> list[Any]:
    return list(fn.process(value, timestamp=at))


def _is_tally(output: Any, name: str) -> bool:
    if not isinstance(output, beam.pvalue.TaggedOutput) or output.tag != TALLIES:
        return False
    tally = output.value.value if isinstance(output.value, WindowedValue) else output.value
    return tally == Tally(name)


def test_a_repeat_at_the_same_time_in_one_bundle_is_a_counted_duplicate() -> None:
    fn = _DropRepeatsInBundleFn()
    fn.start_bundle()
    first, other_feed = entry("http://127.0.0.1/a.html"), entry(
        "http://127.0.0.1/a.html", feed="http://127.0.0.1/other")
    assert _passed(fn, first, 100.0) == [first]
    repeat = _passed(fn, other_feed, 100.0)
    assert len(repeat) == 1 and _is_tally(repeat[0], "entries.duplicate")
    # Another poll's sighting is for the keyed state to judge (it may be past the TTL)...
    assert _passed(fn, other_feed, 100.0 + TTL) == [other_feed]
    # ...and so is one in a later bundle.
    fn.start_bundle()
    assert _passed(fn, first, 100.0) == [first]


def test_each_id_passes_once_per_poll_and_every_sighting_is_counted() -> None:
    a, b = "http://127.0.0.1/a.html", "http://127.0.0.1/b.html"
    sightings = [  # (url, feed, poll time)
        (a, "f1", 0.0), (a, "f2", 0.0), (b, "f1", 0.0), (a, "f3", 0.0),  # poll 1
        (a, "f1", 60.0), (b, "f2", 60.0),  # poll 2: both within the TTL
        (a, "f1", TTL + 1.0),  # poll 3: a again, after its TTL
    ]
    with beam.Pipeline(runner="FnApiRunner") as pipeline:
        entries = pipeline | beam.Create([
            TimestampedValue(entry(url, feed=f"http://127.0.0.1/{feed}"), at)
            for url, feed, at in sightings])
        deduplicated = entries | RememberEntries(TTL, expire_by_timer=False)
        passed = deduplicated.entries | beam.Map(lambda e: e.link)
        assert_that(passed, equal_to([a, b, a]), label="passed")
        counts = (deduplicated.tallies
                  | beam.Map(lambda tally: (tally.name, tally.n))
                  | beam.CombinePerKey(sum))
        assert_that(counts, equal_to(list(Counter({
            "entries.duplicate": 4, "state.remembered": 3, "state.forgotten": 1}).items())),
            label="counts")
