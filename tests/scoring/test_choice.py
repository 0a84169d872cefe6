import pytest

from rpt_transfer.errors import RptError
from rpt_transfer.scoring import get_scorer
from rpt_transfer.scoring.choice import verify


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


def test_unknown_scorer() -> None:
    with pytest.raises(
        RptError, match="unknown scorer 'regex'; accepted: choice, code_function, code_stdio, math, polyglot"
    ):
        get_scorer("regex")
