"""State between runs and within a run: the stores (SQLite, PostgreSQL), DedupEntries and the
staging of a batch run's state changes until the run has succeeded; for streams, the keyed
state that remembers articles (RememberEntries) and the outcomes committed as they come."""

from typing import TYPE_CHECKING

from transforms import lazy_exports

if TYPE_CHECKING:
    from transforms.state.dedup import (
        DedupEntries as DedupEntries,
        first_of_duplicates as first_of_duplicates,
    )
    from transforms.state.keyed import (
        RememberEntries as RememberEntries,
        RememberLostEntries as RememberLostEntries,
    )
    from transforms.state.outcomes import RememberOutcomes as RememberOutcomes
    from transforms.state.staging import (
        STAGING_FOLDER as STAGING_FOLDER,
        CommitStagedState as CommitStagedState,
        StageStateUpdates as StageStateUpdates,
        commit_staged as commit_staged,
        discard_stale_staging as discard_stale_staging,
        staging_dir as staging_dir,
    )
    from transforms.state.store_fn import StateStoreFn as StateStoreFn
    from transforms.state.stores import (
        DEFAULT_STATE as DEFAULT_STATE,
        StateError as StateError,
        StateStore as StateStore,
        check_state_uri as check_state_uri,
        is_local as is_local,
        open_state as open_state,
        postgres_state as postgres_state,
        sqlite_path as sqlite_path,
    )

__getattr__, __all__ = lazy_exports(__name__, __file__)
