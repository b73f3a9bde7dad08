"""CPU seconds a contender in a benchmark used, all of its processes included.

`resource.getrusage(RUSAGE_CHILDREN)` counts only the descendants that were waited for: a
fork server that outlives its parent (multiprocessing's, which newsbeam's extraction
processes come from) takes its workers' CPU with it. So on Linux a contender's CPU is the
machine's busy time over its run less the site's own: what the machine spent while it ran,
besides serving it (its database server included, if it uses one). Elsewhere, the rusage.
"""

from __future__ import annotations

import resource
import subprocess
import time
from pathlib import Path

from benchmarks.processes import CLOCK_TICKS, process_cpu_seconds

_STAT = Path("/proc/stat")


def _machine_busy() -> float:
    """Seconds of CPU the machine has spent busy since boot (all cores)."""
    fields = [int(n) for n in _STAT.read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / CLOCK_TICKS


def timed(command: list[str], site_pid: int, ok: tuple[int, ...] = (0,)) -> tuple[float, float]:
    """Run `command`: its wall seconds and the CPU seconds it cost (see the module's doc)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy, site = (_machine_busy(), process_cpu_seconds(site_pid)) if _STAT.exists() else (0.0, 0.0)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode not in ok:
        raise SystemExit(f"{command[:4]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    if _STAT.exists():
        return wall, (_machine_busy() - busy) - (process_cpu_seconds(site_pid) - site)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
