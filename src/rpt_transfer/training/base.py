"""The trainer protocol every backend implements, and the registry that loads one by name.

A backend gets starting weights, training prompts with a reward, the algorithm and hyperparameters, and a
work folder; it reports each step's metrics and each saved checkpoint through callbacks, so the train
job (not the backend) decides what reaches MLflow and the store.
"""

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple, Protocol, get_args

from rpt_transfer.errors import JobError, RptError
from rpt_transfer.generation.base import PromptMode
from rpt_transfer.runnable import Needs, unavailable
from rpt_transfer.training.config import Algorithm, TrainerName, TrainHyper
from rpt_transfer.training.data import TrainExample
from rpt_transfer.training.rewards import ScorerReward

OnStep = Callable[[int, dict[str, float]], None]
"""Called after each optimiser step with its number (from 1) and its metrics."""
OnCheckpoint = Callable[[int, Path], None]
"""Called after a resumable checkpoint of step N was written to the given folder."""


class TrainRequest(NamedTuple):
    """Everything one training run needs."""

    model_dir: Path
    """Starting weights and tokenizer (HF format)."""
    prompt_mode: PromptMode
    """How prompts reach the model, exactly as generation sends them."""
    examples: list[TrainExample]
    """Training prompts with references."""
    reward: ScorerReward
    """Scores rollouts with the project's scorer."""
    algorithm: Algorithm
    hyper: TrainHyper
    seed: int
    work_dir: Path
    """Where the backend writes resumable checkpoints (one folder per saved step)."""
    resume_from: Path | None
    """A checkpoint folder written by an earlier, interrupted run of the same job, or None."""
    out_dir: Path
    """Where the final weights and tokenizer go, in HF format."""
    settings: Mapping[str, Any] = {}
    """The backend's own settings from the plan (OpenRLHF: the train job's `openrlhf` context and its
    `extra_args`); TRL has none."""


class Trainer(Protocol):
    """A trainer backend."""

    def train(self, request: TrainRequest, on_step: OnStep, on_checkpoint: OnCheckpoint) -> dict[str, float]:
        """Run the training; return summary metrics (e.g. `train_runtime`, `train_loss`)."""
        ...


def require_chat_template(tokenizer: Any, model_dir: Path, prompt_mode: PromptMode) -> None:
    """Refuse, in one line, a chat-mode run whose base model's tokenizer has no chat template."""
    if prompt_mode == "chat" and not tokenizer.chat_template:
        raise JobError(f"base model in {model_dir} has no chat template; use prompt_mode raw")


def _load_trl() -> Trainer:
    """TRL's GRPOTrainer on a CPU or one GPU (imports trl and torch now, not before)."""
    from rpt_transfer.training.trl_backend import TrlTrainer

    return TrlTrainer()


def _load_openrlhf() -> Trainer:
    """OpenRLHF on the GPUs of one pod or a Ray cluster (a subprocess: nothing heavy loads here)."""
    from rpt_transfer.training.openrlhf_backend import OpenRlhfTrainer

    return OpenRlhfTrainer()


TRAINERS: dict[str, Callable[[], Trainer]] = {"trl": _load_trl, "openrlhf": _load_openrlhf}
"""Trainer name → loader."""
NEEDS: dict[str, Needs] = {
    "trl": Needs(("trl", "torch")),
    "openrlhf": Needs(("openrlhf", "ray", "deepspeed", "vllm", "tensorboard"), "train"),
}
"""Trainer name → the packages its backend needs and the extra that installs them."""


def load_trainer(name: TrainerName) -> Trainer:
    """The backend called `name`, imported only now (TRL and OpenRLHF are heavy)."""
    problem = unavailable(name, TRAINERS, NEEDS, get_args(TrainerName))
    if problem is not None:
        raise RptError(f"trainer: {problem}")
    return TRAINERS[name]()
