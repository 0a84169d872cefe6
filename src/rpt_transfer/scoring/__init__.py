"""Verifiers, one per answer type, shared by evaluation and RL rewards."""

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from rpt_transfer.errors import RptError
from rpt_transfer.scoring import choice, code, math, polyglot, sandbox
from rpt_transfer.scoring.verdict import Verdict

Verifier = Callable[..., Verdict]
"""verify(completion, reference, context=None) -> Verdict; `context` is the item's metadata (see below)."""
Context = Mapping[str, Any] | None
"""An item's metadata, for scorers that need more than the reference (a choice item's `choices`)."""
BatchVerifier = Callable[..., list[Verdict]]
"""verify_many(pairs of (completion, reference), finish reasons, contexts=None) -> one verdict per pair."""


class Scorer(NamedTuple):
    """A verifier with its version (part of score job ids) and its batch form (what the score job calls)."""

    verify: Verifier
    version: str
    verify_many: BatchVerifier


def _in_sandbox_pool(verify: Verifier) -> BatchVerifier:
    """Batch form of a verifier that runs programs: samples run in parallel, one sandbox each."""

    def verify_many(
        pairs: Sequence[tuple[str, str]],
        finish_reasons: Sequence[str | None],
        contexts: Sequence[Context] | None = None,
    ) -> list[Verdict]:
        return sandbox.run_many(lambda pair: verify(*pair), pairs)

    return verify_many


def _one_by_one(verify: Verifier) -> BatchVerifier:
    """Batch form of a verifier cheap enough to call in a loop."""

    def verify_many(
        pairs: Sequence[tuple[str, str]],
        finish_reasons: Sequence[str | None],
        contexts: Sequence[Context] | None = None,
    ) -> list[Verdict]:
        given = contexts if contexts is not None else [None] * len(pairs)
        return [verify(*pair, context) for pair, context in zip(pairs, given, strict=True)]

    return verify_many


SCORERS: dict[str, Scorer] = {
    "math": Scorer(
        math.verify,
        math.VERSION,
        lambda pairs, reasons, contexts=None: math.verify_many(pairs, finish_reasons=reasons),
    ),
    "choice": Scorer(choice.verify, choice.VERSION, _one_by_one(choice.verify)),
    "code_function": Scorer(code.verify_function, code.VERSION, _in_sandbox_pool(code.verify_function)),
    "code_stdio": Scorer(code.verify_stdio, code.STDIO_VERSION, _in_sandbox_pool(code.verify_stdio)),
    "polyglot": Scorer(polyglot.verify, polyglot.VERSION, _in_sandbox_pool(polyglot.verify)),
}


def get_scorer(name: str) -> Scorer:
    """The scorer called `name`."""
    if name not in SCORERS:
        raise RptError(f"unknown scorer {name!r}; accepted: {', '.join(sorted(SCORERS))}")
    return SCORERS[name]


__all__ = ["SCORERS", "BatchVerifier", "Context", "Scorer", "Verdict", "Verifier", "get_scorer"]
