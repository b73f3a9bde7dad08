"""Scheduled runs are incremental: conditional feed GETs, articles never fetched twice, and a
crashed run loses nothing."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

import transforms.state.staging as staging_module
from pipeline import demo
from pipeline.demo.loopback import LoopbackServer
from pipeline.job.run_batch import run_batch
from pipeline.job.setup import RunFailedError
from transforms.core import background, workers
from transforms.feeds import parse_entries
from transforms.state import STAGING_FOLDER, open_state
from transforms.topics import load_taxonomy

pytestmark = pytest.mark.slow  # every test runs the whole pipeline, some twice

@pytest.fixture
def site() -> Iterator[LoopbackServer]:
    server = demo.sample_server()
    yield server
    server.stop()


def _run(site: LoopbackServer, out: Path, state: str, *flags: str) -> dict:
    options = PipelineOptions(["--allow-private-networks", f"--state={state}", *flags])
    return run_batch(options, demo.sample_feeds(site), load_taxonomy(), str(out))


def _page_requests(site: LoopbackServer) -> int:
    """Requests for article pages (robots.txt is cached per process, for up to a day)."""
    return sum(n for path, n in site.requests.items()
               if not path.startswith("/feeds/") and path != "/robots.txt")


def _record_ids(out: Path) -> Counter[str]:
    return Counter(
        json.loads(line)["id"] for f in out.glob("articles-*.jsonl") for line in f.open()
    )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'state.db'}"
    return request.getfixturevalue("postgres_uri")


def test_second_run_fetches_no_unchanged_feed_body_and_no_article(
    site: LoopbackServer, tmp_path: Path, state: str
) -> None:
    first = _run(site, tmp_path / "out", state)
    assert first["entries"]["records"] == 6
    first_pages = _page_requests(site)
    site.requests.clear()

    second = _run(site, tmp_path / "out", state)
    assert _page_requests(site) == 0
    # The feeds with an ETag or a Last-Modified date answer 304; the one without is fetched in
    # full, and its entries are all known from the first run.
    assert second["feeds"]["not_modified"] == 2
    assert second["feeds"]["fetched"] == 1
    assert second["entries"]["records"] == 0
    # Its three linked entries: two articles written last time, and a PDF that failed for good
    # (not HTML), which is remembered rather than requested again every run.
    assert second["entries"]["seen_before"] == 3
    assert second["accounted"] == {"feeds": True, "entries": True}
    # Scheduled runs into one folder add files; nothing of the first run is lost.
    assert sum(_record_ids(tmp_path / "out").values()) == 6

    site.requests.clear()
    forced = _run(site, tmp_path / "out", state, "--force")
    assert forced["feeds"]["not_modified"] == 0
    assert forced["entries"]["records"] == 6
    assert _page_requests(site) == first_pages


def test_a_feed_whose_parsing_did_not_finish_is_asked_for_in_full_next_run(
    site: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = f"sqlite:{tmp_path / 'state.db'}"
    with monkeypatch.context() as patched:  # every parse kills its worker process
        target = "tests.test_parse_entries:die"
        patched.setattr(parse_entries, "PARSE_FEED", target)
        patched.setattr(workers, "TARGETS", (target, workers.EXTRACT_ARTICLE))
        patched.setattr(background, "per_process", lambda key, make: make())
        crashed = _run(site, tmp_path / "out", state)
    assert crashed["entries"]["records"] == 0
    assert crashed["accounted"] == {"feeds": True, "entries": True}
    site.requests.clear()
    # Not a 304 for the two feeds that send validators: their bodies were never parsed.
    again = _run(site, tmp_path / "out", state)
    assert again["feeds"]["not_modified"] == 0
    assert again["entries"]["records"] == 6


def test_state_is_only_committed_after_outputs_are_written(
    site: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = f"sqlite:{tmp_path / 'state.db'}"
    out = tmp_path / "out"

    def die(*args: object) -> None:
        raise RuntimeError("killed between writing the outputs and committing the state")

    # The commit is the run's last step, in the pipeline (in this process on this runner).
    with monkeypatch.context() as patched:
        patched.setattr(staging_module, "commit_staged", die)
        with pytest.raises(RunFailedError, match="killed between"):
            _run(site, out, state)
    store = open_state(state)
    assert store.seen(list(_record_ids(out))) == set()  # nothing committed
    store.close()

    site.requests.clear()
    again = _run(site, out, state)
    # The records the dead run wrote are durable: they are recovered, not fetched again.
    assert len(again["recovered_runs"]) == 1
    assert again["entries"]["records"] == 0
    ids = _record_ids(out)
    assert len(ids) == 6 and set(ids.values()) == {1}
    staging = out / STAGING_FOLDER
    assert not staging.exists() or not any(staging.iterdir())  # nothing left half-committed


def test_only_the_files_of_runs_not_committed_are_read_again(tmp_path: Path) -> None:
    # A folder a schedule has written to for months holds every record since: a run start
    # reads the files of runs that died before committing, not those of every run before.
    from pipeline.job.incremental import recover_unfinished_runs

    out = tmp_path / "out"
    out.mkdir()
    store = open_state(f"sqlite:{tmp_path / 'state.db'}")
    store.commit("20261201T000000000Z", {}, ["old-1"])
    # Unreadable as records: were it read, the recovery would fail on it.
    (out / "articles-20261201T000000000Z-00000-of-00001.jsonl").write_text("not json\n")
    (out / "articles-20261202T000000000Z-00000-of-00001.jsonl").write_text(
        json.dumps({"id": "died-1"}) + "\n" + json.dumps({"id": "died-2"}) + "\n")
    assert recover_unfinished_runs(str(out), store) == ["20261202T000000000Z"]
    assert store.seen(["old-1", "died-1", "died-2"]) == {"old-1", "died-1", "died-2"}
    store.close()
