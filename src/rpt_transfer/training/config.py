"""What a study says about RPT training: algorithm, hyperparameters and the one domain's training set.

Kept apart from `spec.py` because the train job, the trainer backends and the planner all read these
models, and none of them should need the rest of the spec to do so.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rpt_transfer.benchmarks.base import Domain

Algorithm = Literal["grpo", "dr_grpo", "dapo"]
"""GRPO and the loss variants every trainer backend offers (group-normalised, Dr. GRPO, DAPO-style)."""
TrainerName = Literal["trl", "openrlhf"]
"""`trl`: TRL's GRPOTrainer on a CPU or one GPU (local); `openrlhf`: the cluster trainer."""
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
    """One domain's training prompts: the training split of a synthetic benchmark, or a JSONL file."""

    benchmark: str | None = None
    """A synthetic benchmark whose generator draws training prompts under a training seed (never its test
    items); they are scored with that benchmark's scorer."""
    path: str | None = None
    """A JSONL file, one `{"id", "prompt", "reference"}` object per line, scored with `scorer`."""
    scorer: str | None = None
    """For `path`: the scorer of its references (math, choice, code_function, code_stdio, polyglot)."""
    examples: int | None = Field(default=None, ge=1, le=10_000_000)
    """How many prompts: required for `benchmark`; for `path`, the first `examples` lines (default all)."""
    seed: int = 0
    """Seed of the training split drawn from a benchmark generator."""

    @model_validator(mode="after")
    def _one_source(self) -> "TrainData":
        if (self.benchmark is None) == (self.path is None):
            raise ValueError("give exactly one of `benchmark` or `path`")
        if self.benchmark is not None and (self.scorer is not None or self.examples is None):
            raise ValueError("`benchmark` data needs `examples`, and no `scorer`: it uses the benchmark's")
        if self.path is not None and self.scorer is None:
            raise ValueError("`path` data needs `scorer`")
        return self


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
