"""What a study says about RPT training: algorithm, hyperparameters and the one domain's training set.

Kept apart from `spec.py` because the train job, the trainer backends and the planner all read these
models, and none of them should need the rest of the spec to do so.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rpt_transfer.benchmarks.base import Domain

Algorithm = Literal["grpo", "dr_grpo", "dapo", "reinforce++"]
"""GRPO and its loss variants (group-normalised, Dr. GRPO, DAPO-style), which every trainer offers, and
REINFORCE++ (global-batch normalised advantages), which only OpenRLHF does (`TRAINER_ALGORITHMS`)."""
TrainerName = Literal["trl", "openrlhf"]
"""`trl`: TRL's GRPOTrainer on a CPU or one GPU (local); `openrlhf`: the cluster trainer."""
TRAINER_ALGORITHMS: dict[str, tuple[str, ...]] = {
    "trl": ("grpo", "dr_grpo", "dapo"),
    "openrlhf": ("grpo", "dr_grpo", "dapo", "reinforce++"),
}
"""The algorithms each trainer backend runs; `validate` refuses any other pair before a job starts."""
RewardPolicy = Literal["strict", "flexible"]
"""Which verdict a reward is: `strict` (the answer in the stated format) or `flexible` (wherever a careful
grader would find it); see docs/scoring-policies.md."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainHyper(_Strict):
    """Hyperparameters of one RPT run; every field enters the train job's id (`identity`)."""

    learning_rate: float = Field(default=1e-6, gt=0, lt=1)
    """Peak AdamW learning rate (constant after warm-up)."""
    rollouts_per_prompt: int = Field(default=8, ge=2, le=512)
    """Completions sampled per prompt (the GRPO group); at least 2, or every advantage is zero."""
    prompts_per_step: int = Field(default=8, ge=1, le=4096)
    """Prompts per optimiser step; a step learns from prompts_per_step x rollouts_per_prompt samples."""
    steps: int | None = Field(default=None, ge=1, le=1_000_000)
    """Optimiser steps; give either `steps` or `epochs`."""
    epochs: float | None = Field(default=None, gt=0, le=1000)
    """Passes over the training set; give either `steps` or `epochs`."""
    max_new_tokens: int = Field(default=1024, ge=1, le=262_144)
    """Longest completion a rollout may have."""
    kl_coef: float = Field(default=0.0, ge=0)
    """KL penalty towards the starting model (beta); 0 loads no reference model."""
    temperature: float = Field(default=1.0, gt=0, le=10)
    """Sampling temperature of the rollouts."""
    top_p: float = Field(default=1.0, gt=0, le=1)
    """Nucleus sampling mass of the rollouts."""
    clip_epsilon: float = Field(default=0.2, gt=0, lt=1)
    """PPO-style ratio clipping (DAPO widens the upper bound to 0.28)."""
    checkpoint_every: int = Field(default=50, ge=1)
    """Save a resumable checkpoint every this many steps."""
    warmup_steps: int = Field(default=0, ge=0)
    """Linear learning-rate warm-up."""
    reward_policy: RewardPolicy = "strict"
    """Which scoring policy the reward is: `strict` (default: the benchmark's stated answer format, so the
    model is rewarded for following it) or `flexible`. One declared policy per run, named in its MLflow
    run."""

    def total_steps(self, examples: int) -> int:
        """Optimiser steps over `examples` prompts: `steps`, or the epochs' prompts in whole steps."""
        if self.steps is not None:
            return self.steps
        assert self.epochs is not None
        return max(1, -(-int(examples * self.epochs) // self.prompts_per_step))

    def identity(self) -> dict[str, Any]:
        """The fields for the train job's inputs.

        `reward_policy` enters only when not the default, so runs planned before it existed keep their ids.
        """
        exclude = {"reward_policy"} if self.reward_policy == "strict" else set()
        return self.model_dump(mode="json", exclude=exclude)

    @model_validator(mode="after")
    def _steps_or_epochs(self) -> "TrainHyper":
        if (self.steps is None) == (self.epochs is None):
            raise ValueError("give exactly one of `steps` or `epochs`")
        return self


class TrainData(_Strict):
    """One domain's training prompts: a benchmark's training split, a JSONL file or a Hub dataset."""

    benchmark: str | None = None
    """A synthetic benchmark whose generator draws training prompts under a training seed (never its test
    items); they are scored with that benchmark's scorer."""
    path: str | None = None
    """A JSONL file, one `{"id", "prompt", "reference"}` object per line, scored with `scorer`."""
    hub: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
    """A Hugging Face Hub dataset (`org/name`) whose rows become prompts and references, scored with `scorer`;
    the planner asks the Hub only for the commit of `revision`, and the train job downloads that commit."""
    revision: str | None = None
    """For `hub`: a branch, tag or 40-hex commit; a branch or tag is resolved to its commit when planned."""
    split: str = Field(default="train", pattern=r"^[\w.-]+$")
    """For `hub`: the split whose data files are read (`train`: files such as `train.parquet` or
    `data/train-00000-of-00001.parquet`)."""
    files: list[str] | None = Field(default=None, min_length=1)
    """For `hub`: the data files to read (parquet or jsonl, paths in the repo), instead of the split's."""
    prompt_field: str | None = Field(default=None, pattern=r"^[^.\s]+(\.[^.\s]+)*$")
    """For `hub`: dotted path to the prompt in a row: a string, or chat messages whose last user message's
    content is the prompt."""
    prompt_suffix: str = ""
    """For `hub`: text appended to every prompt as written (e.g. an answer-format instruction)."""
    reference_field: str | None = Field(default=None, pattern=r"^[^.\s]+(\.[^.\s]+)*$")
    """For `hub`: dotted path to the reference in a row, e.g. `reward_model.ground_truth`."""
    reference_format: Literal["text", "stdio_tests"] = "text"
    """For `hub`: `text` (the value as it is: a math answer, a choice label) or `stdio_tests` (JSON tests
    `[{"input", "output"}]` or `{"inputs": [...], "outputs": [...]}`, made into a `code_stdio` reference;
    rows whose tests are not stdin/stdout are left out)."""
    id_field: str | None = Field(default=None, pattern=r"^[^.\s]+(\.[^.\s]+)*$")
    """For `hub`: dotted path to a row's id; default `<split>-<row number in the split's files>`."""
    where: dict[str, str | int | float | bool] = {}
    """For `hub`: keep only rows whose fields (dotted paths) equal these values."""
    exclude: dict[str, list[str | int | float | bool]] = {}
    """For `hub`: leave out rows whose field (dotted path) is one of the listed values."""
    shuffle: bool = False
    """For `hub`: shuffle the kept rows with `seed` (as `datasets`' `Dataset.shuffle(seed=...)` does) before
    taking the first `examples`."""
    scorer: str | None = None
    """For `path` and `hub`: the scorer of the references (math, choice, code_function, code_stdio,
    polyglot)."""
    examples: int | None = Field(default=None, ge=1, le=10_000_000)
    """How many prompts: required for `benchmark`; for `path`, the first `examples` lines (default all); for
    `hub`, the first `examples` rows kept (default all)."""
    seed: int = 0
    """Seed of the training split drawn from a benchmark generator, or of `hub` data's `shuffle`."""

    @model_validator(mode="after")
    def _one_source(self) -> "TrainData":
        sources = [name for name in ("benchmark", "path", "hub") if getattr(self, name) is not None]
        if len(sources) != 1:
            given = f" (given: {', '.join(sources)})" if sources else ""
            raise ValueError(f"give exactly one of `benchmark`, `path` or `hub`{given}")
        if self.benchmark is not None and (self.scorer is not None or self.examples is None):
            raise ValueError("`benchmark` data needs `examples`, and no `scorer`: it uses the benchmark's")
        if self.path is not None and self.scorer is None:
            raise ValueError("`path` data needs `scorer`")
        problem = self._hub_problem()
        if problem:
            raise ValueError(problem)
        return self

    def _hub_problem(self) -> str:
        """What is wrong with the `hub` fields, or ''."""
        hub_only = [
            "revision", "split", "files", "prompt_field", "prompt_suffix", "reference_field",
            "reference_format", "id_field", "where", "exclude", "shuffle",
        ]  # fmt: skip
        if self.hub is None:
            stray = [f"`{name}`" for name in hub_only if name in self.model_fields_set]
            return f"{', '.join(stray)} apply only to `hub` data" if stray else ""
        needed = ("scorer", "revision", "prompt_field", "reference_field")
        missing = [f"`{name}`" for name in needed if not getattr(self, name)]
        if missing:
            return f"`hub` data needs {', '.join(missing)}"
        if "seed" in self.model_fields_set and not self.shuffle:
            return "`seed` orders `hub` data only with `shuffle: true`"
        if any(not values for values in self.exclude.values()):
            return "`exclude` needs at least one value per field"
        bad = [f for f in self.files or [] if not f or f.startswith("/") or ".." in f.split("/")]
        if bad:
            return f"`files` are paths inside the dataset repo; not {bad[0]!r}"
        return ""


class TrainSpec(_Strict):
    """One single-domain RPT run of an interventional study; the trained model gets `name`."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    """Name of the trained model in reports and MLflow."""
    domain: Domain
    """The one domain its data belongs to: benchmarks of this domain are `seen` for it."""
    data: TrainData
    """Its training prompts."""
    algorithm: Algorithm = "grpo"
    """RPT algorithm."""
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    """Training seed (initial sampling, data order); numpy, under TRL, takes at most 2**32 - 1."""
    hyperparameters: dict[str, Any] = {}
    """Changes to the study's `training` hyperparameters for this run only (same field names)."""


class OpenRlhfSettings(_Strict):
    """How an OpenRLHF run uses its GPUs: placement and memory, not what it learns.

    These go in the train job's context, not its id (the same run on 8 or 16 GPUs is the same run), except
    `extra_args`, which can change what is learnt and so enters the id.
    """

    nodes: int = Field(default=1, ge=1, le=256)
    """Machines the run spans: 1 runs in one pod (Ray started inside it), more in a KubeRay RayJob."""
    gpus_per_node: int = Field(default=8, ge=1, le=16)
    """GPUs of each machine; the actor, reference model and vLLM engines share them (`colocate`)."""
    vllm_engines: int | None = Field(default=None, ge=1, le=4096)
    """vLLM rollout engines; default every GPU of the run divided by `vllm_tensor_parallel`."""
    vllm_tensor_parallel: int = Field(default=1, ge=1, le=16)
    """GPUs per vLLM engine."""
    colocate: bool = True
    """Actor, reference and vLLM engines take turns on the same GPUs (OpenRLHF's hybrid engine, with vLLM
    and DeepSpeed sleep); false gives the engines GPUs of their own on top of the actor's."""
    gpu_memory_utilization: float = Field(default=0.6, gt=0, le=0.95)
    """Share of GPU memory vLLM may take (colocated runs leave the rest to DeepSpeed)."""
    zero_stage: Literal[1, 2, 3] = 2
    """DeepSpeed ZeRO stage of the actor and reference model."""
    micro_batch_size: int = Field(default=4, ge=1, le=1024)
    """Samples per GPU per forward/backward pass of the update."""
    rollout_micro_batch_size: int = Field(default=8, ge=1, le=1024)
    """Samples per GPU per forward pass when computing log-probabilities of the rollouts."""
    gradient_checkpointing: bool = True
    """Recompute activations in the backward pass (less memory, about a third more compute)."""
    extra_args: dict[str, str | int | float | bool | list[str | int | float]] = {}
    """More OpenRLHF flags, e.g. `{"--ds.packing_samples": true}`: checked against the installed OpenRLHF's
    parser, and never one that the flag table sets itself (`training/openrlhf_flags.py`)."""

    def gpus(self) -> int:
        """Every GPU of the run."""
        return self.nodes * self.gpus_per_node

    def engines(self) -> int:
        """The vLLM engines the run starts."""
        return self.vllm_engines or max(1, self.gpus() // self.vllm_tensor_parallel)


def merged_hyper(defaults: TrainHyper, changes: dict[str, Any]) -> TrainHyper:
    """A run's hyperparameters: the study's defaults with its changes; raises ValidationError when bad."""
    values = defaults.model_dump(exclude_unset=True)
    if "steps" in changes or "epochs" in changes:
        values.pop("steps", None)
        values.pop("epochs", None)
    return TrainHyper.model_validate({**values, **changes})


def check_hyper(defaults: TrainHyper, changes: dict[str, Any], where: str) -> list[str]:
    """Problems of one run's hyperparameter changes, one line each, naming `where` and what is accepted."""
    unknown = sorted(set(changes) - set(TrainHyper.model_fields))
    if unknown:
        accepted = ", ".join(sorted(TrainHyper.model_fields))
        return [f"{where}.{name}: unknown hyperparameter; accepted: {accepted}" for name in unknown]
    try:
        merged_hyper(defaults, changes)
    except ValidationError as err:
        return [
            f"{where}{'.' if e['loc'] else ''}{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in err.errors()
        ]
    return []
