"""The choice verifier's two policies: strict (the `ANSWER: <label>` line the prompt asks for) and flexible
(the final answer wherever a careful human grader would look), on the cases of issue 10 and hostile input."""

import itertools
import time

import pytest

from rpt_transfer.errors import RptError
from rpt_transfer.scoring import get_scorer
from rpt_transfer.scoring.choice import verify

LETTERED = [["A", "Paris"], ["B", "London"], ["C", "Rome"], ["D", "Berlin"]]
"""A lettered multiple-choice item (as MedQA, FinBen CFA, canary/smoke knowledge): labels A-D, option texts."""
YES_NO_MAYBE = [["yes", "yes"], ["no", "no"], ["maybe", "maybe"]]
"""PubMedQA's labels, in the order its prompt lists them."""


@pytest.mark.parametrize(
    ("completion", "reference", "correct", "reason"),
    [
        ("ANSWER: B", "B", 1.0, None),
        ("ANSWER: b", "B", 1.0, None),
        ("ANSWER: (B)", "B", 1.0, None),
        ("ANSWER: B.", "B", 1.0, None),
        ("ANSWER: A or B", "B", 0.0, None),  # hedging is wrong, never a lucky match
        ("ANSWER: BA", "B", 0.0, None),
        ("ANSWER: yes", "yes", 1.0, None),
        ("I think B", "B", 0.0, "no_answer"),
    ],
)
def test_choice_verdicts(completion: str, reference: str, correct: float, reason: str | None) -> None:
    verdict = verify(completion, reference)
    assert (verdict.correct, verdict.reason) == (correct, reason)


# (completion, reference, choices, strict correct, strict reason, flexible correct, format followed)
POLICY_CASES = [
    # issue 10, section 3: answer phrases the strict policy cannot read
    ("B is the capital.\nso the answer is B.", "B", LETTERED, 0.0, "no_answer", 1.0, False),
    ("Rome is in Italy, so the answer is (D).", "D", LETTERED, 0.0, "no_answer", 1.0, False),
    ("so the answer is B.", "C", LETTERED, 0.0, "no_answer", 0.0, False),
    # a yes/no question answered with the option letter (yes/no/maybe listed as A/B/C)
    ("The trial supports it.\nANSWER: A", "yes", YES_NO_MAYBE, 0.0, None, 1.0, False),
    ("ANSWER: B", "no", YES_NO_MAYBE, 0.0, None, 1.0, False),
    ("ANSWER: (C)", "maybe", YES_NO_MAYBE, 0.0, None, 1.0, False),
    ("ANSWER: B", "yes", YES_NO_MAYBE, 0.0, None, 0.0, False),
    ("ANSWER: D", "yes", YES_NO_MAYBE, 0.0, None, 0.0, False),  # no fourth option
    ("ANSWER: A", "yes", None, 0.0, None, 0.0, True),  # without the item's choices no letter means a label
    # the option text instead of the letter
    ("ANSWER: London", "B", LETTERED, 0.0, None, 1.0, False),
    ("The answer is Berlin.", "D", LETTERED, 0.0, "no_answer", 1.0, False),
    ("ANSWER: B) London", "B", LETTERED, 0.0, None, 1.0, False),
    ("ANSWER: (B) London", "B", LETTERED, 0.0, None, 1.0, False),
    ("ANSWER: B (London)", "B", LETTERED, 0.0, None, 1.0, False),
    ("ANSWER: B) Paris", "B", LETTERED, 0.0, None, 0.0, False),  # letter and text disagree
    ("ANSWER: Madrid", "B", LETTERED, 0.0, None, 0.0, False),
    # other places a grader looks: markers, boxes, bold, the final line or sentence
    ("Final answer: **yes**", "yes", YES_NO_MAYBE, 0.0, None, 1.0, False),
    ("**Answer**: B", "B", LETTERED, 0.0, "no_answer", 1.0, False),
    ("**Final Answer**\n\n**B**", "B", LETTERED, 0.0, "no_answer", 1.0, False),
    ("Hence $\\boxed{B}$", "B", LETTERED, 0.0, "no_answer", 1.0, False),
    ("\\boxed{\\text{(C)}}", "C", LETTERED, 0.0, "no_answer", 1.0, False),
    ("Let me think.\n\nB", "B", LETTERED, 0.0, "no_answer", 1.0, False),
    ("London is the capital. Therefore, B.", "B", LETTERED, 0.0, "no_answer", 1.0, False),
    ("The evidence is clear.\nYes.", "yes", YES_NO_MAYBE, 0.0, "no_answer", 1.0, False),
    ("The answer is yes, because the trial showed it.", "yes", YES_NO_MAYBE, 0.0, "no_answer", 1.0, False),
    ("The correct option is B since London is the capital.", "B", LETTERED, 0.0, "no_answer", 1.0, False),
    ("ANSWER: B. London is the capital of the UK.", "B", LETTERED, 0.0, None, 1.0, False),
    ("ANSWER: B - the capital of England", "B", LETTERED, 0.0, None, 1.0, False),
    ("ANSWER: Maybe, the evidence is mixed", "maybe", YES_NO_MAYBE, 0.0, None, 1.0, False),
    ("ANSWER: B because Paris is in France", "B", LETTERED, 0.0, None, 1.0, False),
    ("B is the correct answer.", "B", LETTERED, 0.0, "no_answer", 1.0, False),
    ("I'll go with B.", "B", LETTERED, 0.0, "no_answer", 1.0, False),
    ("Paris is wrong.\nA) Paris\nB) London\n\nB) London", "B", LETTERED, 0.0, "no_answer", 1.0, False),
    ("ANSWER: **B**", "B", LETTERED, 0.0, None, 1.0, False),
    ("ANSWER: option B", "B", LETTERED, 0.0, None, 1.0, False),
    ("I reply in the form ANSWER: <label>.\nThe answer is B.", "B", LETTERED, 0.0, None, 1.0, False),
    ("ANSWER: I am not sure yet.\nAfter checking: the answer is B.", "B", LETTERED, 0.0, None, 1.0, False),
    # <think> removed: only what the model finally says counts
    ("<think>the answer is B</think>\nThe answer is C.", "B", LETTERED, 0.0, "no_answer", 0.0, False),
    ("<think>the answer is B</think>\nThe answer is C.", "C", LETTERED, 0.0, "no_answer", 1.0, False),
    ("<think>ANSWER: B\nthe answer is B", "B", LETTERED, 0.0, "no_answer", 0.0, False),  # cut off thinking
    # strict hits stay hits
    ("ANSWER: B", "B", LETTERED, 1.0, None, 1.0, True),
    ("ANSWER: (b).", "B", LETTERED, 1.0, None, 1.0, True),
    ("\\boxed{C}\nANSWER: B", "B", LETTERED, 1.0, None, 1.0, True),  # the ANSWER line comes first
    ("ANSWER: yes", "yes", YES_NO_MAYBE, 1.0, None, 1.0, True),
    (
        "ANSWER: entailed",
        "entailed",
        [["entailed", "entailed"], ["refuted", "refuted"]],
        1.0,
        None,
        1.0,
        True,
    ),
    # hedging, negation and several labels are wrong, never a lucky match
    ("ANSWER: A or B", "B", LETTERED, 0.0, None, 0.0, False),
    ("ANSWER: A or B\nI lean to it.", "B", LETTERED, 0.0, None, 0.0, False),
    ("ANSWER: not B", "B", LETTERED, 0.0, None, 0.0, False),
    ("ANSWER: A, B", "B", LETTERED, 0.0, None, 0.0, False),
    ("ANSWER: B and C", "B", LETTERED, 0.0, None, 0.0, False),
    ("ANSWER: B\n\nANSWER: C", "B", LETTERED, 0.0, None, 0.0, True),  # the last answer counts
    ("The answer is B or C.", "B", LETTERED, 0.0, "no_answer", 0.0, False),
    ("The answer is either B or C.", "C", LETTERED, 0.0, "no_answer", 0.0, False),
    ("The answer is probably B.", "B", LETTERED, 0.0, "no_answer", 0.0, False),
    ("The answer is not B.", "B", LETTERED, 0.0, "no_answer", 0.0, False),
    ("The answer is yes or no.", "yes", YES_NO_MAYBE, 0.0, "no_answer", 0.0, False),
    ("It could be A, B or C.\nB or C", "B", LETTERED, 0.0, "no_answer", 0.0, False),
    ("I think it is B but it might be C", "B", LETTERED, 0.0, "no_answer", 0.0, False),
    ("ANSWER: yes, no", "yes", YES_NO_MAYBE, 0.0, None, 0.0, False),
    ("ANSWER: A) London", "B", LETTERED, 0.0, None, 0.0, False),  # letter A, text of B
    ("A) Paris\nB) London\nC) Rome\nD) Berlin", "D", LETTERED, 0.0, "no_answer", 0.0, False),  # a list
    ("ANSWER: B - Paris", "B", LETTERED, 0.0, None, 0.0, False),  # the aside names another option
    ("ANSWER: B, not A", "B", LETTERED, 0.0, None, 0.0, False),
    ("ANSWER: yes, there is no effect", "yes", YES_NO_MAYBE, 0.0, None, 0.0, False),
    ("Based on the study, yes.", "yes", YES_NO_MAYBE, 0.0, "no_answer", 0.0, False),  # not only a label
    ("Nothing to say.", "B", LETTERED, 0.0, "no_answer", 0.0, False),
    ("", "B", LETTERED, 0.0, "no_answer", 0.0, False),
]


@pytest.mark.parametrize(
    ("completion", "reference", "choices", "correct", "reason", "flexible", "followed"), POLICY_CASES
)
def test_strict_and_flexible_policies(
    completion: str,
    reference: str,
    choices: list[list[str]] | None,
    correct: float,
    reason: str | None,
    flexible: float,
    followed: bool,
) -> None:
    verdict = verify(completion, reference, None if choices is None else {"choices": choices})
    assert (verdict.correct, verdict.reason) == (correct, reason), "strict policy"
    assert (verdict.flexible, verdict.format_followed) == (flexible, followed), verdict
    assert verdict.flexible >= verdict.correct  # flexible is right whenever strict is


def test_flexible_reports_the_label_it_read() -> None:
    context = {"choices": YES_NO_MAYBE}
    assert verify("ANSWER: A", "yes", context).flexible_extracted == "yes"
    assert verify("The answer is London.", "B", {"choices": LETTERED}).flexible_extracted == "B"
    assert verify("ANSWER: A or B", "B", {"choices": LETTERED}).flexible_extracted == "A or B"
    assert verify("Nothing to say.", "B", {"choices": LETTERED}).flexible_extracted is None


FRAGMENTS = [
    "ANSWER: B",
    "ANSWER: (b).",
    "the answer is C",
    "\\boxed{B}",
    "<think>A</think>",
    "A or B",
    "\n",
    "",
]


@pytest.mark.parametrize("choices", [LETTERED, None], ids=["with-choices", "without"])
def test_flexible_is_correct_whenever_strict_is(choices: list[list[str]] | None) -> None:
    context = None if choices is None else {"choices": choices}
    for parts in itertools.product(FRAGMENTS, repeat=3):
        completion = "\n".join(parts)
        for reference in ("B", "C"):
            verdict = verify(completion, reference, context)
            assert verdict.flexible >= verdict.correct, completion
            assert verdict.format_followed == (verdict.extracted is not None)


@pytest.mark.parametrize(
    "context",
    [
        {"choices": "ABCD"},
        {"choices": [["A"]]},
        {"choices": [["A", 1]]},
        {"choices": []},
        {"choices": [["A", ["x"]]]},
        {"choices": 3},
    ],
    ids=["string", "short-pair", "non-text", "empty", "unhashable", "number"],
)
def test_malformed_choices_name_the_field(context: dict) -> None:
    with pytest.raises(
        ValueError, match=r"metadata\['choices'\] must be a non-empty list of \[label, text\]"
    ):
        verify("ANSWER: A", "A", context)


@pytest.mark.parametrize(
    "completion",
    [
        "ANSWER:" + " " * 2_000_000 + "x",
        "ANSWER: **\n" * 200_000,
        "the answer is " * 200_000,
        "\\boxed{" * 300_000,
        "(" * 2_000_000,
        "A or " * 400_000,
        "B. " * 600_000 + "B",
        "x" * 2_000_000,
        "so the answer is B.\n" * 100_000,
    ],
    ids=[
        "spaces",
        "empty-markers",
        "phrases",
        "open-boxes",
        "parens",
        "hedges",
        "sentences",
        "one-line",
        "many",
    ],
)
def test_verify_is_linear_on_hostile_input(completion: str) -> None:
    start = time.perf_counter()
    verdict = verify(completion, "B", {"choices": LETTERED})
    assert time.perf_counter() - start < 3.0
    assert verdict.flexible >= verdict.correct


def test_unknown_scorer() -> None:
    with pytest.raises(
        RptError, match="unknown scorer 'regex'; accepted: choice, code_function, code_stdio, math, polyglot"
    ):
        get_scorer("regex")
