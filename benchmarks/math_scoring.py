"""Math-scoring throughput: samples/s of `verify_many` (worker pool) against one `verify` call at a time.

Workload per benchmark: every gold answer in three formats models use (boxed, "The answer is",
"ANSWER:") plus, per item, another item's gold as a wrong answer. Reads the real benchmark files from
RPT_BENCHMARK_DATA or ../shared/data/benchmarks next to the repository.

    .venv/bin/python benchmarks/math_scoring.py [--workers N] [--benchmarks math500 gsm8k]
"""

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from rpt_transfer.scoring.math import new_pool, verify, verify_many

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "benchmarks"
DATA = Path(os.environ.get("RPT_BENCHMARK_DATA") or SHARED_DATA)
FORMATS = ("\\boxed{{{g}}}", "The answer is ${g}$.", "ANSWER: {g}")


def references(name: str) -> list[str]:
    lines = (DATA / name / "test.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    if name == "gsm8k":
        return [row["answer"].rpartition("####")[2].strip().replace(",", "") for row in rows]
    return [str(row["answer"]) for row in rows]


def workload(golds: list[str]) -> list[tuple[str, str]]:
    right = [(template.format(g=gold), gold) for gold in golds for template in FORMATS]
    wrong = [(f"\\boxed{{{golds[(i + 7) % len(golds)]}}}", gold) for i, gold in enumerate(golds)]
    return right + wrong


def rate(score: Callable[[list[tuple[str, str]]], object], pairs: list[tuple[str, str]]) -> float:
    start = time.perf_counter()
    score(pairs)
    return len(pairs) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=None, help="pool size (default: CPUs, at most 8)")
    parser.add_argument("--benchmarks", nargs="+", default=["math500", "gsm8k"])
    args = parser.parse_args()
    pool = new_pool(args.workers)
    start = time.perf_counter()
    verify_many([("\\boxed{\\frac{1}{2}}", "0.5")] * pool.size, pool=pool)  # start every worker
    started = time.perf_counter() - start
    print(f"pool of {pool.size} workers started in {started:.2f} s ({os.cpu_count()} CPUs)")
    print(f"{'benchmark':<10} {'samples':>8} {'verify_many/s':>14} {'verify/s':>10} {'accuracy':>9}")
    for name in args.benchmarks:
        pairs = workload(references(name))
        batch = rate(lambda p: verify_many(p, pool=pool), pairs)
        verify(*pairs[0])  # start the default pool that single verify uses
        single = rate(lambda p: [verify(c, r) for c, r in p], pairs)
        accuracy = sum(v.correct for v in verify_many(pairs, pool=pool)) / len(pairs)
        print(f"{name:<10} {len(pairs):>8} {batch:>14.0f} {single:>10.0f} {accuracy:>9.3f}")
    pool.close()


if __name__ == "__main__":
    main()
