"""Canary math: one-step arithmetic word problems, the math domain of the canary interventional study.

The canary study pre-trains a tiny character model that gets these only partly right, then checks that RL
with the project's own scorer as reward improves it. Test prompts are held out whole (template, operands,
name and thing, `held_out`): the test seed draws only held-out prompts and every other seed only the rest,
so no training example is a test question. The sums themselves do recur in other words, and a small model
has only seen (and memorised) some of them: partial competence that RL on training prompts can sharpen.
"""

import random
from collections.abc import Iterator, Mapping
from typing import Any

from rpt_transfer.benchmarks.base import BenchmarkSpec, Item, SyntheticSource, held_out

PROMPT_V1 = "{question} Reply ANSWER: <number>"
TEST_SEED = 20261201
TEST_PERCENT = 20
"""Share of prompts (template, operands, name, thing) kept for the test split."""
EVAL_ITEMS = 150
NAMES = ("Ann", "Bob", "Cy", "Dee", "Eli", "Fay", "Gus", "Ivy")
THINGS = ("apples", "pens", "coins", "cards", "eggs", "nuts", "shells", "stamps")
TEMPLATES: dict[str, str] = {
    "add": "{name} has {a} {thing} and gets {b} more. How many {thing} now?",
    "sub": "{name} has {a} {thing} and gives away {b}. How many are left?",
    "mul": "{name} has {a} bags of {b} {thing}. How many {thing} in all?",
}
MAX_ADD = 10
"""Operands of sums and differences are 0..MAX_ADD (a difference never goes below zero)."""
MAX_MUL = 5
"""Factors are 2..MAX_MUL."""


def _operands(rng: random.Random, kind: str) -> tuple[int, int, int]:
    """Operands and answer of one problem of a template."""
    if kind == "add":
        a, b = rng.randint(0, MAX_ADD), rng.randint(0, MAX_ADD)
        return a, b, a + b
    if kind == "sub":
        a = rng.randint(0, MAX_ADD)
        b = rng.randint(0, a)
        return a, b, a - b
    a, b = rng.randint(2, MAX_MUL), rng.randint(2, MAX_MUL)
    return a, b, a * b


def generate_records(seed: int, count: int) -> Iterator[Mapping[str, Any]]:
    """Yield `count` problems, reproducible for a seed: held-out ones for TEST_SEED, the others otherwise."""
    rng = random.Random(seed)
    test = seed == TEST_SEED
    index = 0
    while index < count:
        kind = rng.choice(sorted(TEMPLATES))
        a, b, answer = _operands(rng, kind)
        name, thing = rng.choice(NAMES), rng.choice(THINGS)
        if held_out(TEST_PERCENT, "canary_math", kind, a, b, name, thing) != test:
            continue
        question = TEMPLATES[kind].format(name=name, thing=thing, a=a, b=b)
        yield {"id": f"canary_math-{seed}-{index}", "kind": kind, "question": question, "answer": answer}
        index += 1


def to_item(record: Mapping[str, Any]) -> Item:
    """One record to an item; the reference is the answer as text."""
    return Item(
        id=record["id"],
        prompt_vars={"question": record["question"]},
        reference=str(record["answer"]),
        metadata={"kind": record["kind"]},
    )


BENCHMARK = BenchmarkSpec(
    name="canary_math",
    version="1",
    domain="math",
    source=SyntheticSource(generate_records, seed=TEST_SEED, count=EVAL_ITEMS),
    to_item=to_item,
    prompt=PROMPT_V1,
    scorer="math",
    repeats=1,
    description=(
        f"Synthetic one-step word problems (add, subtract to 0..{MAX_ADD}, multiply 2..{MAX_MUL}; "
        f"{EVAL_ITEMS} held-out items): the canary study's math domain."
    ),
)

__all__ = ["BENCHMARK", "TEST_SEED", "generate_records"]
