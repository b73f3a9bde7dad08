"""Topic tagging speed on one core: MB/s of article text, default and 200-topic taxonomies.

Tags the labelled news texts of ../shared/corpus/topics/dev.jsonl (repeated to about 20 MB, one
article at a time, exactly as the pipeline's TagTopics does) with the bundled taxonomy and with
generated taxonomies of 200 topics of 25 terms each, drawn from the corpus's own vocabulary (see
`generated_taxonomy`). Prints matches per article too: the cost grows with matches, not with
the number of topics.

    .venv/bin/python benchmarks/tagging_speed.py [--megabytes 20]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import time
from collections import Counter
from pathlib import Path

from transforms.topics import Taxonomy, Term, Topic, TopicMatcher, load_taxonomy

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "topics" / "dev.jsonl"


def generated_taxonomy(
    texts: list[str], *, distinctive: bool, topics: int = 200, terms: int = 25
) -> Taxonomy:
    """200 topics of 25 terms (a third of them two-word phrases) from the corpus's vocabulary.

    `distinctive`: terms are words found in 2 to 8 of the texts, as real topic terms (names,
    specific nouns) are. Otherwise they are drawn from every word found in up to half of the
    texts, common words included: a stress case where two words in five match some topic.
    """
    rng = random.Random(7)
    document_frequency = Counter(
        w for text in texts for w in set(re.findall(r"[a-z]{4,}", text.lower()))
    )
    low, high = (2, 8) if distinctive else (2, len(texts) // 2)
    pool = sorted(w for w, n in document_frequency.items() if low <= n <= high)
    made = []
    for index in range(topics):
        chosen = rng.sample(pool, terms)
        made.append(Topic(
            name=f"topic-{index}", description="generated",
            terms=tuple(Term(t if i % 3 else f"{t} {rng.choice(pool)}", weight=1.0 + i % 3)
                        for i, t in enumerate(chosen)),
            exclusions=(f"{chosen[0]} {rng.choice(pool)}",),
        ))
    return Taxonomy(version="generated", topics=tuple(made))


def measure(matcher: TopicMatcher, items: list[tuple[str, str]], megabytes: float) -> float:
    size = sum(len(title.encode()) + len(text.encode()) for title, text in items)
    rounds = max(1, round(megabytes * 1e6 / size))
    started = time.process_time()  # CPU time of this process: one core's worth of work
    for _ in range(rounds):
        for title, text in items:
            matcher.tag(title, text)
    seconds = time.process_time() - started
    return size * rounds / 1e6 / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=20.0)
    args = parser.parse_args()
    if not CORPUS.is_file():
        raise SystemExit(f"corpus not found at {CORPUS}")
    records = [json.loads(line) for line in CORPUS.open(encoding="utf-8")]
    items = [(r["title"], r["text"]) for r in records]
    texts = [text for _, text in items]
    taxonomies = (
        ("default (3 topics)", load_taxonomy()),
        ("generated, 200 topics of distinctive terms",
         generated_taxonomy(texts, distinctive=True)),
        ("generated, 200 topics of common words (stress)",
         generated_taxonomy(texts, distinctive=False)),
    )
    for name, taxonomy in taxonomies:
        started = time.perf_counter()
        matcher = TopicMatcher(taxonomy)
        built = time.perf_counter() - started
        terms = sum(len(t.terms) for t in taxonomy.topics)
        # Matches that count (exclusions applied, overlaps resolved), from the tags' evidence.
        hits = sum(evidence.count for title, text in items for tag in matcher.tag(title, text)
                   for evidence in tag.evidence) / len(items)
        rate = measure(matcher, items, args.megabytes)
        print(f"{name}: {terms} terms, compiled in {built * 1000:.0f} ms,"
              f" {hits:.0f} matches per article, {rate:.1f} MB/s of article text on one core")
    # What a worker holding a taxonomy's matcher needs (this process also loaded the corpus
    # and built all three).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
