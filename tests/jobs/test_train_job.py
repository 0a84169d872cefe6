"""The train job: training data, rewards, and a run killed midway that resumes from the store."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from conftest import CLI, REPO, run_cli
from rpt_transfer.errors import JobError
from rpt_transfer.jobs.train_metrics import METRICS_FILE, from_jsonl
from rpt_transfer.settings import default_tracking_uri
from rpt_transfer.store import Store
from rpt_transfer.training.data import read_jsonl
from rpt_transfer.training.rewards import MIN_SAMPLES_BEFORE_STOP, ScorerReward


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            b'{"id": "a", "prompt": "p", "reference": "1"}\n{"id": "b", "prompt": "p"}\n',
            "t.jsonl:2: field 'reference'",
        ),
        (b'{"id": "a", "prompt": "p", "reference": 1}\n', "t.jsonl:1: field 'reference' is missing or not"),
        (b"not json\n", "t.jsonl:1: not JSON"),
        (b"[1, 2]\n", "t.jsonl:1: not an object"),
        (b"\n\n", "t.jsonl: no examples"),
        (b"\xff\xfe", "t.jsonl: not UTF-8"),
    ],
)
def test_bad_training_files_fail_with_the_line_and_field(content: bytes, expected: str) -> None:
    with pytest.raises(JobError, match=r"each line needs|accepted") as err:
        read_jsonl(Path("t.jsonl"), content)
    assert expected in str(err.value)


def test_training_file_rows_become_examples() -> None:
    rows = [{"id": f"q{i}", "prompt": f"What is {i}+1?", "reference": str(i + 1)} for i in range(3)]
    data = "\n".join(json.dumps(row) for row in rows).encode()
    assert [tuple(e) for e in read_jsonl(Path("t.jsonl"), data)] == [tuple(r.values()) for r in rows]


def test_rewards_come_from_the_scorer_and_failures_are_counted(capsys: pytest.CaptureFixture) -> None:
    reward = ScorerReward("math")
    assert reward(
        None, ["ANSWER: 4", "ANSWER: 5", [{"role": "assistant", "content": "ANSWER: 4"}]], ["4"] * 3
    ) == [
        1.0,
        0.0,
        1.0,
    ]
    broken = ScorerReward("code_function")
    assert broken(None, ["def f(x):\n    return x"], ["{not a reference"]) == [0.0]
    assert (broken.failures, broken.samples) == (1, 1)
    assert "reward code_function: scorer_error" in capsys.readouterr().err


def test_a_reward_that_keeps_failing_stops_training() -> None:
    broken = ScorerReward("code_function")
    with pytest.raises(JobError, match=r"failed on \d+/\d+ samples .* training stopped"):
        for _ in range(MIN_SAMPLES_BEFORE_STOP):
            broken(None, ["x"], ["{not a reference"])


def test_rewards_scored_elsewhere_are_counted_and_stop_training_alike() -> None:
    """OpenRLHF scores in its own processes: the job folds each step's failures into the same counters."""
    reward = ScorerReward("math")
    reward.count_elsewhere(MIN_SAMPLES_BEFORE_STOP, 3)  # 3 of 64: under 5%
    assert (reward.samples, reward.failures, reward.failure_rate()) == (64, 3, 3 / 64)
    with pytest.raises(JobError, match=r"failed on 8/128 samples .* training stopped"):
        reward.count_elsewhere(64, 5)


def train_study(store: Path, steps: int = 6) -> dict:
    return {
        "study": "train-mini",
        "kind": "interventional",
        "store": str(store),
        "models": {"base": {"tiny": {"corpus": {"smoke_arith": 64}, "steps": 4, "seed": 0}}},
        "base": "base",
        "training": {
            "learning_rate": 0.001,
            "steps": steps,
            "max_new_tokens": 8,
            "rollouts_per_prompt": 2,
            "prompts_per_step": 2,
            "checkpoint_every": 2,
        },
        "train": [{"name": "m", "domain": "math", "data": {"benchmark": "smoke_arith", "examples": 32}}],
        "benchmarks": ["smoke_arith"],
        "limit": 2,
        "sampling": {"max_tokens": 6, "n": 1},
    }


def test_train_killed_midway_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    """SIGKILL during training: no manifest for the incomplete checkpoint; the re-run resumes and finishes."""
    store = tmp_path / "store"
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(train_study(store, steps=40)), encoding="utf-8")
    env = {**os.environ, "RPT_CACHE": str(tmp_path / "cache")}
    process = subprocess.Popen(
        [*CLI, "run", str(study)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 400
    while not list(store.glob("training/*/step-*/MANIFEST.json")):
        assert process.poll() is None and time.monotonic() < deadline, "no resumable checkpoint appeared"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = time.time() * 1000
    (train_job,) = [p.name for p in store.glob("training/*")]
    assert not (store / "checkpoints" / train_job / "MANIFEST.json").exists()
    saved = sorted(p.parent.name for p in store.glob(f"training/{train_job}/step-*/MANIFEST.json"))

    resumed = run_cli("run", str(study), env={"RPT_CACHE": str(tmp_path / "cache")})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = (store / "logs" / "train-mini" / f"train-{train_job}.log").read_text()
    assert f"resuming from step {int(saved[-1].removeprefix('step-'))}" in log
    manifest = json.loads((store / "checkpoints" / train_job / "MANIFEST.json").read_text())
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {o["name"] for o in manifest["objects"]}
    assert not list(store.glob(f"training/{train_job}/*/MANIFEST.json"))  # resume area removed
    assert "optimizer.pt" not in {o["name"] for o in manifest["objects"]}  # trainer state stays behind
    steps = from_jsonl(Store.from_uri(str(store)).read_object(f"checkpoints/{train_job}", METRICS_FILE))
    assert [row.step for row in steps] == list(range(1, 41))  # every step exactly once
    resumed_from = int(saved[-1].removeprefix("step-"))
    assert all((row.timestamp < killed_at) == (row.step <= resumed_from) for row in steps)  # kept, not redone
    client = MlflowClient(default_tracking_uri(store))
    experiment = client.get_experiment_by_name("rpt-transfer/train-mini")
    (run,) = client.search_runs([experiment.experiment_id], "tags.run_type = 'train'")
    history = client.get_metric_history(run.info.run_id, "loss")
    assert sorted(point.step for point in history) == list(range(1, 41))  # MLflow too: each step once


def test_a_tampered_base_checkpoint_fails_the_train_job_with_one_line(tmp_path: Path) -> None:
    from rpt_transfer.planner import make_plan
    from rpt_transfer.spec import parse_study

    store = tmp_path / "store"
    plan = make_plan(
        parse_study(yaml.safe_dump(train_study(store, steps=2)), "s.yaml"), f"file://{store}", None
    )
    path = tmp_path / "plan.json"
    path.write_text(plan.to_json())
    pretrain = next(job for job in plan.jobs if job.kind == "pretrain")
    train = next(job for job in plan.jobs if job.kind == "train")
    env = {"RPT_CACHE": str(tmp_path / "cache")}
    first = run_cli("job", "run", pretrain.id, "--plan", str(path), env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    weights = Path(Store.from_uri(str(store)).object_location(pretrain.key, "model.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-8] + b"tampered")
    result = run_cli("job", "run", train.id, "--plan", str(path), env=env)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "model.safetensors" in line and "sha256" in line, line
    assert not (store / train.key / "MANIFEST.json").exists()


def test_a_base_model_that_cannot_be_loaded_fails_with_one_line(tmp_path: Path) -> None:
    from rpt_transfer.training.base import TrainRequest, load_trainer
    from rpt_transfer.training.config import TrainHyper
    from rpt_transfer.training.data import TrainExample

    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "no-such-architecture"}')
    request = TrainRequest(
        model_dir=broken,
        prompt_mode="chat",
        examples=[TrainExample("a", "What is 1+1?", "2")],
        reward=ScorerReward("math"),
        algorithm="grpo",
        hyper=TrainHyper(steps=1, max_new_tokens=4, rollouts_per_prompt=2, prompts_per_step=1),
        seed=0,
        work_dir=tmp_path / "work",
        resume_from=None,
        out_dir=tmp_path / "out",
    )
    with pytest.raises(JobError, match=r"base model in .* cannot be loaded") as err:
        load_trainer("trl").train(request, lambda step, metrics: None, lambda step, folder: None)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()
