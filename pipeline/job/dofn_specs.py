"""A DoFn's state and timer specs worked out once per DoFn: a workaround for Beam 2.77.

Beam 2.77 asks `apache_beam.transforms.userstate.get_dofn_specs` for a DoFn's specs each time
it checks whether the DoFn is stateful: as the ParDo is made, as the graph is translated, and
as each bundle's copy of it is set up in a worker. Each time, it inspects the signature of
every method the DoFn has (some thirty, most of them beam.DoFn's own), several times per DoFn
of a graph of a hundred. The specs come from the parameters of the DoFn's methods, which do not
change: `keep_dofn_specs` has Beam's function keep them for each DoFn instance, as long as the
instance lives. Pinned by tests/test_runners.py.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from apache_beam.transforms import userstate

Specs = tuple[set[Any], set[Any]]


class _KeptSpecs:
    """Beam's get_dofn_specs, its answer kept per DoFn instance (by identity: a DoFn may
    define equality, or not be hashable)."""

    def __init__(self, beams: Callable[[Any], Specs]) -> None:
        self.beams = beams
        self._kept: dict[int, tuple[weakref.ref[Any], Specs]] = {}

    def __call__(self, dofn: Any) -> Specs:
        key = id(dofn)
        kept = self._kept.get(key)
        if kept is None or kept[0]() is not dofn:
            kept_specs = self.beams(dofn)
            try:  # let go of when the DoFn is (before its id can be another's)
                ref = weakref.ref(dofn, lambda _: self._kept.pop(key, None))
            except TypeError:  # not weakly referable: not kept
                return kept_specs
            kept = self._kept[key] = (ref, kept_specs)
        state, timers = kept[1]
        return set(state), set(timers)  # copies: a caller may change what it is given


def keep_dofn_specs() -> None:
    """Have Beam keep each DoFn's specs (see the module's doc); once per process is enough."""
    if not isinstance(userstate.get_dofn_specs, _KeptSpecs):
        userstate.get_dofn_specs = _KeptSpecs(userstate.get_dofn_specs)
