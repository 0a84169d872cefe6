"""Score a batch of samples so that one sample the verifier cannot handle never loses the others.

The score job and the RL rewards both score through here: evaluation and training must agree on what
"correct" means, and on what counts as a scorer failure (`scorer_error`), which both count and bound.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rpt_transfer.scoring.verdict import Verdict

if TYPE_CHECKING:
    from rpt_transfer.scoring import Context, Scorer

SCORER_ERROR = "scorer_error"
TIMEOUT = "timeout"
RERUN_NOTE = "first attempt timed out under load; this is the verdict of one re-run alone"


def score_batch(
    scorer: "Scorer",
    pairs: Sequence[tuple[str, str]],
    finish_reasons: Sequence[str | None],
    contexts: Sequence["Context"] | None = None,
) -> list[Verdict]:
    """One verdict per (completion, reference) pair, through the scorer's batch form.

    If the batch raises, its pairs are scored one by one, so only the offending sample becomes a
    `scorer_error` verdict whose explanation names the exception.
    """
    try:
        return list(scorer.verify_many(pairs, finish_reasons, contexts))
    except Exception:  # fall back to per-sample scoring, which records each failure as a verdict
        given = contexts if contexts is not None else [None] * len(pairs)
        return [_guarded(scorer, pair, context) for pair, context in zip(pairs, given, strict=True)]


def _guarded(scorer: "Scorer", pair: tuple[str, str], context: "Context") -> Verdict:
    completion, reference = pair
    try:
        return scorer.verify(completion, reference, context)
    except Exception as err:  # one bad sample must not lose the others; callers bound the rate
        return Verdict(0.0, None, SCORER_ERROR, f"{type(err).__name__}: {err}")


def confirm_timeouts(
    scorer: "Scorer",
    pairs: Sequence[tuple[str, str]],
    contexts: Sequence["Context"],
    verdicts: Sequence[Verdict],
) -> tuple[list[Verdict], list[bool]]:
    """Re-run each timed-out sample once, alone, and keep that verdict; also say which were re-run.

    Call it when the batch is done, so nothing else runs in this process's sandbox pool: a program that
    timed out only because the machine was busy (seen on LiveCodeBench: 3.0 s and 4.2 s alone against a 6 s
    limit) then passes, while one that times out alone still counts as a timeout. Samples go one at a
    time through the scorer's single `verify`, on this thread.
    """
    result, rerun = list(verdicts), [False] * len(verdicts)
    for index, verdict in enumerate(verdicts):
        if verdict.reason != TIMEOUT:
            continue
        again = _guarded(scorer, pairs[index], contexts[index])
        note = RERUN_NOTE if not again.explanation else f"{RERUN_NOTE}: {again.explanation}"
        result[index], rerun[index] = again._replace(explanation=note), True
    return result, rerun
