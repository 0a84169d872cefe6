"""Verifiers, one per answer type, shared by evaluation and RL rewards."""

from collections.abc import Callable

from rpt_transfer.errors import RptError
from rpt_transfer.scoring import choice, math
from rpt_transfer.scoring.verdict import Verdict

Verifier = Callable[[str, str], Verdict]

SCORERS: dict[str, tuple[Verifier, str]] = {
    "math": (math.verify, math.VERSION),
    "choice": (choice.verify, choice.VERSION),
}


def get_scorer(name: str) -> tuple[Verifier, str]:
    """The verifier called `name` and its version (part of score job ids)."""
    if name not in SCORERS:
        raise RptError(f"unknown scorer {name!r}; accepted: {', '.join(sorted(SCORERS))}")
    return SCORERS[name]


__all__ = ["SCORERS", "Verdict", "Verifier", "get_scorer"]
