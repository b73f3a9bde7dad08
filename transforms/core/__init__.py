"""What every stage shares: element types, reading config files, dead letters and the one way
to fail, tallies and the run summary, URL identity, text helpers, redaction, per-process
resources, and the bases of newsbeam's DoFns and composites."""

from typing import TYPE_CHECKING

from transforms import lazy_exports

if TYPE_CHECKING:
    from transforms.core.background import (
        BackgroundFn as BackgroundFn,
        Place as Place,
        PooledFn as PooledFn,
    )
    from transforms.core.collect_dead_letters import (
        CollectDeadLetters as CollectDeadLetters,
        DeadLetters as DeadLetters,
    )
    from transforms.core.composite import (
        Composite as Composite,
    )
    from transforms.core.config_files import (
        ConfigError as ConfigError,
        config_duration as config_duration,
        config_number as config_number,
        kind_of as kind_of,
        load_yaml as load_yaml,
        no_unknown_keys as no_unknown_keys,
        optional_of as optional_of,
        read_config_file as read_config_file,
        string_list as string_list,
    )
    from transforms.core.create_many import CreateMany as CreateMany
    from transforms.core.ddl import (
        lock_table_creation as lock_table_creation,
    )
    from transforms.core.dead_letters import (
        DEAD_LETTERS as DEAD_LETTERS,
        EXTRACT_ARTICLES as EXTRACT_ARTICLES,
        FETCH_FEEDS as FETCH_FEEDS,
        FETCH_PAGES as FETCH_PAGES,
        PARSE_ENTRIES as PARSE_ENTRIES,
        REASONS as REASONS,
        STAGES as STAGES,
        TAG_TOPICS as TAG_TOPICS,
        TO_RECORDS as TO_RECORDS,
        dead_letter as dead_letter,
        is_permanent as is_permanent,
        is_permanent_reason as is_permanent_reason,
        is_unfinished_parse as is_unfinished_parse,
    )
    from transforms.core.durations import (
        format_duration as format_duration,
        parse_duration as parse_duration,
    )
    from transforms.core.elements import (
        EXTRACTION_METHODS as EXTRACTION_METHODS,
        POLLS as POLLS,
        PUBLISHED_SOURCES as PUBLISHED_SOURCES,
        SCHEMA_VERSION as SCHEMA_VERSION,
        Alert as Alert,
        Article as Article,
        DeadLetter as DeadLetter,
        Entry as Entry,
        Evidence as Evidence,
        Feed as Feed,
        FeedHealthRow as FeedHealthRow,
        FetchedFeed as FetchedFeed,
        Page as Page,
        PollObservation as PollObservation,
        Record as Record,
        TaggedArticle as TaggedArticle,
        TopicTag as TopicTag,
        Validators as Validators,
        format_utc as format_utc,
        json_line as json_line,
        plain_values as plain_values,
    )
    from transforms.core.failures import (
        Abandoned as Abandoned,
        StageFn as StageFn,
        guarded as guarded,
        unexpected_error as unexpected_error,
    )
    from transforms.core.files import (
        matching_paths as matching_paths,
        read_lines as read_lines,
    )
    from transforms.core.gather import GatherOnce as GatherOnce
    from transforms.core.identity import (
        article_id as article_id,
        canonical_url as canonical_url,
    )
    from transforms.core.isolation import (
        DEFAULT_ISOLATION as DEFAULT_ISOLATION,
        IsolationSettings as IsolationSettings,
        ProcessPool as ProcessPool,
        TaskTimeout as TaskTimeout,
        WorkerCrashed as WorkerCrashed,
        pipe as pipe,
        portable as portable,
        preload as preload,
        resolve as resolve,
        start_process as start_process,
    )
    from transforms.core.metrics import (
        NAMESPACE as NAMESPACE,
        TALLIES as TALLIES,
        WAIT_TALLY as WAIT_TALLY,
        Measure as Measure,
        Tally as Tally,
        count as count,
        emitted as emitted,
        measure as measure,
    )
    from transforms.core.redaction import (
        mask_userinfo as mask_userinfo,
        redact as redact,
    )
    from transforms.core.secrets import (
        PASSWORD_SECRET as PASSWORD_SECRET,
        SecretError as SecretError,
        with_secret_password as with_secret_password,
    )
    from transforms.core.shared import per_process as per_process
    from transforms.core.summary import (
        Summarize as Summarize,
        parse_summaries as parse_summaries,
        summarize as summarize,
        summary_line as summary_line,
    )
    from transforms.core.text import (
        clean_whitespace as clean_whitespace,
        content_fingerprint as content_fingerprint,
        html_to_text as html_to_text,
        valid_unicode as valid_unicode,
        word_count as word_count,
    )
    from transforms.core.upsert import upsert_by_copy as upsert_by_copy
    from transforms.core.windows import (
        firing_label as firing_label,
        window_span as window_span,
    )
    from transforms.core.workers import (
        EXTRACT_ARTICLE as EXTRACT_ARTICLE,
        PARSE_FEED as PARSE_FEED,
        POLL_IN_LANE as POLL_IN_LANE,
        prepare_fork_server as prepare_fork_server,
        start_fork_server as start_fork_server,
    )

__getattr__, __all__ = lazy_exports(__name__, __file__)
