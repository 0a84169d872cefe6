"""The double of `python -m openrlhf.cli.train_ppo_ray`: OpenRLHF's side of the backend's contracts, on a CPU.

What it does, as OpenRLHF 0.11.2 does (read from its source):
- parses argv with the installed OpenRLHF's own parser and assertions (`real_parser.run_main`);
- reads the prompt file (`--data.prompt_dataset`, keys `--data.input_key` / `--data.label_key`);
- resumes with `--ckpt.load_enable` from `<ckpt.path>/_actor/latest` and the tag's client states;
- per step takes `--rollout.batch_size` prompts x `--rollout.n_samples_per_prompt` samples and scores each
  one with `--reward.remote_url`: a `.py` file's `reward_func([query], [prompt], [label])`, or an HTTP POST of
  `{"query", "prompts", "labels"}`, where query = prompt + answer + the end-of-sequence text (OpenRLHF decodes
  with skip_special_tokens=False);
- logs `train/<key>` scalars per step with torch's SummaryWriter under `<tensorboard_dir>/<run_name>/`,
  the reward's extra_logs averaged per step as OpenRLHF does;
- every `--ckpt.save_steps` writes `_actor/global_step<N>/` and then `_actor/latest`, keeping `--ckpt.max_num`;
- at the end saves the model in HF format to `--ckpt.output_dir` (here: the starting weights, unchanged).

It does not learn. Test knobs (environment): FAKE_OPENRLHF_STEP_SECONDS (pause per step),
FAKE_OPENRLHF_DIE_AFTER_STEP (exit 1 after that step's checkpoint, as a killed pod), FAKE_OPENRLHF_RECORD
(a JSON-lines file: the argv, the step it resumed from, each step's mean reward). Answers: for each prompt,
the first half of its samples answer `ANSWER: <the label's reference>` (peeked: a test double may), the
rest wrong.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from real_parser import run_main


def _reward_caller(urls: list[str]) -> Any:
    if urls[0].endswith(".py"):
        spec = importlib.util.spec_from_file_location("reward_func", urls[0])
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.reward_func

    def post(queries: list[str], prompts: list[str], labels: list[str]) -> dict:
        body = json.dumps({"query": queries, "prompts": prompts, "labels": labels}).encode()
        request = urllib.request.Request(urls[0], body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=180) as answer:
            return json.loads(answer.read())

    return post


def _first(value: Any) -> float:
    return float(value[0] if isinstance(value, list) else value)


def _resume_point(args: Any) -> int:
    actor = Path(args.ckpt.path) / "_actor"
    if not (args.ckpt.load_enable and actor.exists()):
        return 0
    tag = (actor / "latest").read_text().strip()
    states = json.loads((actor / tag / "client_states.json").read_text())
    print(f"fake openrlhf: resuming from {tag}", file=sys.stderr, flush=True)
    return int(states["global_step"])


def _save_checkpoint(args: Any, step: int) -> None:
    """As OpenRLHF's `save_ckpt` with DeepSpeed: rotate first, then the tag, then `latest`, then metric.json."""
    actor = Path(args.ckpt.path) / "_actor"
    actor.mkdir(parents=True, exist_ok=True)
    regular = sorted(
        (p for p in actor.iterdir() if p.is_dir() and p.name.startswith("global_step")),
        key=lambda p: int(p.name.removeprefix("global_step")),
    )
    for old in regular[: max(0, len(regular) - args.ckpt.max_num + 1)]:
        shutil.rmtree(old)
    tag = actor / f"global_step{step}"
    tag.mkdir()
    (tag / "mp_rank_00_model_states.pt").write_bytes(os.urandom(64))
    (tag / "client_states.json").write_text(json.dumps({"global_step": step}))
    (actor / "latest").write_text(f"global_step{step}")
    (tag / "metric.json").write_text(json.dumps({"metric_key": None, "metric_value": None}))


def train(args: Any) -> None:
    from torch.utils.tensorboard import SummaryWriter
    from transformers import AutoTokenizer

    rows = [json.loads(line) for line in Path(args.data.prompt_dataset).read_text().splitlines() if line]
    tokenizer = AutoTokenizer.from_pretrained(args.actor.model_name_or_path, local_files_only=True)
    eos = tokenizer.eos_token or ""
    reward = _reward_caller(args.reward.remote_url)
    batch, samples = args.rollout.batch_size, args.rollout.n_samples_per_prompt
    steps = len(rows) * samples // args.train.batch_size * args.train.num_episodes * args.train.max_epochs
    start = _resume_point(args)
    record = os.environ.get("FAKE_OPENRLHF_RECORD")
    die_after = int(os.environ.get("FAKE_OPENRLHF_DIE_AFTER_STEP", "0"))
    pause = float(os.environ.get("FAKE_OPENRLHF_STEP_SECONDS", "0"))
    log_dir = Path(args.logger.tensorboard_dir) / args.logger.wandb.run_name
    writer = SummaryWriter(log_dir=str(log_dir))
    means = {}
    for step in range(start + 1, steps + 1):
        logs: dict[str, list[float]] = {"reward": []}
        for row in rows[(step - 1) * batch : step * batch]:
            prompt, label = row[args.data.input_key], row[args.data.label_key]
            reference = json.loads(label)["reference"]
            for index in range(samples):
                answer = f"ANSWER: {reference}" if index < samples // 2 else "I do not know."
                info = reward([prompt + answer + eos], [prompt], [label])
                logs["reward"].append(_first(info["rewards"]))
                for key, value in (info.get("extra_logs") or {}).items():
                    logs.setdefault(key, []).append(_first(value))
        mean = {key: sum(values) / len(values) for key, values in logs.items()}
        mean |= {"rollout/num_samples": float(len(logs["reward"])), "policy_loss": 0.1 / step}
        for key, value in mean.items():
            writer.add_scalar(f"train/{key}", value, step)
        writer.add_text("train/generated_samples", f"Sample:\\n{rows[0][args.data.input_key]}", step)
        writer.flush()
        means[step] = mean["reward"]
        if step % args.ckpt.save_steps == 0:
            _save_checkpoint(args, step)
        if die_after and step >= die_after:
            writer.close()
            _record(record, args, start, means)
            os._exit(1)
        time.sleep(pause)
    writer.close()
    output = Path(args.ckpt.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    for item in Path(args.actor.model_name_or_path).iterdir():
        if item.is_file():
            shutil.copy2(item, output / item.name)
    _record(record, args, start, means)


def _record(path: str | None, args: Any, start: int, means: dict[int, float]) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"argv": sys.argv[1:], "resumed_from": start, "rewards": means}) + "\n")


if __name__ == "__main__":
    run_main(sys.argv[1:], train)
