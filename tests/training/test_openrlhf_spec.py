"""What a study says about OpenRLHF: checked by `validate` in one line each, planned into context or id."""

from pathlib import Path

import pytest

from conftest import write_study
from rpt_transfer.errors import SpecError
from rpt_transfer.planner import make_plan
from rpt_transfer.spec import load_study

TRAINING = {"steps": 2, "max_new_tokens": 4, "rollouts_per_prompt": 2, "prompts_per_step": 2}


def study(store: Path, **changes: object) -> dict:
    spec = {
        "study": "orl",
        "kind": "interventional",
        "store": str(store),
        "models": {"base": {"tiny": {"corpus": {"smoke_arith": 16}, "steps": 2}}},
        "base": "base",
        "trainer": "openrlhf",
        "openrlhf": {"gpus_per_node": 1},
        "training": TRAINING,
        "train": [{"name": "m", "domain": "math", "data": {"benchmark": "smoke_arith", "examples": 8}}],
        "benchmarks": ["smoke_arith"],
        "limit": 2,
    }
    spec.update(changes)
    return spec


def problems(tmp_path: Path, spec: dict) -> list[str]:
    with pytest.raises(SpecError) as err:
        load_study(write_study(tmp_path / "s.yaml", spec))
    return err.value.problems


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {
                "trainer": "trl",
                "train": [
                    {
                        "name": "m",
                        "domain": "math",
                        "algorithm": "reinforce++",
                        "data": {"benchmark": "smoke_arith", "examples": 8},
                    }
                ],
            },
            "train[0].algorithm: reinforce++ needs trainer openrlhf (trainer is trl); accepted with trl: grpo, "
            "dr_grpo, dapo",
        ),
        (
            {"trainer": "trl", "openrlhf": {"nodes": 2}},
            "openrlhf: settings of trainer openrlhf, but trainer is 'trl'",
        ),
        (
            {
                "openrlhf": {"gpus_per_node": 6, "vllm_tensor_parallel": 4},
                "training": TRAINING | {"prompts_per_step": 8},
            },
            "openrlhf.vllm_tensor_parallel: 4 does not divide the run's 6 GPUs",
        ),
        (
            {"openrlhf": {"extra_args": {"--actor.adam.lr": 0.1}}},
            "openrlhf.extra_args.--actor.adam.lr: set by rpt-transfer from the study",
        ),
        (
            {"openrlhf": {"extra_args": {"--ds.packing": True}}},
            "openrlhf.extra_args: --ds.packing is not a flag of OpenRLHF 0.11",
        ),
        (
            {"openrlhf": {"extra_args": {"--actor.policy_loss_type": "grpo"}}},
            "openrlhf.extra_args: --actor.policy_loss_type 'grpo' is not accepted; accepted: ppo, gspo",
        ),
        ({"openrlhf": {"zero_stage": 4}}, "openrlhf.zero_stage"),
        (
            {"openrlhf": {"gpus_per_node": 8}},
            "train[0]: a step's 2 prompts x 2 rollouts leave some of the run's 8 training GPUs without a sample",
        ),
        (
            {"openrlhf": {"gpus_per_node": 2, "colocate": False, "vllm_engines": 2}},
            "openrlhf.vllm_engines: 2 engines x 1 GPUs leave 0 of the run's 2 GPUs to the actor",
        ),
    ],
)
def test_bad_openrlhf_settings_are_one_line_each(tmp_path: Path, changes: dict, expected: str) -> None:
    lines = problems(tmp_path, study(tmp_path / "store", **changes))
    assert any(expected in line for line in lines), lines


def test_placement_is_context_and_extra_args_are_identity(tmp_path: Path) -> None:
    def train_job(**settings: object):
        spec = load_study(write_study(tmp_path / "s.yaml", study(tmp_path / "store", openrlhf=settings)))
        (job,) = [job for job in make_plan(spec, str(tmp_path / "store"), None).jobs if job.kind == "train"]
        return job

    one, two = train_job(gpus_per_node=1), train_job(nodes=2, gpus_per_node=2, vllm_engines=2)
    assert one.id == two.id  # the same run on more GPUs
    assert two.context["resources"] == {"nodes": 2, "gpus_per_node": 2}
    assert two.context["openrlhf"]["vllm_engines"] == 2
    packed = train_job(gpus_per_node=1, extra_args={"--ds.packing_samples": True})
    assert packed.id != one.id
    assert packed.inputs["trainer"]["extra_args"] == {"--ds.packing_samples": True}
    assert one.inputs["trainer"] == {"backend": "openrlhf", "version": one.inputs["trainer"]["version"]}
