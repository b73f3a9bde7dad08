"""What the processes of a process group use, read from /proc (Linux): a benchmark starts the
stream in a session of its own and samples its processes (newsbeam, Prism, workers)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclasses.dataclass(frozen=True)
class Usage:
    """One live process of the group: its command line, CPU seconds so far and resident set."""

    pid: int
    command: str
    cpu_seconds: float
    rss_bytes: int


def _stat_fields(pid: int | str) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu_seconds(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds process `pid` has used so far (0 where it, or /proc, is not there)."""
    try:
        return _cpu_seconds(_stat_fields(pid))
    except OSError:
        return 0.0


def group_usage(group: int) -> list[Usage]:
    """The live processes of process group `group`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = _stat_fields(entry)
            if int(fields[2]) != group:  # pgrp
                continue
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            rss_pages = int(Path(f"/proc/{entry}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
        found.append(Usage(int(entry), command.decode(errors="replace"),
                           _cpu_seconds(fields),
                           rss_pages * PAGE_SIZE))
    return found


def group_cpu_seconds(group: int) -> float:
    """CPU seconds used so far by the live processes of a process group."""
    return sum(usage.cpu_seconds for usage in group_usage(group))
