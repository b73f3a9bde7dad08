"""Article-body quality on real pages with gold text: newsbeam's extraction vs plain trafilatura.

Reads ../shared/corpus/extraction (gold.jsonl and html/*.html.gz), extracts every page exactly
as the pipeline's ExtractArticles does (`extract_article` on the fetched bytes), and prints
macro precision, recall and F1 over bags of whitespace tokens (the corpus README's method; an
empty prediction scores 0), overall and for English pages, with pages/s; then the same for
`trafilatura.extract` with default settings as the reference; then the share of pages with a
gold publishing date whose `published_at` falls on the right day.

    .venv/bin/python benchmarks/extraction_quality.py [--jsonl OUT]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import trafilatura

from transforms.core import Entry, Page, article_id, canonical_url
from transforms.extract import ExtractionError, extract_article

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "extraction"


def token_prf(predicted: str, gold: str) -> tuple[float, float, float]:
    """Precision, recall and F1 of the bag of whitespace tokens of `predicted` against `gold`."""
    p, g = Counter(predicted.split()), Counter(gold.split())
    if not p or not g:
        return 0.0, 0.0, 0.0
    common = sum((p & g).values())
    precision, recall = common / sum(p.values()), common / sum(g.values())
    f1 = 2 * precision * recall / (precision + recall) if common else 0.0
    return precision, recall, f1


def page_for(item: dict, html: bytes) -> Page:
    url = item["url"]
    canonical = canonical_url(url)
    entry = Entry(feed_url="", feed_title=None, feed_tags=(), feed_index=0, position=0,
                  guid=None, link=url, canonical_url=canonical, article_id=article_id(canonical),
                  title=None, authors=(), published_at=None, updated_at=None, categories=(),
                  summary=None)
    return Page(entry, url, 200, "text/html; charset=utf-8", html, datetime.now(UTC))


def report(name: str, scores: dict[str, tuple[float, float, float]], langs: dict[str, str],
           seconds: float) -> None:
    def macro(ids: list[str]) -> str:
        n = len(ids)
        p, r, f = (sum(scores[i][k] for i in ids) / n for k in range(3))
        return f"P {p:.4f} R {r:.4f} F1 {f:.4f} ({n} pages)"

    everything = list(scores)
    english = [i for i in everything if langs[i] == "en"]
    print(f"{name}: all {macro(everything)}; English {macro(english)};"
          f" {len(everything) / seconds:.1f} pages/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jsonl", help="also write newsbeam's predictions {id, body} here")
    args = parser.parse_args()
    if not CORPUS.is_dir():
        raise SystemExit(f"corpus not found at {CORPUS}")
    gold = [json.loads(line) for line in (CORPUS / "gold.jsonl").open(encoding="utf-8")]
    pages = {g["id"]: gzip.decompress((CORPUS / g["html_file"]).read_bytes()) for g in gold}
    langs = {g["id"]: g["lang"] for g in gold}

    # Warm both up (imports, compiled patterns, language model) before anything is timed.
    for item in gold[:10]:
        trafilatura.extract(pages[item["id"]])
        with contextlib.suppress(ExtractionError):
            extract_article(page_for(item, pages[item["id"]]))

    ours: dict[str, tuple[float, float, float]] = {}
    reference: dict[str, tuple[float, float, float]] = {}
    predictions = {}
    dated = right_day = 0
    methods: Counter[str] = Counter()
    ours_seconds = reference_seconds = 0.0
    # Page by page, one extractor then the other, so drift in the machine's speed (other load,
    # clock scaling) falls on both alike.
    for item in gold:
        html = pages[item["id"]]
        started = time.perf_counter()
        try:
            article = extract_article(page_for(item, html))
            text = article.text
        except ExtractionError:
            article, text = None, ""
        ours_seconds += time.perf_counter() - started
        started = time.perf_counter()
        reference_text = trafilatura.extract(html) or ""
        reference_seconds += time.perf_counter() - started

        predictions[item["id"]] = text
        ours[item["id"]] = token_prf(text, item["body"])
        reference[item["id"]] = token_prf(reference_text, item["body"])
        if article is not None:
            methods[article.extraction_method] += 1
        if item.get("publishing_date"):
            dated += 1
            day = item["publishing_date"][:10]
            if article is not None and article.published_at is not None:
                right_day += article.published_at.date().isoformat() == day

    report("newsbeam", ours, langs, ours_seconds)
    report("trafilatura.extract (defaults)", reference, langs, reference_seconds)
    print(f"speed ratio newsbeam / trafilatura: {reference_seconds / ours_seconds:.2f}")
    print(f"methods: {dict(methods)}")
    print(f"dates: {right_day}/{dated} pages with a gold publishing date on the right day"
          f" ({right_day / dated:.1%})")
    if args.jsonl:
        with open(args.jsonl, "w", encoding="utf-8") as out:
            for item_id, body in predictions.items():
                out.write(json.dumps({"id": item_id, "body": body}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
