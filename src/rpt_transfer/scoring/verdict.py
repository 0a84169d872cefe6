"""The result every verifier returns, shared by evaluation and RL rewards."""

from typing import NamedTuple


class Verdict(NamedTuple):
    """How one completion scored against its reference."""

    correct: float
    """1.0 or 0.0 (or a fraction for partial credit)."""
    extracted: str | None
    """The answer pulled out of the completion, None when there was none."""
    reason: str | None = None
    """Why it was not scored as a normal answer: None, "no_answer", "truncated", "timeout", "parse_error"."""
    explanation: str = ""
