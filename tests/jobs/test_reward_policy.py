"""Training rewards use one declared policy (issue 10 section 3): strict by default, named in the train run.

The policy enters the train job's id only when it is not the default, so runs planned before it existed
keep their ids; the MLflow params name it either way.
"""

import pytest

from rpt_transfer.errors import SpecError
from rpt_transfer.planner import make_plan
from rpt_transfer.scoring import SCORERS, Scorer, Verdict
from rpt_transfer.spec import parse_study
from rpt_transfer.tracking_runs import train_params
from rpt_transfer.training.rewards import ScorerReward

STUDY = """
study: c
kind: interventional
models: {b: {tiny: {corpus: {smoke_arith: 4}, steps: 1}}}
base: b
training: {learning_rate: 0.001, steps: 3, max_new_tokens: 8, rollouts_per_prompt: 4, prompts_per_step: 2%s}
train:
  - {name: m, domain: math, data: {benchmark: smoke_arith, examples: 16}%s}
benchmarks: [smoke_arith]
limit: 2
"""


def train_job(study: str, per_run: str = ""):
    plan = make_plan(parse_study(STUDY % (study, per_run), "c.yaml"), "file:///tmp/unused-store", None)
    return plan, next(job for job in plan.jobs if job.kind == "train")


@pytest.mark.parametrize(
    ("study", "per_run", "policy", "same_id_as_default"),
    [
        ("", "", "strict", True),
        (", reward_policy: strict", "", "strict", True),
        (", reward_policy: flexible", "", "flexible", False),
        ("", ", hyperparameters: {reward_policy: flexible}", "flexible", False),
    ],
)
def test_the_reward_policy_enters_ids_when_not_default_and_is_named_in_the_run(
    study: str, per_run: str, policy: str, same_id_as_default: bool
) -> None:
    _, default = train_job("")
    plan, job = train_job(study, per_run)
    assert (job.id == default.id) == same_id_as_default
    assert ("reward_policy" in job.inputs["hyperparameters"]) != same_id_as_default
    params = train_params(plan, job)
    assert params["reward_policy"] == policy
    assert "hyper.reward_policy" not in params  # one name for it


def test_an_unknown_reward_policy_is_refused_naming_the_field() -> None:
    with pytest.raises(SpecError, match=r"c\.yaml: training\.reward_policy: .*'strict' or 'flexible'"):
        parse_study(STUDY % (", reward_policy: lenient", ""), "c.yaml")


def test_rewards_follow_the_declared_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A verifier that answers fixed verdicts, registered for this test only (scaffolding)."""
    table = {
        "boxed right": Verdict(1.0, "4"),
        "prose right": Verdict(0.0, None, "no_answer", "", flexible=1.0, flexible_extracted="4"),
        "wrong": Verdict(0.0, "5", None, "", flexible=0.0, flexible_extracted="5", format_followed=True),
    }

    def verify(completion: str, reference: str, context: object = None) -> Verdict:
        return table[completion]

    def verify_many(pairs, finish_reasons, contexts=None) -> list[Verdict]:
        return [verify(*pair) for pair in pairs]

    monkeypatch.setitem(SCORERS, "math", Scorer(verify, "fixed", verify_many))
    completions = list(table)
    assert ScorerReward("math")(None, completions, ["4"] * 3) == [1.0, 0.0, 0.0]
    assert ScorerReward("math", "flexible")(None, completions, ["4"] * 3) == [1.0, 1.0, 0.0]
