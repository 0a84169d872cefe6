"""The one table of OpenRLHF flags: a study's algorithm, hyperparameters and GPU settings as its argv.

Nothing else in the project builds an OpenRLHF command line. The table targets OpenRLHF 0.11 (`SERIES`),
whose `train_ppo_ray` parser takes only dotted flags (`--actor.adam.lr`, no aliases since 0.10.2). That
parser is defined under `if __name__ == "__main__":` of a module that imports ray at the top, so it is
read here with `ast` (`parser_flags`), never imported: `validate` checks a study's `extra_args` against
the installed version, and a contract test checks every flag and choice this table can produce.

How the spec maps (docs/training-openrlhf.md):
- one step = one rollout batch: `prompts_per_step` prompts x `rollouts_per_prompt` samples, one optimiser
  update over all of them (`--train.batch_size` = the batch), on-policy like the TRL trainer;
- the step count is exact because the exported prompt file holds `steps x prompts_per_step` rows and the
  run makes one pass over it (`--train.num_episodes 1`);
- the algorithms: `grpo` group-normalised advantages with a per-sequence length-normalised loss, KL as a
  k3 loss term; `dr_grpo` OpenRLHF's Dr. GRPO estimator with a token-mean loss; `dapo` group-normalised,
  token-mean, clip-higher (0.28) and dynamic sampling of groups with mixed rewards; `reinforce++`
  OpenRLHF's REINFORCE++ (`reinforce`, batch-normalised), KL as a k2 loss term.
"""

import ast
import importlib.metadata
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from rpt_transfer.training.config import OpenRlhfSettings, TrainHyper

SERIES = "0.11"
"""The OpenRLHF release series this table was written against (the `train` extra pins it)."""
ENTRY_MODULE = "openrlhf.cli.train_ppo_ray"
PARSER_FILE = ("cli", "train_ppo_ray.py")
DAPO_CLIP_HIGH = 0.28
"""Upper clip of DAPO ("clip-higher"), as in the DAPO paper and the TRL trainer."""
TENSORBOARD_RUN = "train"
"""OpenRLHF writes events under `<tensorboard_dir>/<wandb.run_name>/`; a fixed name keeps the folder known."""

ALGORITHM_FLAGS: dict[str, dict[str, Any]] = {
    "grpo": {"--algo.advantage.estimator": "group_norm", "--actor.loss_agg_mode": "seq-mean-token-mean"},
    "dr_grpo": {"--algo.advantage.estimator": "dr_grpo", "--actor.loss_agg_mode": "token-mean"},
    "dapo": {
        "--algo.advantage.estimator": "group_norm",
        "--actor.loss_agg_mode": "token-mean",
        "--algo.dynamic_filtering_enable": True,
        "--algo.dynamic_filtering_range": [0, 1],
    },
    "reinforce++": {"--algo.advantage.estimator": "reinforce", "--actor.loss_agg_mode": "token-mean"},
}
KL_ESTIMATOR = {"grpo": "k3", "dr_grpo": "k3", "dapo": "k3", "reinforce++": "k2"}
"""KL estimator of the loss term when `kl_coef` > 0 (OpenRLHF recommends k2 or k3 for a KL loss)."""


class RunPaths(NamedTuple):
    """Where one run reads and writes, on the machine (or shared volume) OpenRLHF runs on."""

    model_dir: Path
    prompts: Path
    """The exported JSONL prompt file (`training/openrlhf_data.py`)."""
    checkpoints: Path
    """`--ckpt.path`: resumable DeepSpeed checkpoints (`training/openrlhf_checkpoints.py`)."""
    final: Path
    """`--ckpt.output_dir`: the final weights in HF format."""
    tensorboard: Path
    reward: str
    """`--reward.remote_url`: the reward service's URL, or the path of the reward function file."""


class RunShape(NamedTuple):
    """What the exported data fixes: how many steps, and the longest prompt in tokens."""

    steps: int
    max_prompt_tokens: int


def argv_flags(
    algorithm: str, hyper: TrainHyper, seed: int, settings: OpenRlhfSettings, paths: RunPaths, shape: RunShape
) -> dict[str, Any]:
    """Every flag of one run and its value (True: a switch), in a stable order; `argv` renders them."""
    batch = hyper.prompts_per_step * hyper.rollouts_per_prompt
    placement = placement_flags(settings, reference=hyper.kl_coef > 0)
    actors = placement["--actor.num_nodes"] * placement["--actor.num_gpus_per_node"]
    flags: dict[str, Any] = {
        "--actor.model_name_or_path": paths.model_dir,
        "--data.prompt_dataset": paths.prompts,
        "--data.input_key": "prompt",
        "--data.label_key": "label",
        "--data.max_len": shape.max_prompt_tokens + hyper.max_new_tokens,
        "--rollout.max_new_tokens": hyper.max_new_tokens,
        "--rollout.batch_size": hyper.prompts_per_step,
        "--rollout.n_samples_per_prompt": hyper.rollouts_per_prompt,
        "--rollout.temperature": hyper.temperature,
        "--rollout.top_p": hyper.top_p,
        "--train.batch_size": batch,
        "--train.num_episodes": 1,
        "--train.max_epochs": 1,
        "--train.seed": seed,
        "--actor.adam.lr": hyper.learning_rate,
        "--actor.lr_scheduler": "constant_with_warmup",
        "--actor.lr_warmup_ratio": min(1.0, hyper.warmup_steps / max(shape.steps, 1)),
        "--actor.eps_clip": hyper.clip_epsilon,
        **ALGORITHM_FLAGS[algorithm],
        "--algo.kl.init_coef": hyper.kl_coef,
        "--reward.remote_url": paths.reward,
        "--ckpt.path": paths.checkpoints,
        "--ckpt.save_steps": hyper.checkpoint_every,
        "--ckpt.max_num": 2,
        "--ckpt.load_enable": True,
        "--ckpt.output_dir": paths.final,
        "--logger.tensorboard_dir": paths.tensorboard,
        "--logger.wandb.run_name": TENSORBOARD_RUN,
        "--logger.logging_steps": 1,
        **placement,
        "--ds.zero_stage": settings.zero_stage,
        "--ds.param_dtype": "bf16",
        # a micro batch holds at most one GPU's share of the batch (OpenRLHF asserts every actor gets one)
        "--train.micro_batch_size": max(1, min(settings.micro_batch_size, batch // actors)),
        "--rollout.micro_batch_size": max(1, min(settings.rollout_micro_batch_size, batch // actors)),
    }
    if algorithm == "dapo":
        flags["--actor.eps_clip_low_high"] = [hyper.clip_epsilon, DAPO_CLIP_HIGH]
    if hyper.kl_coef > 0:
        flags |= {"--algo.kl.use_loss": True, "--algo.kl.estimator": KL_ESTIMATOR[algorithm]}
    if settings.gradient_checkpointing:
        flags["--actor.gradient_checkpointing_enable"] = True
    return flags | dict(settings.extra_args)


def placement_flags(settings: OpenRlhfSettings, *, reference: bool) -> dict[str, Any]:
    """Nodes and GPUs of the actor (and the reference model when KL needs one) and the vLLM engines."""
    engines, per_engine = settings.engines(), settings.vllm_tensor_parallel
    if settings.colocate:
        nodes, per_node = settings.nodes, settings.gpus_per_node
        shared = {"--train.colocate_all": True, "--vllm.enable_sleep": True, "--ds.enable_sleep": True}
    else:
        nodes, per_node = actor_placement(settings)
        shared = {}
    flags: dict[str, Any] = {
        "--actor.num_nodes": nodes,
        "--actor.num_gpus_per_node": per_node,
        "--vllm.num_engines": engines,
        "--vllm.tensor_parallel_size": per_engine,
        "--vllm.gpu_memory_utilization": settings.gpu_memory_utilization,
        **shared,
    }
    if reference:
        flags |= {"--ref.num_nodes": nodes, "--ref.num_gpus_per_node": per_node}
    return flags


def actor_placement(settings: OpenRlhfSettings) -> tuple[int, int]:
    """Nodes and GPUs per node left to the actor beside engines of their own; ValueError when none fit."""
    left = settings.gpus() - settings.engines() * settings.vllm_tensor_parallel
    if left >= 1 and left <= settings.gpus_per_node:
        return 1, left
    if left > 0 and left % settings.gpus_per_node == 0:
        return left // settings.gpus_per_node, settings.gpus_per_node
    raise ValueError(
        f"{settings.engines()} engines x {settings.vllm_tensor_parallel} GPUs leave {left} of the run's "
        f"{settings.gpus()} GPUs to the actor; without colocate it needs up to one node's GPUs or whole nodes"
    )


def argv(flags: Mapping[str, Any]) -> list[str]:
    """The flags as arguments: a switch alone (False: left out), a list as several values."""
    out: list[str] = []
    for name, value in flags.items():
        if value is True:
            out.append(name)
        elif value is False or value is None:
            continue
        elif isinstance(value, list | tuple):
            out += [name, *(_text(v) for v in value)]
        else:
            out += [name, _text(value)]
    return out


def _text(value: object) -> str:
    return repr(value) if isinstance(value, float) else str(value)


OWNED_FLAGS = frozenset(
    name
    for algorithm in ALGORITHM_FLAGS
    for colocate in (True, False)
    for kl in (0.0, 0.1)
    for name in argv_flags(
        algorithm,
        TrainHyper(steps=1, kl_coef=kl),
        0,
        OpenRlhfSettings(colocate=colocate, gpus_per_node=2, vllm_engines=1),
        RunPaths(Path("m"), Path("p"), Path("c"), Path("f"), Path("t"), "r"),
        RunShape(1, 1),
    )
) | {"--ref.num_nodes", "--ref.num_gpus_per_node"}
"""Flags the table sets: `extra_args` may not name them (one way to set each thing)."""


class FlagInfo(NamedTuple):
    """What the parser accepts for one flag."""

    switch: bool
    """`action="store_true"`/`"store_false"`: takes no value."""
    choices: tuple[str, ...] | None
    nargs: int | str | None


def installed_source() -> Path | None:
    """The installed OpenRLHF's `openrlhf/cli/train_ppo_ray.py`, or None when OpenRLHF is not installed.

    Found through the distribution's files, so nothing is imported.
    """
    try:
        path = Path(
            str(importlib.metadata.distribution("openrlhf").locate_file("/".join(("openrlhf", *PARSER_FILE))))
        )
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


def installed_version() -> str | None:
    """The installed OpenRLHF's version, or None."""
    try:
        return importlib.metadata.version("openrlhf")
    except importlib.metadata.PackageNotFoundError:
        return None


def version_problem() -> str | None:
    """Why the installed OpenRLHF cannot run this table (not installed, another series), or None."""
    version = installed_version()
    if version is None:
        return "OpenRLHF is not installed: pip install 'rpt-transfer[train]'"
    if version != SERIES and not version.startswith(SERIES + "."):
        return f"OpenRLHF {version} is installed; this version of rpt-transfer drives {SERIES}.x (its flags)"
    return None


def parser_flags(source: Path) -> dict[str, FlagInfo]:
    """The flags `train_ppo_ray`'s parser defines, read from its source with `ast` (never imported).

    `add_argument` calls inside `for prefix in ("actor", "critic"):` loops with f-string names are expanded.
    """
    tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
    flags: dict[str, FlagInfo] = {}
    for call, names in _add_argument_calls(tree.body, {}):
        info = _flag_info(call)
        for name in names:
            flags[name] = info
    return flags


def _add_argument_calls(body: list[ast.stmt], bound: dict[str, str]) -> Iterator[tuple[ast.Call, list[str]]]:
    """`add_argument` calls with their flag names, statement by statement, loops over constants unrolled."""
    for statement in body:
        if isinstance(statement, ast.For) and isinstance(statement.target, ast.Name):
            for value in _constant_strings(statement.iter) or []:
                yield from _add_argument_calls(statement.body, {**bound, statement.target.id: value})
            continue
        nested = [getattr(statement, field, None) for field in ("body", "orelse", "finalbody", "handlers")]
        blocks = [block for block in nested if isinstance(block, list) and block]
        if blocks:  # a compound statement: walk its statements, not the expressions around them
            for block in blocks:
                inner = [
                    s
                    for item in block
                    for s in (item.body if isinstance(item, ast.ExceptHandler) else [item])
                ]
                yield from _add_argument_calls(inner, bound)
            continue
        for node in ast.walk(statement):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_argument"
            ):
                names = [n for arg in node.args if (n := _string(arg, bound)) and n.startswith("--")]
                if names:
                    yield node, names


def _constant_strings(node: ast.expr) -> list[str] | None:
    if isinstance(node, ast.Tuple | ast.List):
        values = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        return values if len(values) == len(node.elts) else None
    return None


def _string(node: ast.expr, bound: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif (
                isinstance(value, ast.FormattedValue)
                and isinstance(value.value, ast.Name)
                and value.value.id in bound
            ):
                parts.append(bound[value.value.id])
            else:
                return None
        return "".join(parts)
    return None


def _flag_info(call: ast.Call) -> FlagInfo:
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    action = keywords.get("action")
    switch = isinstance(action, ast.Constant) and action.value in ("store_true", "store_false")
    choices_node = keywords.get("choices")
    choices = None
    if isinstance(choices_node, ast.List | ast.Tuple):
        choices = tuple(str(e.value) for e in choices_node.elts if isinstance(e, ast.Constant))
    nargs_node = keywords.get("nargs")
    nargs = nargs_node.value if isinstance(nargs_node, ast.Constant) else None
    return FlagInfo(switch, choices, nargs)


def flag_problems(flags: Mapping[str, Any], known: Mapping[str, FlagInfo], where: str) -> list[str]:
    """Flags or values the parser would refuse: one line each naming `where`, the flag, what is accepted."""
    problems = []
    for name, value in flags.items():
        info = known.get(name)
        if info is None:
            problems.append(
                f"{where}: {name} is not a flag of OpenRLHF {installed_version() or SERIES}'s train_ppo_ray"
            )
            continue
        if info.switch and not isinstance(value, bool):
            problems.append(f"{where}: {name} is a switch; accepted: true or false (got {value!r})")
            continue
        if not info.switch and isinstance(value, bool):
            problems.append(f"{where}: {name} takes a value, not {str(value).lower()}")
            continue
        values = value if isinstance(value, list | tuple) else [value]
        if isinstance(info.nargs, int) and len(values) != info.nargs:
            problems.append(f"{where}: {name} takes {info.nargs} values (got {len(values)})")
        if info.choices is not None:
            bad = [v for v in values if _text(v) not in info.choices]
            if bad:
                problems.append(
                    f"{where}: {name} {bad[0]!r} is not accepted; accepted: {', '.join(info.choices)}"
                )
    return problems


def extra_arg_problems(extra: Mapping[str, Any], where: str) -> list[str]:
    """Problems of a study's `openrlhf.extra_args`, one line each.

    Names the table owns are refused everywhere; where OpenRLHF is installed, so are flags or values its
    parser refuses (elsewhere the train job checks them before it starts).
    """
    problems = []
    for name in extra:
        if not name.startswith("--"):
            problems.append(f"{where}.{name}: an OpenRLHF flag starts with -- (e.g. --ds.packing_samples)")
        elif name in OWNED_FLAGS:
            problems.append(
                f"{where}.{name}: set by rpt-transfer from the study (training, openrlhf settings); "
                "change it there, not in extra_args"
            )
    source = installed_source()
    if source is not None and version_problem() is None:
        known = {k: v for k, v in extra.items() if k.startswith("--") and k not in OWNED_FLAGS}
        problems += flag_problems(known, parser_flags(source), where)
    return problems
