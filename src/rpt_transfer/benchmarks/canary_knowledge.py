"""Canary knowledge: multiple choice about a made-up world of creatures, the canary study's knowledge domain.

Each creature has a colour, a home, a food and a sound, each one of four values. Pre-training reads every
creature's facts as plain statements (`documents`), but question-and-answer demonstrations only about the
training creatures; the test asks about the held-out creatures, so a model must recall facts it only read,
as real knowledge benchmarks ask. The demonstration first recalls the fact in the words of the statements,
then answers: a route a tiny model can learn and RL can sharpen. An attribute's four values are always the
options, in a fixed order, so the letter follows from the recalled value: a character model of this size
does not learn to look a value up among shuffled options, and recall is what this benchmark is about.
"""

import random
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any, NamedTuple

from rpt_transfer.benchmarks.base import BenchmarkSpec, Item, SyntheticSource
from rpt_transfer.hashing import short_hash

PROMPT_V1 = "{question} A) {A} B) {B} C) {C} D) {D} Reply ANSWER: <letter>"
TEST_SEED = 20261203
WORLD_SEED = 11
WORLD_SIZE = 64
TEST_CREATURES = WORLD_SIZE // 4
"""Creatures whose questions only the test asks."""
LETTERS = ("A", "B", "C", "D")
_SYLLABLES = ("zor", "bla", "kin", "tu", "mor", "fex", "qua", "lim", "dro", "pel", "vun", "sto", "gri", "nax")


class Attribute(NamedTuple):
    """A property of every creature: its four values (the options, in order), its question, its statement."""

    values: tuple[str, ...]
    question: str
    statement: str


ATTRIBUTES: dict[str, Attribute] = {
    "colour": Attribute(
        ("red", "blue", "green", "gold"),
        "What colour is the {e}?",
        "The {e} is {v}.",
    ),
    "home": Attribute(
        ("cave", "lake", "forest", "desert"),
        "Where does the {e} live?",
        "The {e} lives in the {v}.",
    ),
    "food": Attribute(
        ("moss", "fish", "seeds", "honey"),
        "What does the {e} eat?",
        "The {e} eats {v}.",
    ),
    "sound": Attribute(
        ("hums", "buzzes", "clicks", "hisses"),
        "What sound does the {e} make?",
        "The {e} {v}.",
    ),
}


@cache
def world() -> dict[str, dict[str, str]]:
    """The fixed world: creature -> attribute -> value, the same on every machine."""
    rng = random.Random(WORLD_SEED)
    creatures: dict[str, dict[str, str]] = {}
    while len(creatures) < WORLD_SIZE:
        name = "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 3))))
        if name not in creatures:
            creatures[name] = {key: rng.choice(attribute.values) for key, attribute in ATTRIBUTES.items()}
    return creatures


@cache
def test_creatures() -> frozenset[str]:
    """The creatures only the test asks about: a fixed, content-chosen quarter of the world."""
    ranked = sorted(world(), key=lambda creature: short_hash(["canary_knowledge", creature]))
    return frozenset(ranked[:TEST_CREATURES])


def is_test_creature(creature: str) -> bool:
    """Whether only the test asks about this creature."""
    return creature in test_creatures()


def statement(creature: str, key: str) -> str:
    """One fact in plain words, as pre-training reads it (e.g. `The zorblat is blue.`)."""
    return ATTRIBUTES[key].statement.format(e=creature, v=world()[creature][key])


def documents(seed: int, count: int) -> list[str]:
    """`count` pre-training paragraphs, each all facts of one creature, every creature in turn.

    Creatures come in seeded shuffled rounds and a paragraph's statements in seeded order, so each creature
    (train and test alike) is read about equally often and not always in the same order.
    """
    rng = random.Random(seed)
    creatures = sorted(world())
    paragraphs: list[str] = []
    while len(paragraphs) < count:
        for creature in rng.sample(creatures, len(creatures))[: count - len(paragraphs)]:
            keys = rng.sample(sorted(ATTRIBUTES), len(ATTRIBUTES))
            paragraphs.append(" ".join(statement(creature, key) for key in keys))
    return paragraphs


def generate_records(seed: int, count: int) -> Iterator[Mapping[str, Any]]:
    """Yield `count` questions, reproducible for a seed.

    TEST_SEED: every question about the test creatures in a fixed order (then again, if `count` asks for
    more); any other seed: random questions about the other creatures.
    """
    rng = random.Random(seed)
    test = seed == TEST_SEED
    facts = world()
    questions = [(c, key) for c in sorted(facts) if is_test_creature(c) == test for key in sorted(ATTRIBUTES)]
    for index in range(count):
        creature, key = questions[index % len(questions)] if test else rng.choice(questions)
        right = facts[creature][key]
        options = list(ATTRIBUTES[key].values)
        yield {
            "id": f"canary_knowledge-{seed}-{index}",
            "creature": creature,
            "attribute": key,
            "options": options,
            "answer": LETTERS[options.index(right)],
        }


def to_item(record: Mapping[str, Any]) -> Item:
    """One record to an item; the reference is the letter of the right option."""
    question = ATTRIBUTES[record["attribute"]].question.format(e=record["creature"])
    return Item(
        id=record["id"],
        prompt_vars={"question": question, **dict(zip(LETTERS, record["options"], strict=True))},
        reference=record["answer"],
        metadata={
            "creature": record["creature"],
            "attribute": record["attribute"],
            "choices": [list(pair) for pair in zip(LETTERS, record["options"], strict=True)],
        },
    )


def demonstration(item: Item) -> str:
    """Recall the fact as the statements put it, then answer, e.g. `The zorblat is blue. ANSWER: B`."""
    return f"{statement(item.metadata['creature'], item.metadata['attribute'])} ANSWER: {item.reference}"


BENCHMARK = BenchmarkSpec(
    name="canary_knowledge",
    version="1",
    domain="knowledge",
    source=SyntheticSource(generate_records, seed=TEST_SEED, count=TEST_CREATURES * len(ATTRIBUTES)),
    to_item=to_item,
    prompt=PROMPT_V1,
    scorer="choice",
    repeats=1,
    description=(
        f"Synthetic 4-way multiple choice about a made-up world ({WORLD_SIZE} creatures x {len(ATTRIBUTES)} "
        f"facts; all questions on {TEST_CREATURES} held-out creatures): the canary study's knowledge domain."
    ),
    demonstration=demonstration,
    documents=documents,
)

__all__ = ["BENCHMARK", "TEST_SEED", "documents", "generate_records", "world"]
