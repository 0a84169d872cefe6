"""Math-scoring throughput: samples/s of `verify_many` against a plain math-verify loop over the same samples.

Workload per benchmark item: `--samples` completions, cycling through what models write (the gold boxed,
in an "answer is" phrase, after "ANSWER:", in Minerva's "Final Answer" sentence, in a closing prose
sentence; another item's gold, and a plain number, as wrong answers). 16-sample benchmarks (AIME,
AMC) repeat answers like this: `--samples 16` shows the effect. The plain loop is what a script would do
without this project: `math_verify.verify(parse(f"${gold}$"), parse(completion))` per sample (the gold
in `$...$`, as math-verify's README does), in this process, gold parsed every time. Reads the real
benchmark files from RPT_BENCHMARK_DATA or ../shared/data/benchmarks next to the repository. Timings on a
shared machine are noisy: compare the two rates of one run (the ratio).

    .venv/bin/python benchmarks/math_scoring.py [--workers N] [--samples 4] [--benchmarks math500 gsm8k]
"""

import argparse
import json
import logging
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from rpt_transfer.scoring.math import new_pool, verify_many
from rpt_transfer.scoring.math_workers import WorkerPool
from rpt_transfer.scoring.verdict import Verdict

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "benchmarks"
DATA = Path(os.environ.get("RPT_BENCHMARK_DATA") or SHARED_DATA)
RIGHT = "right"
# (template, which answer it writes): the cycle a sample index walks through.
VARIANTS = (
    ("Reasoning first.\nSo the result is $\\boxed{{{g}}}$.", RIGHT),
    ("We simplify the expression. The answer is ${g}$.", RIGHT),
    ("Working...\nANSWER: {g}", RIGHT),
    ("Reasoning first.\n\\boxed{{{g}}}", "wrong"),
    ("Final Answer: The final answer is ${g}$. I hope it is correct.", RIGHT),
    ("Reasoning first.\n\\boxed{{{g}}}", "wrong"),
    ("Reasoning first.\n\\boxed{{{g}}}", "other wrong"),
    ("Putting it together, the value is ${g}$.", RIGHT),  # no box: only the flexible policy reads it
)


def references(name: str) -> list[str]:
    """The gold answers of a benchmark, as its module passes them to the scorer."""
    path = DATA / name / "test.jsonl"
    if not path.exists():
        sys.exit(f"benchmark data {path} not found; set RPT_BENCHMARK_DATA to a folder holding {name}/")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if name == "gsm8k":
        return [row["answer"].rpartition("####")[2].strip().replace(",", "") for row in rows]
    key = "Answer" if rows and "Answer" in rows[0] else "answer"
    return [str(row[key]) for row in rows]


def workload(golds: Sequence[str], samples: int) -> list[tuple[str, str]]:
    """`samples` (completion, reference) pairs per item, answers repeating as in many-sample benchmarks."""
    pairs = []
    for index, gold in enumerate(golds):
        answers = {
            RIGHT: gold,
            "wrong": golds[(index + 7) % len(golds)],
            "other wrong": str(17 * index + 3),  # a plain number, as many wrong answers are
        }
        for sample in range(samples):
            template, which = VARIANTS[sample % len(VARIANTS)]
            pairs.append((template.format(g=answers[which]), gold))
    return pairs


def plain_loop(pairs: Sequence[tuple[str, str]]) -> list[bool]:
    """What one would write with math-verify alone: parse both sides and verify, sample by sample."""
    from math_verify import parse, verify

    return [verify(parse(f"${gold}$"), parse(completion)) for completion, gold in pairs]


class Timing(NamedTuple):
    """One run of one side: wall-clock seconds, and CPU seconds of every process that did the work."""

    wall: float
    cpu: float


def plain_timing(pairs: Sequence[tuple[str, str]]) -> Timing:
    """How long `plain_loop` takes in a fresh interpreter, warmed up like our workers (imports, "1" = "1").

    A fresh process each time, as our pool's workers are: SymPy's and the LaTeX parser's caches, warm
    after one run, would flatter every later run of the loop.
    """
    script = (
        "import json, logging, sys, time; sys.path.insert(0, sys.argv[1]); import math_scoring as m;"
        "logging.getLogger('math_verify').setLevel(logging.ERROR); m.plain_loop([('1', '1')]);"
        "pairs = json.load(sys.stdin); wall, cpu = time.perf_counter(), time.process_time();"
        "m.plain_loop(pairs); print(time.perf_counter() - wall, time.process_time() - cpu)"
    )
    here = str(Path(__file__).resolve().parent)
    done = subprocess.run(
        [sys.executable, "-c", script, here],
        input=json.dumps(pairs),
        capture_output=True,
        text=True,
        check=True,
    )
    wall, cpu = done.stdout.strip().splitlines()[-1].split()
    return Timing(float(wall), float(cpu))


def ours_timing(pairs: Sequence[tuple[str, str]], workers: int | None) -> tuple[Timing, list[Verdict]]:
    """How long `verify_many` takes on a fresh, warmed-up pool (CPU: this process and the workers)."""
    with warm_pool(workers) as pool:
        wall, cpu, workers_cpu = time.perf_counter(), time.process_time(), pool.cpu_seconds()
        verdicts = verify_many(pairs, pool=pool)
        used = time.process_time() - cpu + pool.cpu_seconds() - workers_cpu
        return Timing(time.perf_counter() - wall, used), verdicts


def warm_pool(workers: int | None) -> WorkerPool:
    """A pool whose workers have started (imports and warm-up are not what a batch costs)."""
    pool = new_pool(workers)
    pool.run([(str(task), str(task)) for task in range(pool.size)], timeout=60.0)  # one task per worker
    return pool


def best_of(
    repeats: int, pairs: Sequence[tuple[str, str]], workers: int | None
) -> tuple[Timing, Timing, list[Verdict]]:
    """The fastest of `repeats` runs of each side (ours and plain interleaved), and our verdicts.

    Each run of either side starts from fresh, warmed-up processes, so no run profits from an earlier one.
    """
    ours, plain, verdicts = Timing(math.inf, math.inf), Timing(math.inf, math.inf), []
    for _ in range(repeats):
        timing, verdicts = ours_timing(pairs, workers)
        ours = Timing(min(ours.wall, timing.wall), min(ours.cpu, timing.cpu))
        timing = plain_timing(pairs)
        plain = Timing(min(plain.wall, timing.wall), min(plain.cpu, timing.cpu))
    return ours, plain, verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workers", type=int, default=None, help="pool size (default: CPUs, at most 8)")
    parser.add_argument("--samples", type=int, default=4, help="samples per item (AIME/AMC use 16)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each side; the fastest counts")
    parser.add_argument("--benchmarks", nargs="+", default=["math500", "gsm8k"])
    args = parser.parse_args()
    if args.samples < 1 or args.repeats < 1:
        sys.exit(f"--samples and --repeats must be at least 1, got {args.samples} and {args.repeats}")
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    start = time.perf_counter()
    with warm_pool(args.workers) as pool:
        started = time.perf_counter() - start
        print(f"pool of {pool.size} workers started in {started:.2f} s ({os.cpu_count()} CPUs)")
    print(
        f"{'benchmark':<10} {'samples':>8} {'distinct':>8} {'ours/s':>8} {'plain/s':>8} {'ratio':>6} "
        f"{'cpu ratio':>9} {'strict':>7} {'flexible':>9}"
    )
    for name in args.benchmarks:
        pairs = workload(references(name), args.samples)
        ours, plain, verdicts = best_of(args.repeats, pairs, args.workers)
        strict = sum(v.correct for v in verdicts) / len(pairs)
        flexible = sum(v.flexible or 0.0 for v in verdicts) / len(pairs)
        distinct = len({(v.extracted, reference) for v, (_, reference) in zip(verdicts, pairs, strict=True)})
        rate, baseline = len(pairs) / ours.wall, len(pairs) / plain.wall
        ratio, cpu_ratio = rate / baseline, plain.cpu / ours.cpu
        print(
            f"{name:<10} {len(pairs):>8} {distinct:>8} {rate:>8.0f} {baseline:>8.0f} {ratio:>5.1f}x "
            f"{cpu_ratio:>8.1f}x {strict:>7.3f} {flexible:>9.3f}"
        )


if __name__ == "__main__":
    main()
