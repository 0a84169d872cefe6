"""TRL's GRPOTrainer as the local trainer: a CPU, or one GPU in bf16 where it has one.

The algorithms map onto TRL's loss variants: `grpo` (group-normalised advantages, length-normalised
loss), `dr_grpo` (no standard-deviation scaling, no length bias) and `dapo` (token-level loss, wider
upper clip, truncated completions masked). TRL's checkpoints (weights, optimiser, scheduler, RNG, trainer
state) are what a resumed run continues from.
"""

from __future__ import annotations

import math
import os
from typing import Any

from rpt_transfer.errors import JobError
from rpt_transfer.training.base import OnCheckpoint, OnStep, TrainRequest, require_chat_template

DAPO_CLIP_HIGH = 0.28
"""Upper clip of DAPO ("clip-higher"), from the DAPO paper; TRL's documentation recommends the same."""
CPU_THREADS_ENV = "RPT_TRAIN_THREADS"


class TrlTrainer:
    """Trainer backend on TRL."""

    def train(self, request: TrainRequest, on_step: OnStep, on_checkpoint: OnCheckpoint) -> dict[str, float]:
        """Train with GRPOTrainer; see `Trainer.train`."""
        import torch
        from datasets import Dataset
        from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
        from trl import GRPOTrainer

        cuda = torch.cuda.is_available()
        if not cuda:
            torch.set_num_threads(int(os.environ.get(CPU_THREADS_ENV, "1")))
        try:
            tokenizer = AutoTokenizer.from_pretrained(request.model_dir, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(
                request.model_dir, local_files_only=True, dtype=torch.float32
            )
        except (OSError, ValueError) as err:
            reason = " ".join(str(err).split())[:300]  # transformers' messages span lines; ours is one
            raise JobError(f"base model in {request.model_dir} cannot be loaded: {reason}") from None
        require_chat_template(tokenizer, request.model_dir, request.prompt_mode)
        rows = [
            {"prompt": _prompt(e.prompt, request.prompt_mode), "reference": e.reference, "id": e.id}
            for e in request.examples
        ]
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=[request.reward],
            args=grpo_config(request, use_cpu=not cuda, bf16=cuda and torch.cuda.is_bf16_supported()),
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
        )
        trainer.remove_callback(PrinterCallback)  # it prints every log dict; the job reports progress itself
        trainer.add_callback(_relay(on_step, on_checkpoint))
        resume = str(request.resume_from) if request.resume_from is not None else None
        result = trainer.train(resume_from_checkpoint=resume)
        trainer.model.to(torch.float32)  # the checkpoint is float32 whatever ran the steps
        trainer.save_model(str(request.out_dir))
        tokenizer.save_pretrained(str(request.out_dir))
        return {key: float(value) for key, value in result.metrics.items() if _number(value)}


def grpo_config(request: TrainRequest, *, use_cpu: bool, bf16: bool) -> Any:
    """The GRPOConfig of a request; one place that maps our fields onto TRL's."""
    from trl import GRPOConfig

    hyper = request.hyper
    variant: dict[str, Any] = {
        "grpo": {"loss_type": "grpo", "scale_rewards": "group"},
        "dr_grpo": {"loss_type": "dr_grpo", "scale_rewards": "none"},
        "dapo": {
            "loss_type": "dapo",
            "scale_rewards": "group",
            "epsilon_high": DAPO_CLIP_HIGH,
            "mask_truncated_completions": True,
        },
    }[request.algorithm]
    length = {"max_steps": hyper.steps} if hyper.steps is not None else {"num_train_epochs": hyper.epochs}
    return GRPOConfig(
        output_dir=str(request.work_dir),
        per_device_train_batch_size=hyper.prompts_per_step * hyper.rollouts_per_prompt,
        num_generations=hyper.rollouts_per_prompt,
        max_completion_length=hyper.max_new_tokens,
        learning_rate=hyper.learning_rate,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=hyper.warmup_steps,
        beta=hyper.kl_coef,
        epsilon=hyper.clip_epsilon,
        temperature=hyper.temperature,
        top_p=hyper.top_p,
        seed=request.seed,
        data_seed=request.seed,
        logging_steps=1,
        save_strategy="steps",
        save_steps=hyper.checkpoint_every,
        save_total_limit=2,
        use_cpu=use_cpu,
        bf16=bf16,
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
        **length,
        **variant,
    )


def _prompt(text: str, mode: str) -> Any:
    """TRL applies the chat template to a list of messages and sends a string as it is."""
    return [{"role": "user", "content": text}] if mode == "chat" else text


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _relay(on_step: OnStep, on_checkpoint: OnCheckpoint) -> Any:
    """A transformers callback that passes step metrics and saved checkpoints to the train job."""
    from transformers import TrainerCallback

    class Relay(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **_: Any) -> None:
            metrics = {key: float(value) for key, value in (logs or {}).items() if _number(value)}
            if metrics and "train_runtime" not in metrics:
                on_step(state.global_step, metrics)

        def on_save(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            from pathlib import Path

            on_checkpoint(state.global_step, Path(args.output_dir) / f"checkpoint-{state.global_step}")

    return Relay()
