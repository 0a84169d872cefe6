"""RL rewards from the project's own scorers, so that training and evaluation agree on "correct".

A reward is the verdict under the run's one declared policy (`reward_policy`): `strict` (default) takes
`correct`, the answer in the benchmark's stated format; `flexible` takes `resolved().flexible`, the answer
wherever a careful grader would find it (docs/scoring-policies.md). A sample the scorer cannot handle
(`FAILURE_REASONS`) gets reward 0, is counted, and is reported on stderr with its explanation; when
failures pass a small share of all samples the run stops, because a broken reward trains a broken model
without anyone noticing.

Training and evaluation agree on `toolchain_missing`: it is never a wrong answer. Training counts it as
a failure (reward 0, within the bound above); evaluation fails the score job, or, where the study accepts
missing toolchains, keeps the rows out of every accuracy (jobs/score.py).
"""

import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

from rpt_transfer.errors import JobError
from rpt_transfer.scoring import get_scorer
from rpt_transfer.scoring.batch import SCORER_ERROR, score_batch
from rpt_transfer.scoring.verdict import Verdict
from rpt_transfer.training.config import RewardPolicy

FAILURE_REASONS = frozenset({SCORER_ERROR, "toolchain_missing"})
"""Verdict reasons that mean the reward is unknown, not that the answer is wrong."""
MAX_FAILURE_RATE = 0.05
MIN_SAMPLES_BEFORE_STOP = 64


class ScorerReward:
    """A reward function in TRL's calling convention, backed by one scorer of `rpt_transfer.scoring`."""

    def __init__(self, scorer_name: str, policy: RewardPolicy = "strict") -> None:
        self.scorer_name = scorer_name
        self.policy = policy
        self._scorer = get_scorer(scorer_name)
        self.__name__ = f"reward_{scorer_name}"  # TRL names the logged reward after the function
        self.samples = 0
        self.failures = 0
        self.reasons: Counter[str] = Counter()

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], reference: Sequence[str], **_: Any
    ) -> list[float]:
        """Rewards for one batch of rollouts; `reference` is the dataset column of the same name."""
        texts = [completion_text(completion) for completion in completions]
        verdicts = score_batch(self._scorer, list(zip(texts, reference, strict=True)), [None] * len(texts))
        rewards = []
        for verdict in verdicts:
            self.reasons[verdict.reason or "scored"] += 1
            if verdict.reason in FAILURE_REASONS:
                self.failures += 1
                report_failure(self.scorer_name, verdict.reason, verdict.explanation)
            rewards.append(reward_of(verdict, self.policy))
        self.samples += len(verdicts)
        self._stop_if_broken()
        return rewards

    def count_elsewhere(self, samples: int, failures: int) -> None:
        """Count rewards scored outside this process (OpenRLHF's reward file or service).

        The run then stops as `__call__` stops it when too many rewards were unknown.
        """
        self.samples += samples
        self.failures += failures
        self.reasons["failure"] += failures
        self.reasons["scored"] += samples - failures
        self._stop_if_broken()

    def failure_rate(self) -> float:
        """Share of samples so far whose reward the scorer could not determine."""
        return self.failures / self.samples if self.samples else 0.0

    def _stop_if_broken(self) -> None:
        if too_many_failures(self.failures, self.samples):
            raise JobError(
                f"reward {self.scorer_name}: the scorer failed on {self.failures}/{self.samples} samples "
                f"(more than {MAX_FAILURE_RATE:.0%}); training stopped. Reasons: {dict(self.reasons)}"
            )


def reward_of(verdict: Verdict, policy: RewardPolicy) -> float:
    """The reward of one verdict under `policy`."""
    return float(verdict.correct if policy == "strict" else verdict.resolved().flexible)


def too_many_failures(failures: int, samples: int) -> bool:
    """Whether rewards are too often unknown to go on training (more than `MAX_FAILURE_RATE`)."""
    return samples >= MIN_SAMPLES_BEFORE_STOP and failures / samples > MAX_FAILURE_RATE


def report_failure(scorer: str, reason: str, explanation: str) -> None:
    """One stderr line for a sample whose reward is unknown: the scorer, the reason, the explanation (cut)."""
    one_line = " ".join(explanation[:300].split())
    print(f"reward {scorer}: {reason}: {one_line}", file=sys.stderr, flush=True)


def completion_text(completion: Any) -> str:
    """TRL passes a string (raw prompts) or a list of messages (chat prompts); the text either way."""
    if isinstance(completion, str):
        return completion
    return "".join(message.get("content", "") for message in completion)
