"""Smoke facts: multiple-choice questions about a made-up world, a synthetic knowledge benchmark.

The tiny smoke models read the world's facts in pre-training; the questions test whether they recall them.
Like `smoke_arith`, it exists to exercise the pipeline, not to measure real models.
"""

import random
from collections.abc import Iterator, Mapping
from typing import Any

from rpt_transfer.benchmarks.base import BenchmarkSpec, Item, SyntheticSource

PROMPT_V1 = "Capital of {country}? A) {A} B) {B} C) {C} D) {D} Reply ANSWER: <letter>"
TEST_SEED = 20261127
WORLD_SEED = 7
WORLD_SIZE = 16
LETTERS = ("A", "B", "C", "D")
_SYLLABLES = ("ka", "lo", "mi", "ru", "te", "zo", "pa", "ne", "vi", "so", "da", "ke", "bu", "fi", "go", "ha")


def _name(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(syllables)).capitalize()


def world() -> dict[str, str]:
    """The fixed world: country -> capital, the same on every machine."""
    rng = random.Random(WORLD_SEED)
    countries: dict[str, str] = {}
    while len(countries) < WORLD_SIZE:
        country = _name(rng, 3)
        capital = _name(rng, 2)
        if country not in countries and capital not in countries.values():
            countries[country] = capital
    return countries


def fact_sentences() -> list[str]:
    """Plain statements of every fact, for pre-training corpora."""
    return [f"The capital of {country} is {capital}." for country, capital in world().items()]


def generate_records(seed: int, count: int) -> Iterator[Mapping[str, Any]]:
    """Yield `count` questions with shuffled options, reproducible for a seed."""
    rng = random.Random(seed)
    facts = world()
    countries = sorted(facts)
    for index in range(count):
        country = countries[index % len(countries)]
        distractors = rng.sample([c for c in facts.values() if c != facts[country]], 3)
        options = [facts[country], *distractors]
        rng.shuffle(options)
        answer = LETTERS[options.index(facts[country])]
        yield {"id": f"smoke_facts-{seed}-{index}", "country": country, "options": options, "answer": answer}


def to_item(record: Mapping[str, Any]) -> Item:
    """One record to an item; the reference is the letter of the right option."""
    options = dict(zip(LETTERS, record["options"], strict=True))
    return Item(
        id=record["id"],
        prompt_vars={"country": record["country"], **options},
        reference=record["answer"],
        metadata={"choices": [[letter, text] for letter, text in options.items()]},
    )


BENCHMARK = BenchmarkSpec(
    name="smoke_facts",
    version="1",
    domain="knowledge",
    source=SyntheticSource(generate_records, seed=TEST_SEED, count=32),
    to_item=to_item,
    prompt=PROMPT_V1,
    scorer="choice",
    repeats=1,
    description="Synthetic 4-way multiple choice about capitals of a made-up world (32 items).",
)
