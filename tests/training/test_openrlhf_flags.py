"""The flag table against the installed OpenRLHF 0.11: every flag and choice it can produce, parsed for real.

`make test` installs the OpenRLHF wheel without its dependencies, so its `train_ppo_ray.py` is on disk but
ray is not: the table's `parser_flags` reads it with `ast`, and `real_parser.run_main` (tests/fake_openrlhf)
runs the file's own `__main__` block — its argparse parser and the assertions after it — on our argv.
"""

import importlib.util
import itertools
import sys
from pathlib import Path

import pytest

from rpt_transfer.training import openrlhf_flags as table
from rpt_transfer.training.config import OpenRlhfSettings, TrainHyper

# Loaded by path: putting tests/fake_openrlhf on sys.path would put the fake `openrlhf` before the real one.
_SPEC = importlib.util.spec_from_file_location(
    "real_parser", Path(__file__).resolve().parents[1] / "fake_openrlhf" / "real_parser.py"
)
assert _SPEC is not None and _SPEC.loader is not None
real_parser = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(real_parser)
run_main = real_parser.run_main

SOURCE = table.installed_source()
pytestmark = pytest.mark.skipif(SOURCE is None, reason="openrlhf is not installed (make test installs it)")
PATHS = table.RunPaths(
    Path("/m/base"),
    Path("/w/prompts.jsonl"),
    Path("/w/ckpt"),
    Path("/w/final"),
    Path("/w/tb"),
    "http://r:8000/get_reward",
)
SETTINGS = [
    OpenRlhfSettings(),
    OpenRlhfSettings(colocate=False, vllm_engines=4),
    OpenRlhfSettings(
        nodes=2, gpus_per_node=8, vllm_tensor_parallel=2, zero_stage=3, gradient_checkpointing=False
    ),
    OpenRlhfSettings(nodes=1, gpus_per_node=1),
]


def parsed(argv: list[str]) -> object:
    """OpenRLHF's own parse and checks of `argv`: the hierarchical args its `train` would get."""
    got: list[object] = []
    run_main(argv, got.append)
    assert len(got) == 1
    return got[0]


def cases() -> list[tuple[str, float, OpenRlhfSettings, str]]:
    rewards = ["http://r:8000/get_reward", "/site/rpt_transfer/training/openrlhf_reward.py"]
    return list(itertools.product(table.ALGORITHM_FLAGS, (0.0, 0.001), SETTINGS, rewards))


def test_the_installed_parser_is_read_without_importing_it() -> None:
    assert SOURCE is not None
    flags = table.parser_flags(SOURCE)
    assert "ray" not in sys.modules
    assert len(flags) > 100
    assert flags["--algo.advantage.estimator"].choices is not None
    assert "group_norm" in flags["--algo.advantage.estimator"].choices
    assert flags["--ckpt.load_enable"].switch
    assert flags["--actor.eps_clip_low_high"].nargs == 2
    assert "--actor.adam.lr" in flags and "--critic.optim" in flags  # from the `for prefix in ...` loop


@pytest.mark.parametrize(("algorithm", "kl", "settings", "reward"), cases())
def test_every_flag_and_choice_the_table_makes_is_accepted(
    algorithm: str, kl: float, settings: OpenRlhfSettings, reward: str
) -> None:
    assert SOURCE is not None
    hyper = TrainHyper(steps=40, prompts_per_step=16, rollouts_per_prompt=8, kl_coef=kl, warmup_steps=4)
    flags = table.argv_flags(
        algorithm, hyper, 7, settings, PATHS._replace(reward=reward), table.RunShape(40, 300)
    )
    assert table.flag_problems(flags, table.parser_flags(SOURCE), "table") == []
    args = parsed(table.argv(flags))
    assert args.algo.advantage.estimator == table.ALGORITHM_FLAGS[algorithm]["--algo.advantage.estimator"]
    assert args.rollout.batch_size == 16 and args.rollout.n_samples_per_prompt == 8
    assert args.train.batch_size == 128  # one update per rollout batch: on-policy, as TRL
    assert args.data.max_len == 300 + hyper.max_new_tokens
    assert args.actor.adam.lr == hyper.learning_rate and args.train.seed == 7
    assert args.actor.lr_warmup_ratio == pytest.approx(0.1)
    assert args.reward.remote_url == [reward]
    assert args.ckpt.load_enable and args.ckpt.save_steps == hyper.checkpoint_every
    assert args.algo.kl.use_loss == (kl > 0) and args.algo.kl.init_coef == kl
    low, high = args.actor.eps_clip_low_high
    assert (low, high) == ((0.2, table.DAPO_CLIP_HIGH) if algorithm == "dapo" else (0.2, 0.2))
    gpus = args.actor.num_nodes * args.actor.num_gpus_per_node
    engines = args.vllm.num_engines * args.vllm.tensor_parallel_size
    assert gpus + (0 if settings.colocate else engines) == settings.gpus()
    assert args.train.colocate_all == settings.colocate


def test_extra_args_reach_the_argv_and_are_checked_against_the_parser() -> None:
    assert SOURCE is not None
    settings = OpenRlhfSettings(extra_args={"--ds.packing_samples": True, "--actor.adam.weight_decay": 0.01})
    flags = table.argv_flags("grpo", TrainHyper(steps=2), 0, settings, PATHS, table.RunShape(2, 10))
    args = parsed(table.argv(flags))
    assert args.ds.packing_samples and args.actor.adam.weight_decay == 0.01
    known = table.parser_flags(SOURCE)
    bad = {
        "--ds.no_such_flag": 1,
        "--ds.param_dtype": "fp8",
        "--ds.adam_offload": 3,
        "--actor.adam.betas": [0.9],
    }
    problems = table.flag_problems(bad, known, "openrlhf.extra_args")
    assert [p.split(": ")[1].split()[0] for p in problems] == list(bad)
    assert "accepted: bf16, fp16" in problems[1]
    for name, value in bad.items():  # the real parser refuses each of them too
        with pytest.raises(SystemExit):
            parsed(table.argv({**flags, name: value}))


def test_extra_args_may_not_set_what_the_table_sets() -> None:
    problems = table.extra_arg_problems(
        {"--actor.adam.lr": 1e-5, "--algo.advantage.estimator": "rloo", "ds.zero_stage": 3},
        "openrlhf.extra_args",
    )
    assert len(problems) == 3
    assert "set by rpt-transfer from the study" in problems[0]
    assert "starts with --" in problems[2]


def test_engines_without_colocation_must_leave_the_actor_gpus() -> None:
    with pytest.raises(ValueError, match="leave 0 of the run's 8 GPUs"):
        table.actor_placement(OpenRlhfSettings(colocate=False, vllm_engines=8))
    assert table.actor_placement(OpenRlhfSettings(nodes=2, colocate=False, vllm_engines=8)) == (1, 8)
    with pytest.raises(ValueError):
        table.actor_placement(OpenRlhfSettings(nodes=3, colocate=False, vllm_engines=4))  # 20 GPUs left


def test_the_installed_version_is_the_series_the_table_drives() -> None:
    assert table.version_problem() is None, table.version_problem()
