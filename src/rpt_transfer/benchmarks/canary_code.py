"""Canary code: one-line Python functions from a short description, the canary study's code domain.

Shaped like MBPP (a description, a named function, asserts run in the sandbox by the `code_function`
scorer) but small enough for a character model: one argument, one `return` line, a few operations and
small constants. The completion is the bare function (`def f(x):` then `    return x + 3`); the scorer takes
an unfenced completion as the whole program. Tasks (operation, constants, function and argument
names) are held out as in `canary_math`: the test seed draws only held-out ones, every other seed the rest.
"""

import random
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from rpt_transfer.benchmarks.base import BenchmarkSpec, Item, SyntheticSource, held_out
from rpt_transfer.scoring.code import function_reference

PROMPT_V1 = "Write a Python function {signature} that returns {description}. Reply with the code only."
TEST_SEED = 20261202
TEST_PERCENT = 20
EVAL_ITEMS = 120
FUNCTION_NAMES = ("f", "g", "h", "calc", "step")
ARGUMENTS = ("x", "n", "v")
MAX_CONSTANT = 19
TEST_INPUTS = (0, 1, 2, 5, 7, 10, -3)
"""Arguments each test calls the function with."""


class Operation:
    """One kind of function: its wording, its Python body and its value, over an argument and constants."""

    def __init__(
        self, words: str, body: str, value: Callable[[int, int, int], int], constants: int = 1
    ) -> None:
        self.words, self.body, self.value, self.constants = words, body, value, constants


OPERATIONS: dict[str, Operation] = {
    "add": Operation("{x} plus {a}", "{x} + {a}", lambda x, a, b: x + a),
    "sub": Operation("{x} minus {a}", "{x} - {a}", lambda x, a, b: x - a),
    "mul": Operation("{x} times {a}", "{x} * {a}", lambda x, a, b: x * a),
    "mod": Operation("{x} modulo {a}", "{x} % {a}", lambda x, a, b: x % a),
    "div": Operation("{x} floor-divided by {a}", "{x} // {a}", lambda x, a, b: x // a),
    "max": Operation("the larger of {x} and {a}", "max({x}, {a})", lambda x, a, b: max(x, a)),
    "square": Operation("{x} squared plus {a}", "{x} * {x} + {a}", lambda x, a, b: x * x + a),
    "affine": Operation("{x} times {a} plus {b}", "{x} * {a} + {b}", lambda x, a, b: x * a + b, constants=2),
}
"""Every operation's constants are 2..MAX_CONSTANT (1 would make `times` and `floor-divided` trivial)."""


def _problem(rng: random.Random) -> tuple[str, int, int]:
    """An operation and its constants (b is 0 where the operation has one constant)."""
    kind = rng.choice(sorted(OPERATIONS))
    a = rng.randint(2, MAX_CONSTANT)
    b = rng.randint(2, MAX_CONSTANT) if OPERATIONS[kind].constants == 2 else 0
    return kind, a, b


def generate_records(seed: int, count: int) -> Iterator[Mapping[str, Any]]:
    """Yield `count` tasks, reproducible for a seed: held-out ones for TEST_SEED, the others otherwise."""
    rng = random.Random(seed)
    test = seed == TEST_SEED
    index = 0
    while index < count:
        kind, a, b = _problem(rng)
        name, arg = rng.choice(FUNCTION_NAMES), rng.choice(ARGUMENTS)
        if held_out(TEST_PERCENT, "canary_code", kind, a, b, name, arg) != test:
            continue
        operation = OPERATIONS[kind]
        yield {
            "id": f"canary_code-{seed}-{index}",
            "kind": kind,
            "name": name,
            "arg": arg,
            "description": operation.words.format(x=arg, a=a, b=b),
            "body": operation.body.format(x=arg, a=a, b=b),
            "cases": [[x, operation.value(x, a, b)] for x in TEST_INPUTS],
        }
        index += 1


def solution(record: Mapping[str, Any]) -> str:
    """The gold program: the function with its one-line body."""
    return f"def {record['name']}({record['arg']}):\n    return {record['body']}"


def demonstration(item: Item) -> str:
    """What pre-training shows after a task: the bare gold function, as the model should write it."""
    return str(item.metadata["solution"])


def to_item(record: Mapping[str, Any]) -> Item:
    """One record to an item; the reference runs one assert per test input. Metadata keeps the solution."""
    name = record["name"]
    test = "".join(f"assert {name}({x}) == {expected}\n" for x, expected in record["cases"])
    return Item(
        id=record["id"],
        prompt_vars={"signature": f"{name}({record['arg']})", "description": record["description"]},
        reference=function_reference(name, test, timeout=5.0),
        metadata={"kind": record["kind"], "solution": solution(record)},
    )


BENCHMARK = BenchmarkSpec(
    name="canary_code",
    version="1",
    domain="code",
    source=SyntheticSource(generate_records, seed=TEST_SEED, count=EVAL_ITEMS),
    to_item=to_item,
    prompt=PROMPT_V1,
    scorer="code_function",
    repeats=1,
    description=(
        f"Synthetic one-line Python functions from a description ({len(OPERATIONS)} operations, "
        f"constants 2..{MAX_CONSTANT}; {EVAL_ITEMS} held-out items): the canary study's code domain."
    ),
    demonstration=demonstration,
)

__all__ = ["BENCHMARK", "TEST_SEED", "generate_records", "solution"]
