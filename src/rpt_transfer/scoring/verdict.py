"""The result every verifier returns, shared by evaluation and RL rewards.

Two policies score each completion (docs/scoring-policies.md): **strict** reads the answer only where the
benchmark's prompt asked for it (as the benchmark's own harness would); **flexible** reads the final answer
wherever a careful human grader would look. Reinforcement post-training changes output format as much as
ability, so the report shows both, and `format_followed` says whether the stated format was used.
"""

from typing import NamedTuple


class Verdict(NamedTuple):
    """How one completion scored against its reference, under the strict and the flexible policy."""

    correct: float
    """Strict policy: 1.0 or 0.0 (or a fraction for partial credit)."""
    extracted: str | None
    """The answer the strict policy pulled out of the completion, None when there was none."""
    reason: str | None = None
    """Why it was not scored as a normal answer: None, "no_answer", "truncated", "timeout", "parse_error"."""
    explanation: str = ""
    flexible: float | None = None
    """Flexible policy's correctness; None means the scorer has one policy, so it equals `correct`."""
    flexible_extracted: str | None = None
    """The answer the flexible policy read; None when it read none (or, with `flexible` None, as strict)."""
    format_followed: bool | None = None
    """Whether the completion gave its answer in the benchmark's stated format; None: not decided here."""

    def resolved(self) -> "Verdict":
        """The verdict with the flexible fields filled in from the strict ones where a scorer left them."""
        if self.flexible is not None and self.format_followed is not None:
            return self
        flexible = self.correct if self.flexible is None else self.flexible
        flexible_extracted = self.extracted if self.flexible is None else self.flexible_extracted
        followed = self.format_followed
        if followed is None:
            followed = self.extracted is not None and self.reason not in ("no_answer", "truncated")
        return self._replace(
            flexible=flexible, flexible_extracted=flexible_extracted, format_followed=followed
        )
