"""State between runs and within a run: the stores (SQLite, PostgreSQL), DedupEntries, and the
staging of a batch run's state changes until the run has succeeded."""

from transforms.state.dedup import DedupEntries, first_of_duplicates
from transforms.state.staging import (
    STAGING_FOLDER,
    StageStateUpdates,
    commit_staged,
    discard_stale_staging,
    staging_dir,
)
from transforms.state.stores import (
    DEFAULT_STATE,
    StateError,
    StateStore,
    is_local,
    open_state,
)

__all__ = [
    "DEFAULT_STATE", "STAGING_FOLDER", "DedupEntries", "StageStateUpdates", "StateError",
    "StateStore", "commit_staged", "discard_stale_staging", "first_of_duplicates", "is_local",
    "open_state", "staging_dir",
]
