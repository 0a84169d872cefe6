"""Every real gold answer scores 1 in the formats models write it in, and another item's gold scores 0.

The data are the real benchmark files (read-only, never copied into the repo); without them these tests
skip, saying how to provide them: RPT_BENCHMARK_DATA, a folder holding gsm8k/, math500/, aime24/ and amc23/
(see docs/setup.md).
"""

import functools
import json
import re
from decimal import Decimal

import pytest

from conftest import benchmark_data
from rpt_transfer.scoring.math import verify_many

# How models write a final answer: {g} is the gold as the model would write it.
FORMATS = {
    "boxed": "\\boxed{{{g}}}",
    "answer is": "The answer is {g}.",
    "answer is $": "The answer is ${g}$.",
    "ANSWER:": "ANSWER: {g}",
    "chain of thought": (
        "Let me work through this step by step.\nFirst, 2 + 3 = 5, so x = 5 is not yet the answer.\n"
        "Therefore the final result is $\\boxed{{{g}}}$."
    ),
    "Minerva": "Final Answer: The final answer is ${g}$. I hope it is correct.",
    "think, then box": "<think>\nMaybe \\boxed{{7}}? ANSWER: 7\n</think>\n\n**Final Answer**\n\\[\n\\boxed{{{g}}}\n\\]",
}
NUMBER_FORMATS = {**FORMATS, "####": "#### {g}", "units": "\\boxed{{{g} \\text{{ units}}}}"}
# No box and no marker: only the flexible policy reads these (issue 10: prose answers scored 0).
PROSE_FORMATS = {
    "closing sentence": "We simplify step by step.\nPutting it together, the value is ${g}$.",
    "only the answer": "{g}",
    "display math last": "We simplify step by step.\n\n$$\n{g}\n$$",
}
WRONG_FORMATS = ("\\boxed{{{g}}}", "ANSWER: {g}", "The answer is ${g}$.")


def _rows(name: str) -> list[dict]:
    path = benchmark_data(f"{name}/test.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _thousands(number: str) -> str:
    """An integer as a model may write it, with thousands separators ("1450000" -> "1,450,000")."""
    return f"{int(number):,}" if re.fullmatch(r"-?\d+", number) else number


@functools.cache
def items(name: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(reference, ways a model writes that same answer) for every item of a benchmark."""
    rows = _rows(name)
    if name == "gsm8k":  # the benchmark passes the number after "####", separators dropped
        golds = [row["answer"].rpartition("####")[2].strip().replace(",", "") for row in rows]
        return tuple((gold, (gold, _thousands(gold))) for gold in golds)
    if name == "amc23":  # float references ("27.0"); models write "27"
        return tuple((str(row["answer"]), (str(row["answer"]), f"{row['answer']:g}")) for row in rows)
    if name == "aime24":  # "025"; models write "25"
        return tuple((row["answer"], (row["answer"], str(int(row["answer"])))) for row in rows)
    return tuple((row["answer"], (row["answer"],)) for row in rows)


def _key(reference: str) -> str:
    """A canonical form, independent of the scorer, to tell whether two references are the same answer."""
    if re.fullmatch(r"-?[\d,]*\.?\d+", reference):
        return str(Decimal(reference.replace(",", "")).normalize())
    text = re.sub(r"\s|\\left|\\right|\\!|\\,", "", reference).replace("\\dfrac", "\\frac")
    return re.sub(r"^[a-z](?:=|\\in)", "", text)  # "x=5" is the answer 5


def _different_item(references: list[str], index: int) -> str:
    """The reference of the next item whose answer really differs (equal answers across items exist)."""
    mine = _key(references[index])
    order = references[index + 1 :] + references[:index]
    return next(other for other in order if _key(other) != mine)


BENCHMARKS = ["math500", "gsm8k", "aime24", "amc23"]


@pytest.mark.parametrize("name", BENCHMARKS)
def test_gold_answers_score_one_in_every_format(name: str) -> None:
    formats = FORMATS if name == "math500" else NUMBER_FORMATS
    pairs, labels = [], []
    for reference, writings in items(name):
        for label, template in formats.items():
            for written in writings:
                pairs.append((template.format(g=written), reference))
                labels.append(label)
    verdicts = verify_many(pairs)
    failures = [
        f"{label}: {completion!r} vs {reference!r}: {verdict.reason} {verdict.explanation}"
        for (completion, reference), label, verdict in zip(pairs, labels, verdicts, strict=True)
        if verdict.correct != 1.0
    ]
    assert not failures, f"{len(failures)}/{len(pairs)} gold answers not scored correct:\n" + "\n".join(
        failures[:20]
    )


@pytest.mark.parametrize("name", BENCHMARKS)
def test_another_items_gold_scores_zero(name: str) -> None:
    references = [reference for reference, _ in items(name)]
    pairs = [
        (template.format(g=_different_item(references, index)), reference)
        for index, reference in enumerate(references)
        for template in WRONG_FORMATS
    ]
    verdicts = verify_many(pairs)
    failures = [
        f"{completion!r} vs {reference!r}: {verdict}"
        for (completion, reference), verdict in zip(pairs, verdicts, strict=True)
        if verdict.correct != 0.0 or verdict.reason is not None  # a wrong answer, read as an answer
    ]
    assert not failures, f"{len(failures)}/{len(pairs)} wrong answers not scored 0:\n" + "\n".join(
        failures[:20]
    )


@pytest.mark.parametrize("name", BENCHMARKS)
def test_flexible_reads_gold_answers_written_without_box_or_marker(name: str) -> None:
    pairs = [
        (template.format(g=written), reference)
        for reference, writings in items(name)
        for template in PROSE_FORMATS.values()
        for written in writings[:1]
    ]
    verdicts = verify_many(pairs)
    failures = [
        f"{completion!r} vs {reference!r}: {verdict.flexible_extracted!r} {verdict.explanation}"
        for (completion, reference), verdict in zip(pairs, verdicts, strict=True)
        if verdict.flexible != 1.0 or verdict.format_followed
    ]
    assert not failures, f"{len(failures)}/{len(pairs)} prose gold answers not read:\n" + "\n".join(
        failures[:20]
    )
