"""StateStoreFn: the base of the DoFns that read or write the state store."""

from __future__ import annotations

import dataclasses

import apache_beam as beam

from transforms.state.stores import StateStore, open_state


@dataclasses.dataclass(eq=False)
class StateStoreFn(beam.DoFn):
    """A DoFn with a connection to the state store at `state_uri`: opened in setup() on the
    worker (a connection does not pickle), closed in teardown(). Without a state URI it has
    none (`store_if_any`)."""

    state_uri: str | None
    _store: StateStore | None = dataclasses.field(default=None, init=False, repr=False)

    def setup(self) -> None:
        if self.state_uri is not None:
            self._store = open_state(self.state_uri)

    def teardown(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def store(self) -> StateStore:
        if self._store is None:
            raise RuntimeError(f"{type(self).__name__} used before setup()")
        return self._store

    def store_if_any(self) -> StateStore | None:
        """The store, or None for a DoFn made without a state URI."""
        return self._store
