"""Issue 10's choice cases on every real PubMedQA and MedQA item: strict reads only `ANSWER: <label>`,
flexible also the answer phrases, the option letter of a yes/no question and the option text.

The data are the real benchmark files (read-only, never copied into the repo); without them these tests
skip, saying how to provide them: RPT_BENCHMARK_DATA, a folder holding pubmedqa/ and medqa/ (docs/setup.md).
"""

from pathlib import Path

import pytest

from rpt_transfer.benchmarks import get_benchmark
from rpt_transfer.benchmarks.base import Item
from rpt_transfer.scoring.choice import verify

LETTERS = "ABCDE"

# (format, strict, flexible) for the right option; {label} is its label, {letter} its letter by position
# (A = first option listed), {text} its option text. Any other option in the same format scores 0 under both.
PUBMEDQA_FORMATS = [
    ("ANSWER: {label}", 1.0, 1.0),
    ("ANSWER: {letter}", 0.0, 1.0),  # a yes/no question answered with the option letter
    ("ANSWER: ({letter})", 0.0, 1.0),
    ("Based on the abstract, so the answer is {label}.", 0.0, 1.0),
    ("The results are consistent.\nThe answer is ({letter}).", 0.0, 1.0),
    ("Final answer: **{label}**", 0.0, 1.0),
    ("<think>The answer is {other}.</think>\n{label}", 0.0, 1.0),
]
MEDQA_FORMATS = [
    ("ANSWER: {letter}", 1.0, 1.0),
    ("The findings point to one option, so the answer is {letter}.", 0.0, 1.0),
    ("Considering all options, the answer is ({letter}).", 0.0, 1.0),
    ("ANSWER: {text}", 0.0, 1.0),  # the answer text instead of the letter
    ("The answer is {letter}) {text}", 0.0, 1.0),
    ("**Final Answer**: $\\boxed{{{letter}}}$", 0.0, 1.0),
]
HEDGES = ["ANSWER: {label} or {other}", "The answer is {other} or {label}.", "ANSWER: not {other}"]


@pytest.fixture(scope="module")
def pubmedqa(data_root: Path) -> list[Item]:
    return get_benchmark("pubmedqa").items()


@pytest.fixture(scope="module")
def medqa(data_root: Path) -> list[Item]:
    # two figure questions whose options are only the letters A-E have no text to answer with
    return [item for item in get_benchmark("medqa").items() if item.metadata["choices"][0][1] != "A"]


def fill(template: str, item: Item, index: int) -> str:
    """The template with option `index` of the item as the answer, and another option as {other}."""
    choices = item.metadata["choices"]
    label, text = choices[index]
    other = choices[(index + 1) % len(choices)][0]
    return template.format(label=label, letter=LETTERS[index], text=text, other=other)


def check(items: list[Item], template: str, strict: float, flexible: float) -> None:
    for item in items:
        context = item.metadata
        right = [label for label, _ in context["choices"]].index(item.reference)
        verdict = verify(fill(template, item, right), item.reference, context)
        assert (verdict.correct, verdict.flexible) == (strict, flexible), (item.id, verdict)
        wrong = verify(fill(template, item, (right + 1) % len(context["choices"])), item.reference, context)
        assert (wrong.correct, wrong.flexible) == (0.0, 0.0), (item.id, wrong)


@pytest.mark.parametrize(("template", "strict", "flexible"), PUBMEDQA_FORMATS)
def test_pubmedqa_answer_formats(pubmedqa: list[Item], template: str, strict: float, flexible: float) -> None:
    assert {item.reference for item in pubmedqa} == {"yes", "no", "maybe"}
    check(pubmedqa, template, strict, flexible)


@pytest.mark.parametrize(("template", "strict", "flexible"), MEDQA_FORMATS)
def test_medqa_answer_formats(medqa: list[Item], template: str, strict: float, flexible: float) -> None:
    assert len(medqa) == 1271
    check(medqa, template, strict, flexible)


@pytest.mark.parametrize("template", HEDGES)
@pytest.mark.parametrize("benchmark", ["pubmedqa", "medqa"])
def test_hedged_answers_are_wrong(benchmark: str, template: str, request: pytest.FixtureRequest) -> None:
    items = request.getfixturevalue(benchmark)
    check(items, template, 0.0, 0.0)


def test_medqa_letter_with_another_options_text_is_wrong(medqa: list[Item]) -> None:
    for item in medqa:
        choices = item.metadata["choices"]
        right = [label for label, _ in choices].index(item.reference)
        other_text = choices[(right + 1) % len(choices)][1]
        verdict = verify(f"ANSWER: {item.reference}) {other_text}", item.reference, item.metadata)
        assert (verdict.correct, verdict.flexible) == (0.0, 0.0), (item.id, verdict)
