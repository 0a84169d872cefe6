"""Math verifier, first cut: numeric final answers after `ANSWER:`.

Exact equality of numbers (so "25" never matches "5"); thousands separators and a trailing period are
tolerated. Symbolic equivalence (math-verify) arrives with the real math benchmarks.
"""

import re
from decimal import Decimal, InvalidOperation

from rpt_transfer.scoring.extract import final_answer
from rpt_transfer.scoring.verdict import Verdict

VERSION = "1"
_NUMBER = re.compile(r"^[-+]?\d[\d,]*(\.\d+)?$")


def _as_number(text: str) -> Decimal | None:
    cleaned = text.strip().rstrip(".").replace("$", "").strip()
    if not _NUMBER.match(cleaned):
        return None
    try:
        return Decimal(cleaned.replace(",", ""))
    except InvalidOperation:
        return None


def verify(completion: str, reference: str) -> Verdict:
    """Score a completion whose final answer should equal the numeric reference."""
    answer = final_answer(completion)
    if answer is None:
        return Verdict(0.0, None, "no_answer", "no 'ANSWER:' line")
    value, expected = _as_number(answer), _as_number(reference)
    if expected is None:
        raise ValueError(f"math reference {reference!r} is not a number")
    if value is None:
        return Verdict(0.0, answer, "parse_error", f"{answer!r} is not a number")
    return Verdict(float(value == expected), answer)
