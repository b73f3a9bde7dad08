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
    "polite": ("transforms/fetch/polite.py", ()),
    "robots": ("transforms/fetch/robots.py", ()),
    "identity": ("transforms/core/identity.py", ()),
    "dead_letters": ("transforms/core/dead_letters.py", ()),
    "text": ("transforms/core/text.py", ("content_fingerprint",)),
    "feed_fetch": ("transforms/feeds/fetch.py", ()),
    "schedule": ("transforms/feeds/schedule.py", ()),
    "stores": ("transforms/state/stores.py", ()),
    "records": ("transforms/records/build.py", ()),
    "runners": ("pipeline/runners.py", ()),
    # The command's exit statuses (the rest of the module is argument help).
    "cli": ("pipeline/cli.py", ("main", "_report")),
    "run_every": ("pipeline/schedule.py", ()),
    "redis": ("transforms/sinks/redis_stream.py", ()),
    "postgres": ("transforms/sinks/postgres.py", ()),
}

# Mutants no test can tell from the code, each with why (mutant name: reason).
EQUIVALENT: dict[str, str] = {}

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
    copy = prepare_copy(args.workdir, [MODULES[name][0] for name in chosen])
    patterns = [pattern for name in chosen for pattern in mutant_patterns(name)]
    environment = {**os.environ, "NEWSBEAM_CORPUS": str(ROOT.parent / "shared" / "corpus")}
    environment.pop("CI", None)
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    if args.survivors_again:
        # mutmut picks each mutant's tests from a map of which tests reach which function,
        # made once: tests added since are only seen once the map is made again.
        (copy / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
        patterns = [name for name, status in results_of(mutmut, copy, environment).items()
                    if status == "survived"
                    and any(fnmatch.fnmatch(name, pattern) for pattern in patterns)]
    if patterns:
        subprocess.run([mutmut, "run", "--max-children", str(args.max_children), *patterns],
                       cwd=copy, env=environment, check=True, stdout=subprocess.DEVNULL)
    return report(chosen, results_of(mutmut, copy, environment), copy, mutmut, environment)


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


def prepare_copy(workdir: Path, sources: list[str]) -> Path:
    """The tracked files copied into `workdir`/project (kept between runs: mutmut's results
    live there), with a [tool.mutmut] section for `sources`."""
    copy = workdir / "project"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                             capture_output=True).stdout.decode().split("\0")
    for name in filter(None, tracked):
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_bytes() != (ROOT / name).read_bytes():
            shutil.copy2(ROOT / name, target)
    pyproject = (ROOT / "pyproject.toml").read_text()
    top = sorted({name.split("/")[0] for name in tracked if name})
    settings = (
        "\n[tool.mutmut]\n"
        f"source_paths = {sources!r}\n"
        f"also_copy = {top!r}\n"
        # The deploy checks list tracked files with git, which the mutants folder is not.
        'pytest_add_cli_args = ["-m", "not slow", "-p", "no:cacheprovider", "-q",'
        ' "--ignore=tests/test_deploy.py"]\n'
    )
    (copy / "pyproject.toml").write_text(pyproject + settings)
    return copy


def report(chosen: list[str], statuses: dict[str, str], copy: Path, mutmut: str,
           environment: dict[str, str]) -> int:
    """Print the score per module, then the survivors and the equivalent mutants (each with
    why); 1 if a module is under 85%."""
    below = 0
    survivors: list[tuple[str, list[str]]] = []
    equivalents: list[tuple[str, str]] = []
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
            changed = mutant_diff(mutant, copy, mutmut, environment)
            why = EQUIVALENT.get(mutant) or equivalence(changed)
            if why:
                equivalent.append((mutant, why))
            else:
                alive.append((mutant, changed))
        untested = len(mine) - counts["killed"] - counts["timeout"] - counts["survived"]
        scored = len(mine) - len(equivalent)
        score = (counts["killed"] + counts["timeout"]) / scored if scored else 1.0
        below += score < 0.85
        survivors += alive
        equivalents += equivalent
        print(f"{MODULES[name][0]:<34} {len(mine):>7} {counts['killed']:>6} {counts['timeout']:>7}"
              f" {len(equivalent):>5} {len(alive):>8} {untested:>8} {score:>6.1%}")
    for mutant, changed in survivors:
        print(f"\nsurvived: {mutant}\n  " + "\n  ".join(changed))
    print()
    for mutant, why in equivalents:
        print(f"equivalent: {mutant}: {why}")
    return 1 if below else 0


def mutant_diff(mutant: str, copy: Path, mutmut: str, environment: dict[str, str]) -> list[str]:
    """The lines a mutant removes and adds ("-..." and "+...")."""
    shown = subprocess.run([mutmut, "show", mutant], cwd=copy, env=environment,
                           capture_output=True, text=True).stdout
    return [line for line in shown.splitlines()
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


_SQL = re.compile(r"\b(SELECT|INSERT|CREATE|UPDATE|VALUES|WHERE|CONFLICT|PRAGMA|COMMENT)\b", re.I)
_FIRST_PART = re.compile(r"\.split\(([^()]*?), 1\)\[0\]")
_LAST_PART = re.compile(r"\.rsplit\(([^()]*?), 1\)\[-1\]")


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
        if "headers.get(" in before:
            return "HTTP header names are case-insensitive (httpx's Headers)"
    for pattern, part in ((_FIRST_PART, "first"), (_LAST_PART, "last")):
        match = pattern.search(before)
        if match and any(after == before.replace(match.group(0), variant.format(match.group(1)))
                         for variant in (".split({}, )[0]", ".split({}, 2)[0]",
                                         ".rsplit({}, )[-1]", ".rsplit({}, 2)[-1]")):
            return f"only the {part} part of the split is used: its count changes nothing"
    return None


if __name__ == "__main__":
    sys.exit(main())
