"""Smoke arithmetic: sums of two small numbers, a synthetic math benchmark for the offline smoke study.

It exists so the whole pipeline (generation, math scorer, report) runs on a laptop with a tiny model;
its numbers say nothing about real models.
"""

import random
from collections.abc import Iterator, Mapping
from typing import Any

from rpt_transfer.benchmarks.base import BenchmarkSpec, Item, SyntheticSource

PROMPT_V1 = "What is {a}+{b}? Reply ANSWER: <number>"
TEST_SEED = 20261126
MAX_OPERAND = 20


def generate_records(seed: int, count: int) -> Iterator[Mapping[str, Any]]:
    """Yield `count` sums with operands in [0, MAX_OPERAND], reproducible for a seed."""
    rng = random.Random(seed)
    for index in range(count):
        a, b = rng.randint(0, MAX_OPERAND), rng.randint(0, MAX_OPERAND)
        yield {"id": f"smoke_arith-{seed}-{index}", "a": a, "b": b, "answer": a + b}


def to_item(record: Mapping[str, Any]) -> Item:
    """One record to an item; the reference is the sum as text."""
    return Item(
        id=record["id"],
        prompt_vars={"a": str(record["a"]), "b": str(record["b"])},
        reference=str(record["answer"]),
    )


BENCHMARK = BenchmarkSpec(
    name="smoke_arith",
    version="1",
    domain="math",
    source=SyntheticSource(generate_records, seed=TEST_SEED, count=40),
    to_item=to_item,
    prompt=PROMPT_V1,
    scorer="math",
    repeats=1,
    description="Synthetic sums a+b with a, b in 0..20 (40 items); smoke-test stand-in for math benchmarks.",
)
