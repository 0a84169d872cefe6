"""The benchmark registry: one explicit tuple, no hidden registration.

Real benchmarks join `ALL_BENCHMARKS` one module each; suites name groups of them.
"""

import difflib
from collections.abc import Sequence

from rpt_transfer.benchmarks import (
    aime24,
    amc23,
    bigcodebench,
    canary_code,
    canary_knowledge,
    canary_math,
    codeforces,
    finben,
    gsm8k,
    humaneval,
    legalbench,
    livecodebench,
    math500,
    mbpp,
    medqa,
    polyglot,
    pubmedqa,
    smoke_arith,
    smoke_facts,
    tabfact,
    usaco,
)
from rpt_transfer.benchmarks.base import DOMAINS, BenchmarkSpec, Domain, Item, SyntheticSource, stable_id
from rpt_transfer.errors import UnknownBenchmark

ALL_BENCHMARKS: tuple[BenchmarkSpec, ...] = (
    gsm8k.BENCHMARK,
    math500.BENCHMARK,
    aime24.BENCHMARK,
    amc23.BENCHMARK,
    humaneval.BENCHMARK,
    mbpp.BENCHMARK,
    bigcodebench.BENCHMARK,
    livecodebench.BENCHMARK,
    usaco.BENCHMARK,
    codeforces.BENCHMARK,
    polyglot.BENCHMARK,
    pubmedqa.BENCHMARK,
    medqa.BENCHMARK,
    tabfact.BENCHMARK,
    legalbench.BENCHMARK,
    finben.BENCHMARK,
    smoke_arith.BENCHMARK,
    smoke_facts.BENCHMARK,
    canary_math.BENCHMARK,
    canary_code.BENCHMARK,
    canary_knowledge.BENCHMARK,
)
_BY_NAME = {b.name: b for b in ALL_BENCHMARKS}

SUITES: dict[str, tuple[str, ...]] = {
    "paper-16": (
        "gsm8k",
        "math500",
        "aime24",
        "amc23",
        "humaneval",
        "mbpp",
        "bigcodebench",
        "livecodebench",
        "usaco",
        "codeforces",
        "polyglot",
        "pubmedqa",
        "medqa",
        "tabfact",
        "legalbench",
        "finben",
    ),
    "math": ("gsm8k", "math500", "aime24", "amc23"),
    "code": ("humaneval", "mbpp", "bigcodebench", "livecodebench", "usaco", "codeforces", "polyglot"),
    "knowledge": ("pubmedqa", "medqa", "tabfact", "legalbench", "finben"),
    "smoke": ("smoke_arith", "smoke_facts"),
    "canary": ("canary_math", "canary_code", "canary_knowledge"),
}


def accepted_names() -> list[str]:
    """Every benchmark and suite name, for error messages and `benchmarks list`."""
    return sorted(_BY_NAME) + sorted(SUITES)


def get_benchmark(name: str) -> BenchmarkSpec:
    """The benchmark called `name`; unknown names raise with close matches and every accepted name."""
    if name in _BY_NAME:
        return _BY_NAME[name]
    raise UnknownBenchmark(_unknown_message(name))


def expand(names: Sequence[str]) -> list[BenchmarkSpec]:
    """Benchmark and suite names to benchmarks, deduplicated, in first-mention order."""
    seen: dict[str, BenchmarkSpec] = {}
    for name in names:
        members = SUITES.get(name, (name,))
        for member in members:
            seen.setdefault(member, get_benchmark(member))
    return list(seen.values())


def _unknown_message(name: str) -> str:
    close = difflib.get_close_matches(name, accepted_names(), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"unknown benchmark {name!r}{hint}; accepted: {', '.join(accepted_names())}"


__all__ = [
    "ALL_BENCHMARKS",
    "DOMAINS",
    "SUITES",
    "BenchmarkSpec",
    "Domain",
    "Item",
    "SyntheticSource",
    "accepted_names",
    "expand",
    "get_benchmark",
    "stable_id",
]
