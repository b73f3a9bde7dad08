"""Mutation testing of the modules that make decisions, against the fast tests.

    .venv/bin/pip install -e '.[mutation]'
    .venv/bin/python benchmarks/mutation.py [--modules http,robots,...] [--max-children N]
                                            [--survivors-again]

mutmut plants one-line bugs (a changed operator, constant, argument, a removed call) in each
module, one at a time, and runs the fast tests (`-m "not slow"`) that reach the changed
function; a mutant the tests do not notice survives. This prints, per module, the mutants
killed (a test failed, or the mutant hung until its timeout) and the score, then every
survivor with its diff, and the equivalent mutants (no test can tell them from the code: the
rules of `equivalence`, and EQUIVALENT by name), each with why.

Needs the test services running (`bash .ci/services`); not in CI: it takes half an hour. The
work happens in a copy of the tracked files under --workdir, so the repository is never
touched; mutmut keeps its results there, and a second run only retries the functions that
changed. `--survivors-again` runs only the last run's survivors, against the tests as they are
now (after adding tests for them).
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The modules that decide: the HTTP client (limits, retries, Retry-After), politeness and
# robots.txt, canonical URLs and ids, conditional GET and the feed schedule, the state stores,
# record building, the runner guard, exit statuses, the sinks' idempotency.
MODULES: dict[str, tuple[str, tuple[str, ...]]] = {
    # name: (file, the functions mutated there; none listed: all of them)
    "http": ("transforms/fetch/http.py", ()),
    "guard": ("transforms/fetch/guard.py", ()),
    "pool": ("transforms/fetch/pool.py", ()),
    "polite": ("transforms/fetch/polite.py", ()),
    "robots": ("transforms/fetch/robots.py", ()),
    "identity": ("transforms/core/identity.py", ()),
    "dead_letters": ("transforms/core/dead_letters.py", ()),
    "text": ("transforms/core/text.py", ("content_fingerprint",)),
    "feed_fetch": ("transforms/feeds/fetch.py", ()),
    "schedule": ("transforms/feeds/schedule.py", ()),
    "stores": ("transforms/state/stores.py", ()),
    "upsert": ("transforms/core/upsert.py", ()),
    "records": ("transforms/records/build.py", ()),
    "runners": ("pipeline/job/runners.py", ()),
    # The command's exit statuses (the rest of the module is argument help).
    "cli": ("pipeline/cli/__init__.py", ("main", "_report")),
    "run_every": ("pipeline/job/schedule.py", ()),
    "redis": ("transforms/sinks/redis_stream.py", ()),
    "postgres": ("transforms/sinks/postgres.py", ()),
    "health": ("transforms/health/rules.py", ()),
    "alerts": ("transforms/alerts/rules.py", ()),
    "exposition": ("pipeline/job/exposition.py", ("families",)),
}
# Where a module's own fast tests are enough to judge it, only they run (a subset of the fast
# tests: a mutant they kill, the fast tests kill). The HTTP client is reached by nearly every
# test, and running them all for each of its 600 mutants takes hours.
OWN_TESTS: dict[str, tuple[str, ...]] = {
    "http": ("tests/test_http.py",),
    "guard": ("tests/test_http.py",),
    "pool": ("tests/test_http.py", "tests/test_pool.py"),
    "health": ("tests/test_feed_health.py",),
    "alerts": ("tests/test_alerts.py",),
    "exposition": ("tests/test_metrics.py",),
}

# Mutants no test can tell from the code, beyond the rules of `equivalence`, each with why
# (mutmut's name, or a pattern of names for a whole small function: reason).
_TIMEOUTS = ("a connection's timeouts only show against a server that never answers, which no"
             " test waits for")
EQUIVALENT: dict[str, str] = {
    "pipeline.job.exposition.x_families__mutmut_20[4-6]":
        "every gauge newsbeam sets has its help in _GAUGES; the default is never taken",
    "transforms.health.rules.x__days__mutmut_4":
        "an hour more or less in 3,600 moves a tenth of an hour only past 360 hours, which"
        " are written in days",
    "transforms.health.rules.x_classify__mutmut_49":
        "the usual gap is known there (the limit needs it): the fallback is never taken",
    "transforms.health.rules.x_updated__mutmut_4":
        "a new row's updated_at is set again before it is returned",
    "transforms.health.rules.x_updated__mutmut_48":
        "an hour that starts exactly KEPT_HOURS back is kept or not; the counts of a day and"
        " a week never reach it",
    "transforms.alerts.rules.x_surge__mutmut_10":
        "the spread of a single count is 0 either way",
    "pipeline.job.exposition.x_families__mutmut_131":
        "a dead letter's stage and reason are single words (dead_letters.REASONS): the one"
        " dot between them splits the same from either end",
    "pipeline.job.exposition.x_families__mutmut_165":
        "a topic's name has no dot (the taxonomy file's rule): the one dot before the"
        " relevance splits the same from either end",
    "transforms.fetch.polite.xǁHostGateǁset_interval__mutmut_1":
        "an equal interval moves the next start to where it already is",
    "transforms.fetch.polite.xǁHostLanesǁshutdown__mutmut_3":
        "wait=True is shutdown's default",
    "transforms.fetch.robots.x_robots_agent__mutmut_2":
        "split() also splits at tabs and newlines, which a User-Agent header cannot hold",
    "transforms.fetch.robots.xǁRobotsCacheǁrules__mutmut_4":
        "one lock for all sites only serialises their first robots.txt fetches",
    "transforms.core.identity.x_canonical_url__mutmut_11":
        "the host is lower-cased first, so an upper-case X is never there to strip",
    "transforms.state.stores.x__chunks__mutmut_6":
        "overlapping chunks ask for some ids twice; the answers are sets",
    "transforms.state.stores.xǁSqliteStateǁ__init____mutmut_1[24]":
        "the busy timeout only shows while another process holds the write lock that long",
    **dict.fromkeys((f"transforms.state.stores.xǁPostgresStateǁ__init____mutmut_{n}"
                     for n in (18, 21, 24)), _TIMEOUTS),
    **dict.fromkeys((f"transforms.state.stores.xǁPostgresStateǁ__init____mutmut_{n}"
                     for n in (19, 22, 25)),
                    "every statement runs inside an explicit transaction() block"),
    **dict.fromkeys([*(f"transforms.state.stores.xǁPostgresStateǁcommit__mutmut_{n}"
                       for n in (27, 29, 31, 33, 52, 54, 56)),
                     *(f"transforms.state.stores.xǁPostgresStateǁsave_feed_health__mutmut_{n}"
                       for n in (15, 17, 19))],
                    "the column names go into the SQL unquoted, where case does not matter"),
    "transforms.state.stores.xǁPostgresStateǁcommitted_runs__mutmut_3":
        "psycopg takes None as no parameters",
    "transforms.state.stores.xǁPostgresStateǁfeed_health__mutmut_4":
        "psycopg takes None as no parameters",
    "pipeline.job.runners.x_placement__mutmut_9":
        "no environment type is not LOOPBACK, whatever stands in for it",
    "pipeline.job.runners.x_placement__mutmut_40":
        "os.cpu_count() is None only where it cannot tell",
    "pipeline.job.runners.x_extraction_processes__mutmut_10":
        "os.cpu_count() is None only where it cannot tell",
    "pipeline.cli.x_main__mutmut_10":
        "the log level is set by basicConfig, which pytest's own handlers make a no-op"
        " in-process",
    "pipeline.job.schedule.x_run_every__mutmut_1[45]":
        "every pass of the loop sets the status; the loop always runs once",
    "pipeline.job.schedule.x_run_every__mutmut_5[247]": "every run summary carries its run_id",
    "transforms.sinks.redis_stream.x__client__mutmut_*": _TIMEOUTS,
    "transforms.sinks.redis_stream.x_present_in_stream__mutmut_1[478]":
        "ZMSCORE answers one score per id asked",
    "transforms.sinks.redis_stream.x_stream_fields__mutmut_6":
        "a missing id falls through `or` to the article id either way",
    "transforms.fetch.http.xǁHttpClientǁ_read_capped__mutmut_50":
        "the deadline is met to the nanosecond only by chance",
    "transforms.sinks.postgres.x__connect__mutmut_[235689]":
        f"{_TIMEOUTS}; every write runs inside an explicit transaction() block",
    "transforms.sinks.postgres.x_prepare_table__mutmut_35":
        "a table without newsbeam's comment reads as schema version none either way",
    "transforms.sinks.postgres.x__create__mutmut_16":
        "SQL keywords and unquoted names are case-insensitive",
    "transforms.sinks.postgres.x_table_rows__mutmut_[78]":
        "the row's values go to COPY in order; the name of the added key is not used",
    "transforms.sinks.postgres.x_table_rows__mutmut_1[79]":
        "the JSON text goes into a jsonb column, which stores the same value either way",
    "transforms.sinks.postgres.x_table_rows__mutmut_22":
        "the JSON text goes into a jsonb column, which stores the same value either way",
    "transforms.sinks.postgres.x_write_batch__mutmut_7":
        "id = excluded.id in an upsert on id changes nothing",
    "transforms.sinks.postgres.x_batches__mutmut_[34]":
        "only the batch sizes change; every element is written",
}

STATUS = re.compile(r"^\s*(?P<name>[\w.]+__mutmut_\d+): (?P<status>.+)$")
DETECTED = {"killed", "timeout"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", default=",".join(MODULES),
                        help=f"comma-separated, of: {', '.join(MODULES)}")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--workdir", type=Path,
                        default=Path.home() / ".cache" / "newsbeam" / "mutation")
    parser.add_argument("--survivors-again", action="store_true",
                        help="run only the last run's survivors again, against the tests as they"
                        " are now (after adding tests for them)")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.modules.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(MODULES))
    if unknown:
        parser.error(f"unknown modules: {', '.join(unknown)}")
    environment = {**os.environ, "NEWSBEAM_CORPUS": str(ROOT.parent / "shared" / "corpus")}
    environment.pop("CI", None)
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    groups: dict[tuple[str, ...], list[str]] = {}
    for name in chosen:
        groups.setdefault(OWN_TESTS.get(name, ()), []).append(name)
    statuses: dict[str, str] = {}
    copies: dict[str, Path] = {}
    for tests, names in groups.items():
        folder = "-".join(Path(test).stem for test in tests) or "all-fast-tests"
        copy = prepare_copy(args.workdir / folder, [MODULES[name][0] for name in names], tests)
        patterns = [pattern for name in names for pattern in mutant_patterns(name)]
        # mutmut picks each mutant's tests from a map of which tests reach which function,
        # made for the modules mutated at the time: tests added since, and modules mutated
        # in another run in this copy, are only seen once the map is made again.
        (copy / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
        if args.survivors_again:
            patterns = [mutant for mutant, status in results_of(mutmut, copy, environment).items()
                        if status == "survived"
                        and any(fnmatch.fnmatch(mutant, pattern) for pattern in patterns)
                        and not why_equivalent(mutant, copy, mutmut, environment)]
        if patterns:
            subprocess.run([mutmut, "run", "--max-children", str(args.max_children), *patterns],
                           cwd=copy, env=environment, check=True, stdout=subprocess.DEVNULL)
        statuses.update(results_of(mutmut, copy, environment))
        copies.update(dict.fromkeys(names, copy))
    return report(chosen, statuses, copies, mutmut, environment)


def results_of(mutmut: str, copy: Path, environment: dict[str, str]) -> dict[str, str]:
    """Every mutant's status as mutmut last recorded it (killed, survived, timeout, ...)."""
    results = subprocess.run([mutmut, "results", "--all", "true"], cwd=copy, env=environment,
                             check=True, capture_output=True, text=True).stdout
    return {match["name"]: match["status"] for line in results.splitlines()
            if (match := STATUS.match(line))}


def mutant_patterns(name: str) -> list[str]:
    """mutmut's names of a module's mutants (fnmatch patterns): module.x_function__mutmut_N,
    module.xǁClassǁmethod__mutmut_N."""
    path, functions = MODULES[name]
    module = path.removesuffix(".py").replace("/", ".")
    if not functions:
        return [f"{module}.*"]
    return [f"{module}.x_{function}__mutmut_*" for function in functions]


def prepare_copy(copy: Path, sources: list[str], tests: tuple[str, ...]) -> Path:
    """The tracked files copied into `copy` (kept between runs: mutmut's results live there),
    with a [tool.mutmut] section for `sources`, run against `tests` (none: every fast test)."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                             capture_output=True).stdout.decode().split("\0")
    for name in filter(None, tracked):
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_bytes() != (ROOT / name).read_bytes():
            shutil.copy2(ROOT / name, target)
    top = sorted({name.split("/")[0] for name in tracked if name})
    # Files the repository no longer has go from the copy and from mutmut's (a module moved
    # away leaves no stale twin behind for the tests to find).
    for folder in (copy, copy / "mutants"):
        drop_untracked(folder, {name for name in tracked if name}, top)
    pyproject = (ROOT / "pyproject.toml").read_text()
    settings = (
        "\n[tool.mutmut]\n"
        f"source_paths = {sources!r}\n"
        f"also_copy = {top!r}\n"
        # The deploy checks list tracked files with git, which the mutants folder is not.
        'pytest_add_cli_args = ["-m", "not slow", "-p", "no:cacheprovider", "-q",'
        ' "--ignore=tests/test_deploy.py"]\n'
        + (f"pytest_add_cli_args_test_selection = {list(tests)!r}\n" if tests else "")
    )
    (copy / "pyproject.toml").write_text(pyproject + settings)
    return copy


def drop_untracked(folder: Path, tracked: set[str], top: list[str]) -> None:
    """Delete the files under `folder`'s `top` folders that are not `tracked` (mutmut's
    .meta and .spans files go with their module), then the folders left empty."""
    for name in top:
        root = folder / name
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*"), reverse=True):
            relative = path.relative_to(folder).as_posix()
            source = relative.removesuffix(".meta").removesuffix(".spans")
            if path.is_file() and source not in tracked:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()


def report(chosen: list[str], statuses: dict[str, str], copies: dict[str, Path], mutmut: str,
           environment: dict[str, str]) -> int:
    """Print the score per module, then the survivors and the equivalent mutants (each with
    why); 1 if a module is under 85%."""
    below = 0
    survivors: list[tuple[str, list[str]]] = []
    equivalents: list[tuple[str, str, list[str]]] = []
    print(f"{'module':<34} {'mutants':>7} {'killed':>6} {'timeout':>7} {'equiv':>5}"
          f" {'survived':>8} {'untested':>8} {'score':>6}")
    for name in chosen:
        patterns = mutant_patterns(name)
        mine = {mutant: status for mutant, status in statuses.items()
                if any(fnmatch.fnmatch(mutant, pattern) for pattern in patterns)}
        counts = Counter(mine.values())
        alive, equivalent = [], []
        for mutant in sorted(status_mutant for status_mutant, status in mine.items()
                             if status == "survived"):
            changed = mutant_diff(mutant, copies[name], mutmut, environment)
            why = why_equivalent(mutant, copies[name], mutmut, environment, changed)
            if why:
                equivalent.append((mutant, why, changed))
            else:
                alive.append((mutant, changed))
        untested = len(mine) - counts["killed"] - counts["timeout"] - counts["survived"]
        scored = len(mine) - len(equivalent)
        score = (counts["killed"] + counts["timeout"]) / scored if scored else 1.0
        below += score < 0.85
        survivors += alive
        equivalents += equivalent
        shown = MODULES[name][0] + ("*" if name in OWN_TESTS else "")
        print(f"{shown:<34} {len(mine):>7} {counts['killed']:>6} {counts['timeout']:>7}"
              f" {len(equivalent):>5} {len(alive):>8} {untested:>8} {score:>6.1%}")
    if any(name in OWN_TESTS for name in chosen):
        print("* against its own tests only: " + ", ".join(
            f"{MODULES[name][0]}: {' '.join(OWN_TESTS[name])}" for name in chosen
            if name in OWN_TESTS))
    for mutant, changed in survivors:
        print(f"\nsurvived: {mutant}\n  " + "\n  ".join(changed))
    print()
    for mutant, why, changed in equivalents:
        # The change is shown too: a mutant listed by number in EQUIVALENT is another one
        # once its function changes, and this is where that shows.
        print(f"equivalent: {mutant}: {why}\n  " + "\n  ".join(changed))
    return 1 if below else 0


def why_equivalent(mutant: str, copy: Path, mutmut: str, environment: dict[str, str],
                   changed: list[str] | None = None) -> str | None:
    """Why no test can tell `mutant` from the code (EQUIVALENT, then the rules), if it is so."""
    listed = next((reason for pattern, reason in EQUIVALENT.items()
                   if fnmatch.fnmatch(mutant, pattern)), None)
    if listed:
        return listed
    return equivalence(changed if changed is not None
                       else mutant_diff(mutant, copy, mutmut, environment))


def mutant_diff(mutant: str, copy: Path, mutmut: str, environment: dict[str, str]) -> list[str]:
    """The lines a mutant removes and adds ("-..." and "+...")."""
    shown = subprocess.run([mutmut, "show", mutant], cwd=copy, env=environment,
                           capture_output=True, text=True).stdout
    return [line for line in shown.splitlines()
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


_SQL = re.compile(r"\b(SELECT|INSERT|CREATE|UPDATE|VALUES|WHERE|CONFLICT|PRAGMA|COMMENT|TEXT"
                  r"|NULL|PRIMARY|EXCLUDED|TIMESTAMPTZ|INTEGER|CURRENT_SCHEMA|AND|ORDER BY"
                  r"|GROUP BY)\b", re.I)
_SPLIT_PART = re.compile(r"\.(r?split)\(([^()]*?), 1\)\[(0|-1)\]")


def equivalence(changed: list[str]) -> str | None:
    """Why a one-line mutant cannot change what the code does, where a rule says so."""
    removed = [line[1:] for line in changed if line.startswith("-")]
    added = [line[1:] for line in changed if line.startswith("+")]
    if len(removed) != 1 or len(added) != 1:
        return None
    before, after = removed[0], added[0]
    if before.lower() == after.lower():
        if _SQL.search(before):
            return "SQL keywords and unquoted names are case-insensitive"
        if re.search(r"[\"']utf-8[\"']", before, re.I):
            return "codec names are case-insensitive"
        if "headers.get(" in before or "headers={" in before:
            return "HTTP header names are case-insensitive (httpx's Headers)"
    if re.sub(r'"utf-8", ', "", before) == after:
        return "UTF-8 is the default codec of encode and decode"
    for match in _SPLIT_PART.finditer(before):
        function, separator, index = match.groups()
        variants = [f".{name}({separator}{count})[{index}]" for name in ("split", "rsplit")
                    for count in (", ", ", 2")
                    if name == function or (index == "0") == (name == "split")]
        if any(after == before[:match.start()] + variant + before[match.end():]
               for variant in variants):
            part = "first" if index == "0" else "last"
            return f"only the {part} part of the split is used: its count changes nothing"
    return None


if __name__ == "__main__":
    sys.exit(main())
