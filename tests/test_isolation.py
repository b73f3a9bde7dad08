"""Worker processes: a time limit per task, crashes contained, processes recycled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from pipeline import demo
from tests.helpers import test_pipeline
from transforms.core import (
    Entry,
    IsolationSettings,
    Page,
    ProcessPool,
    TaskTimeout,
    WorkerCrashed,
    article_id,
    canonical_url,
    workers,
)
from transforms.extract import ExtractArticles, ExtractionError

pytestmark = pytest.mark.slow  # every test starts worker processes


def slow_then_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def crash(_: object) -> None:
    os._exit(3)


def refuse(reason: str) -> None:
    raise ExtractionError(reason, "no text here", "ValueError")


SLOW_THEN_PID, CRASH, REFUSE = (f"{__name__}:{name}" for name in ("slow_then_pid", "crash",
                                                                    "refuse"))


def test_a_task_past_its_time_limit_is_killed_and_the_pool_goes_on() -> None:
    pool = ProcessPool((SLOW_THEN_PID,), IsolationSettings(processes=1, timeout=0.5))
    try:
        first = pool.submit(SLOW_THEN_PID, 0).result()
        with pytest.raises(TaskTimeout):
            pool.submit(SLOW_THEN_PID, 30).result()
        # A fresh process replaced the killed one.
        assert pool.submit(SLOW_THEN_PID, 0).result() != first
    finally:
        pool.close()


def test_a_crashed_worker_is_reported_and_replaced() -> None:
    pool = ProcessPool((CRASH,), IsolationSettings(processes=1, timeout=10))
    try:
        with pytest.raises(WorkerCrashed, match="exited with code 3"):
            pool.submit(CRASH, None).result()
    finally:
        pool.close()


def test_errors_cross_the_process_boundary_with_their_reason() -> None:
    pool = ProcessPool((REFUSE,), IsolationSettings(processes=1, timeout=10))
    try:
        with pytest.raises(ExtractionError) as caught:
            pool.submit(REFUSE, "empty_extraction").result()
        assert (caught.value.reason, caught.value.error_type) == ("empty_extraction",
                                                                  "ValueError")
    finally:
        pool.close()


def test_a_worker_that_died_between_tasks_is_replaced_and_the_next_task_runs() -> None:
    # Killed while idle (the machine's OOM killer, an operator): the next task was never
    # started, so it is not lost with the process.
    pool = ProcessPool((SLOW_THEN_PID,), IsolationSettings(processes=1, timeout=10))
    try:
        first = pool.submit(SLOW_THEN_PID, 0).result()
        os.kill(first, signal.SIGKILL)
        time.sleep(0.5)
        assert pool.submit(SLOW_THEN_PID, 0).result() not in (first, None)
    finally:
        pool.close()


def test_an_error_raised_in_a_worker_carries_the_worker_s_traceback() -> None:
    pool = ProcessPool((REFUSE,), IsolationSettings(processes=1, timeout=10))
    try:
        with pytest.raises(ExtractionError) as caught:
            pool.submit(REFUSE, "empty_extraction").result()
    finally:
        pool.close()
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    assert "in the worker process" in notes and "in refuse" in notes


class NeedsTwoArguments(Exception):  # noqa: N818
    def __init__(self, first: str, second: str) -> None:
        super().__init__(f"{first} and {second}")  # pickles, but does not unpickle


def raise_needs_two(_: object) -> None:
    raise NeedsTwoArguments("this", "that")


def test_an_error_that_cannot_cross_back_comes_back_as_its_type_and_text() -> None:
    target = f"{__name__}:raise_needs_two"
    pool = ProcessPool((target,), IsolationSettings(processes=1, timeout=10))
    try:
        with pytest.raises(RuntimeError, match="NeedsTwoArguments: this and that"):
            pool.submit(target, None).result()
        assert pool.submit(target, None).exception() is not None  # the worker goes on
    finally:
        pool.close()


def test_workers_are_recycled_so_memory_is_given_back() -> None:
    pool = ProcessPool((SLOW_THEN_PID,), IsolationSettings(processes=1, recycle_after=2))
    try:
        pids = [pool.submit(SLOW_THEN_PID, 0).result() for _ in range(5)]
    finally:
        pool.close()
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]


def test_extraction_past_the_time_limit_is_a_dead_letter() -> None:
    article = demo.sample_articles()[0]
    url = "http://127.0.0.1:8000" + article["path"]
    entry = Entry(feed_url="http://127.0.0.1:8000/feed", feed_title=None, feed_tags=(),
                  feed_index=0, position=0, guid=None, link=url,
                  canonical_url=canonical_url(url), article_id=article_id(canonical_url(url)),
                  title=None, authors=(), published_at=None, updated_at=None, categories=(),
                  summary=None)
    page = Page(entry, url, 200, "text/html", demo.render_page(article, "http://127.0.0.1:8000"),
                datetime.now(UTC))
    with test_pipeline() as p:
        outputs = p | beam.Create([page]) | ExtractArticles(
            IsolationSettings(processes=1, timeout=0.001))
        assert_that(outputs.articles, equal_to([]), label="NoArticle")
        assert_that(outputs.dead_letters | beam.Map(lambda d: (d.reason, d.article_id)),
                    equal_to([("extraction_timeout", entry.article_id)]), label="Timeout")


def test_a_stage_with_no_page_to_extract_starts_no_extraction_process(monkeypatch) -> None:
    # A poll where nothing changed has no page: it need not pay for the extraction stack.
    started: list[IsolationSettings] = []
    monkeypatch.setattr(workers, "started_pool", started.append)
    with test_pipeline() as p:
        outputs = p | beam.Create([], reshuffle=False).with_output_types(Page) | (
            ExtractArticles(IsolationSettings(processes=1)))
        assert_that(outputs.articles, equal_to([]))
    assert started == []


def test_a_program_read_from_stdin_can_use_the_workers() -> None:
    # multiprocessing's fork server re-imports the parent's __main__ from its file; a program
    # read from stdin has none on disk. A fresh interpreter, so the fork server starts anew.
    program = (
        "from transforms.core import IsolationSettings, ProcessPool\n"
        "pool = ProcessPool(('builtins:abs',), IsolationSettings(processes=1))\n"
        "print(pool.submit('builtins:abs', -7).result())\n"
        "pool.close()\n"
    )
    done = subprocess.run([sys.executable, "-"], input=program, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "7"
