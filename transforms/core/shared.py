"""Per-process resources: one of each, shared by every DoFn instance of a worker process.

A runner may create many instances of a DoFn in one process (one per thread that runs bundles,
and Dataflow runs many such threads in each of its one-process-per-core SDK workers), so a
process pool, an HTTP client or a compiled taxonomy made per instance multiplies with them.
`per_process` keeps one per configuration instead, through Beam's `Shared`: it lives while any
DoFn instance holds it (keep it in an attribute from setup() to teardown(), and drop it there
without closing it) and is released, and cleaned up by its own finalizer, after that.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import TypeVar

from apache_beam.utils.shared import Shared

T = TypeVar("T")

_handles: dict[Hashable, Shared] = {}
_lock = threading.Lock()


def per_process(key: Hashable, make: Callable[[], T]) -> T:
    """The object this process keeps under `key` (a kind and its settings), made by `make()` if
    no DoFn instance holds one now. The object must accept weak references."""
    with _lock:
        handle = _handles.setdefault(key, Shared())
    shared: T = handle.acquire(make)
    return shared
