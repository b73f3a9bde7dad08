"""Installs the loopback-only guard (tests/loopback_guard.py) in a Python process a test starts
with this folder on its PYTHONPATH. Each refused attempt is also appended to the file
NEWSBEAM_GUARD_LOG names, which the test reads: a process may swallow the error."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.loopback_guard import install  # noqa: E402


def _record(what: str) -> None:
    path = os.environ.get("NEWSBEAM_GUARD_LOG")
    if path:  # else refused all the same, only not logged
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{os.getpid()} {sys.argv[:2]}: {what}\n")


install(_record)
