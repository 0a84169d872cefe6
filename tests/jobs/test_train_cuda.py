"""The TRL trainer on a GPU: bf16 steps, float32 checkpoint, resume from a saved step.

CI has no GPU, so this skips there. On a GPU machine (needs torch, transformers, trl, datasets, pydantic,
math-verify, pytest): `python -m pytest --noconftest -s tests/jobs/test_train_cuda.py`.
"""

import json
import time
from pathlib import Path

import pytest
import torch

from rpt_transfer.benchmarks import get_benchmark
from rpt_transfer.tiny import TinyConfig, train_lm
from rpt_transfer.training.base import TrainRequest, load_trainer
from rpt_transfer.training.config import TrainHyper
from rpt_transfer.training.data import TrainExample, split_seed
from rpt_transfer.training.rewards import ScorerReward

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def request(tmp_path: Path, base: Path, steps: int, resume_from: Path | None = None) -> TrainRequest:
    bench = get_benchmark("smoke_arith")
    items = [bench.to_item(r) for r in bench.source.generator(split_seed(0, bench.name), 64)]
    return TrainRequest(
        model_dir=base,
        prompt_mode="chat",
        examples=[TrainExample(i.id, bench.render_prompt(i), i.reference) for i in items],
        reward=ScorerReward("math"),
        algorithm="grpo",
        hyper=TrainHyper(
            learning_rate=1e-3,
            steps=steps,
            max_new_tokens=12,
            rollouts_per_prompt=4,
            prompts_per_step=4,
            checkpoint_every=2,
            kl_coef=0.01,
        ),
        seed=0,
        work_dir=tmp_path / "work",
        resume_from=resume_from,
        out_dir=tmp_path / f"out-{steps}",
    )


def test_grpo_steps_on_the_gpu_and_resumes(tmp_path: Path) -> None:
    bench = get_benchmark("smoke_arith")
    texts = [
        f"{bench.render_prompt(bench.to_item(r))}\nANSWER: {r['answer']}"
        for r in bench.source.generator(1, 500)
    ]
    base = tmp_path / "base"
    train_lm(texts, base, config=TinyConfig(max_positions=96), steps=80, seed=0, threads=None)
    steps: list[tuple[int, dict]] = []
    saved: list[int] = []
    started = time.perf_counter()
    summary = load_trainer("trl").train(
        request(tmp_path, base, 4), lambda s, m: steps.append((s, m)), lambda s, folder: saved.append(s)
    )
    print(
        f"\n4 GRPO steps on {torch.cuda.get_device_name()}: {time.perf_counter() - started:.1f} s; {summary}"
    )
    print("step metrics:", {k: round(v, 4) for k, v in steps[-1][1].items() if k in ("reward", "loss", "kl")})
    assert [s for s, _ in steps] == [1, 2, 3, 4] and saved == [2, 4]
    assert {"reward", "loss", "kl", "completions/mean_length"} <= set(steps[-1][1])
    config = json.loads((tmp_path / "out-4" / "config.json").read_text())
    assert config.get("dtype", config.get("torch_dtype")) in (None, "float32")
    resumed: list[int] = []
    load_trainer("trl").train(
        request(tmp_path, base, 6, resume_from=tmp_path / "work" / "checkpoint-4"),
        lambda s, m: resumed.append(s),
        lambda s, folder: None,
    )
    assert resumed == [5, 6]
