"""Memory over a long run of isolated extraction: 5,000 real pages, sampled every 500.

Feeds the corpus pages (cycled) through the process pool ExtractArticles and ParseEntries use
(its workers import what both need) and prints the resident memory of the process feeding the
pool (without Beam) and of each worker as the run goes on. Workers are replaced every 500
tasks, so their memory cannot creep; the feeding process must stay flat on its own.

    .venv/bin/python benchmarks/extraction_memory.py [--pages 5000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import time
from pathlib import Path

from extraction_quality import page_for  # the sibling benchmark's Page builder

from transforms.core import EXTRACT_ARTICLE, IsolationSettings
from transforms.core.workers import started_pool

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "extraction"


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=5000)
    parser.add_argument("--every", type=int, default=500)
    args = parser.parse_args()
    gold = [json.loads(line) for line in (CORPUS / "gold.jsonl").open(encoding="utf-8")]
    pages = [page_for(g, gzip.decompress((CORPUS / g["html_file"]).read_bytes())) for g in gold]
    pool = started_pool(IsolationSettings())  # the pipeline's workers, as they are
    started = time.perf_counter()
    failed = 0
    try:
        for batch_start in range(0, args.pages, args.every):
            batch = [pages[n % len(pages)] for n in range(batch_start,
                                                          min(args.pages,
                                                              batch_start + args.every))]
            for future in [pool.submit(EXTRACT_ARTICLE, page) for page in batch]:
                if future.exception() is not None:
                    failed += 1
            workers = ", ".join(f"{rss_mib(pid):.0f}" for pid in pool.pids())
            print(f"after {batch_start + len(batch):>5} pages: feeding process"
                  f" {rss_mib(os.getpid()):.0f} MiB, workers [{workers}] MiB,"
                  f" {time.perf_counter() - started:.0f} s", flush=True)
    finally:
        pool.close()
    print(f"{args.pages} pages, {failed} without an article")


if __name__ == "__main__":
    main()
