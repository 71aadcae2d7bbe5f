"""Speed of the FAQ matcher in process, with every language loaded: answers per second,
p50/p99 latency, and the memory the loaded knowledge base takes.

    .venv/bin/python bench/faq_speed.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
import tracemalloc
from pathlib import Path

from core.i18n import SUPPORTED
from core.knowledge import KnowledgeBase

REPO = Path(__file__).resolve().parent.parent
SETS = [
    REPO.parent / "shared" / "eval" / "faq_dev.jsonl",
    REPO / "tests" / "data" / "faq_questions.jsonl",
]


def main(rounds: int) -> None:
    questions = [
        json.loads(line)["text"]
        for path in SETS
        if path.exists()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    tracemalloc.start()
    started = time.perf_counter()
    kb = KnowledgeBase.read(REPO / "locales", SUPPORTED)
    built = time.perf_counter() - started
    index_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    started = time.perf_counter()
    KnowledgeBase.load(REPO / "locales", SUPPORTED)
    cached = time.perf_counter() - started
    for question in questions[:50]:  # warm up
        kb.match(question)
    latencies = []
    for _ in range(rounds):
        for question in questions:
            begin = time.perf_counter()
            kb.match(question)
            kb.detector.detect(question)
            latencies.append(time.perf_counter() - begin)
    latencies.sort()
    total = sum(latencies)
    print(
        f"knowledge base: {len(kb.meta)} entries x {len(kb.languages)} languages, "
        f"{kb._matrix.shape[0]:,} phrasings, {len(kb._vocabulary):,} features"
    )
    print(
        f"build: {built:.2f} s; load from cache: {cached:.3f} s; "
        f"index memory (tracemalloc): {index_bytes / 1e6:.0f} MB; "
        f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
    print(
        f"{len(latencies):,} questions (match + language detection), one core: "
        f"{len(latencies) / total:,.0f} answers/s"
    )
    print(
        f"latency p50 {statistics.median(latencies) * 1000:.2f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.2f} ms, "
        f"max {latencies[-1] * 1000:.2f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    main(parser.parse_args().rounds)
