import pytest

from rpt_transfer.scoring import get_scorer
from rpt_transfer.scoring.math import verify


@pytest.mark.parametrize(
    ("completion", "reference", "correct", "reason"),
    [
        ("7+5=12. ANSWER: 12", "12", 1.0, None),
        ("ANSWER: 25", "5", 0.0, None),  # "25" must not match "5"
        ("ANSWER: 5", "25", 0.0, None),
        ("ANSWER: 1,234", "1234", 1.0, None),
        ("ANSWER: 12.", "12", 1.0, None),
        ("ANSWER: 12.0", "12", 1.0, None),
        ("ANSWER: $12", "12", 1.0, None),
        ("answer: 3\nANSWER: 4", "4", 1.0, None),  # the last answer counts
        ("ANSWER: 4\nANSWER: 3", "4", 0.0, None),
        ("<think>ANSWER: 4</think> ANSWER: 5", "5", 1.0, None),
        ("<think>ANSWER: 4</think>", "4", 0.0, "no_answer"),
        ("the sum is 12", "12", 0.0, "no_answer"),
        ("", "12", 0.0, "no_answer"),
        ("ANSWER: twelve", "12", 0.0, "parse_error"),
        ("ANSWER: -3", "-3", 1.0, None),
    ],
)
def test_math_verdicts(completion: str, reference: str, correct: float, reason: str | None) -> None:
    verdict = verify(completion, reference)
    assert (verdict.correct, verdict.reason) == (correct, reason)


def test_registry_knows_versions() -> None:
    verify_fn, version = get_scorer("math")
    assert verify_fn is verify and version
