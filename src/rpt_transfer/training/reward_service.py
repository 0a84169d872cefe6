"""OpenRLHF rewards from the project's scorers: one function behind both of OpenRLHF's reward entry points.

OpenRLHF asks for rewards with `(queries, prompts, labels)`: the decoded prompt and answer, the prompt as
in the data set, and the label, which here is a `reward_label` JSON string (scorer, reference, policy,
special tokens to strip). `reward_response` scores each sample with the label's scorer through
`score_batch`, exactly as the TRL reward and the score job do, and answers in the shape of OpenRLHF's
own reward server:

    {"rewards": [float], "scores": [float], "extra_logs": {"reward_failure": [0/1], "reward_correct": [0/1]}}

`rewards` follow the label's policy (`rewards.reward_of`); `reward_correct` is the strict verdict, so a
flexible-policy run still logs strict accuracy; `reward_failure` is 1.0 for a sample whose reward is
unknown (OpenRLHF averages each extra_logs key into its metrics, so this is the failure rate).

A failure is a reward of 0.0, counted and reported on stderr in one line, never an exception: OpenRLHF
only logs an exception and leaves the reward empty. Reasons (`FAILURES`): the scorer's own
(`rewards.FAILURE_REASONS`), `bad_label`, `unknown_scorer`, `bad_request` (the three lists are not lists
of one length), `bad_sample` (a query or prompt that is not a string), `runs_programs` (a code scorer
asked for where model-written code must not run, see below) and `exception` (anything else).

Two callers: `openrlhf_reward.py`, the file OpenRLHF imports into its vLLM actors, which are GPU
processes, so it never runs model-written programs (`run_programs=False`); and `reward_server`, the HTTP
service (`rpt-transfer reward-server`) that runs them in the sandbox, on a CPU pod without credentials.
"""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, NamedTuple

from rpt_transfer.errors import RptError
from rpt_transfer.scoring import get_scorer
from rpt_transfer.scoring.batch import score_batch
from rpt_transfer.training.reward_label import RewardLabel, completion_of, decode_label
from rpt_transfer.training.rewards import FAILURE_REASONS, report_failure, reward_of

BAD_LABEL = "bad_label"
UNKNOWN_SCORER = "unknown_scorer"
BAD_REQUEST = "bad_request"
BAD_SAMPLE = "bad_sample"
RUNS_PROGRAMS = "runs_programs"
EXCEPTION = "exception"
FAILURES = frozenset(
    {*FAILURE_REASONS, BAD_LABEL, UNKNOWN_SCORER, BAD_REQUEST, BAD_SAMPLE, RUNS_PROGRAMS, EXCEPTION}
)
"""Every reason a sample's reward can be unknown (reward 0.0, `reward_failure` 1.0)."""
FAILURE_LOG = "reward_failure"
CORRECT_LOG = "reward_correct"
"""The `extra_logs` keys: the failure flag and the strict verdict of each sample."""
SERVICE_HINT = (
    "scorer {scorer} runs model-written programs, which never run in a trainer's GPU processes: serve"
    " rewards with `rpt-transfer reward-server` and give OpenRLHF its URL (docs/reward-service.md)"
)


class Outcome(NamedTuple):
    """One sample's reward, its strict verdict and, when its reward is unknown, why."""

    reward: float
    correct: float
    failure: str | None = None
    scorer: str = "-"


def reward_response(queries: Any, prompts: Any, labels: Any, *, run_programs: bool = True) -> dict[str, Any]:
    """OpenRLHF's reward answer for these samples (module docstring); never raises for bad input.

    `run_programs=False` turns samples whose scorer runs programs into `runs_programs` failures.
    """
    return response_of(outcomes(queries, prompts, labels, run_programs=run_programs))


def response_of(scored: Sequence[Outcome]) -> dict[str, Any]:
    """The JSON-able answer for these outcomes, in OpenRLHF's reward-server shape."""
    rewards = [outcome.reward for outcome in scored]
    return {
        "rewards": rewards,
        "scores": list(rewards),
        "extra_logs": {
            FAILURE_LOG: [float(outcome.failure is not None) for outcome in scored],
            CORRECT_LOG: [outcome.correct for outcome in scored],
        },
    }


def request_problem(queries: Any, prompts: Any, labels: Any) -> str | None:
    """What is wrong with the request's shape (three lists of one length), or None when it is fine."""
    given = {"query": queries, "prompts": prompts, "labels": labels}
    for name, value in given.items():
        if not isinstance(value, list | tuple):
            kind = "nothing" if value is None else type(value).__name__
            return f"field {name!r} must be a list (one entry per sample); got {kind}"
    lengths = {name: len(value) for name, value in given.items()}
    if len(set(lengths.values())) > 1:
        return f"fields query, prompts and labels must be lists of one length; got {lengths}"
    return None


def outcomes(queries: Any, prompts: Any, labels: Any, *, run_programs: bool = True) -> list[Outcome]:
    """One outcome per sample, in order; failures are reported on stderr, one line each."""
    count = max((len(v) for v in (queries, prompts, labels) if isinstance(v, list | tuple)), default=1)
    problem = request_problem(queries, prompts, labels)
    if problem is not None:
        return [_failed("-", BAD_REQUEST, problem) for _ in range(count)]
    try:
        return _outcomes(queries, prompts, labels, run_programs)
    except Exception as err:  # a bug here must still not cost OpenRLHF its rewards: counted instead
        return [_failed("-", EXCEPTION, f"{type(err).__name__}: {err}") for _ in range(count)]


def _outcomes(queries: Sequence, prompts: Sequence, labels: Sequence, run_programs: bool) -> list[Outcome]:
    result: list[Outcome | None] = [None] * len(queries)
    groups: dict[str, list[tuple[int, RewardLabel, str]]] = defaultdict(list)
    for index, (query, prompt, text) in enumerate(zip(queries, prompts, labels, strict=True)):
        try:
            label = decode_label(text)
        except ValueError as err:
            result[index] = _failed("-", BAD_LABEL, str(err) or type(err).__name__)
            continue
        if not isinstance(query, str) or not isinstance(prompt, str):
            kinds = f"query {type(query).__name__}, prompt {type(prompt).__name__}"
            result[index] = _failed(
                label.scorer, BAD_SAMPLE, f"query and prompt must be strings; got {kinds}"
            )
            continue
        groups[label.scorer].append((index, label, completion_of(query, prompt, label.strip)))
    for name, samples in groups.items():
        for (index, *_), outcome in zip(samples, _score(name, samples, run_programs), strict=True):
            result[index] = outcome
    return [outcome if outcome is not None else _failed("-", EXCEPTION, "not scored") for outcome in result]


def _score(name: str, samples: list[tuple[int, RewardLabel, str]], run_programs: bool) -> list[Outcome]:
    """Outcomes of one scorer's samples; whatever goes wrong fails these samples alone."""
    try:
        scorer = get_scorer(name)
    except RptError as err:
        return [_failed(name, UNKNOWN_SCORER, str(err)) for _ in samples]
    if scorer.runs_programs and not run_programs:
        return [_failed(name, RUNS_PROGRAMS, SERVICE_HINT.format(scorer=name)) for _ in samples]
    try:
        pairs = [(completion, label.reference) for _, label, completion in samples]
        verdicts = score_batch(scorer, pairs, [None] * len(pairs))
        scored = []
        for (_, label, _), verdict in zip(samples, verdicts, strict=True):
            if verdict.reason in FAILURE_REASONS:
                scored.append(_failed(name, verdict.reason, verdict.explanation))
            else:
                scored.append(Outcome(reward_of(verdict, label.policy), float(verdict.correct), None, name))
        return scored
    except Exception as err:  # a reward must never raise (OpenRLHF would drop it); counted instead
        return [_failed(name, EXCEPTION, f"{type(err).__name__}: {err}") for _ in samples]


def _failed(scorer: str, reason: str, explanation: str) -> Outcome:
    report_failure(scorer, reason, explanation)
    return Outcome(0.0, 0.0, reason, scorer)


def failure_counts(scored: Sequence[Outcome]) -> dict[str, int]:
    """Failures by reason (for the service's counters)."""
    counts: dict[str, int] = defaultdict(int)
    for outcome in scored:
        if outcome.failure is not None:
            counts[outcome.failure] += 1
    return dict(counts)
