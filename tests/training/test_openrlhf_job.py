"""The train job on the OpenRLHF backend, end to end: `rpt-transfer job run` against S3 (moto) and MLflow.

OpenRLHF itself needs GPUs, Ray and DeepSpeed, so its process is the double in tests/fake_openrlhf, which
parses our argv with the installed OpenRLHF's own parser and checks, scores rollouts through the reward we
name (the function file, or the reward service over HTTP), logs TensorBoard events with torch's
SummaryWriter and lays checkpoints out as DeepSpeed does. Everything on our side is the real code: export,
reward, event tail into MLflow, checkpoint upload to S3 as they appear, resume after a kill, final commit.
"""

import json
import os
import socket
import subprocess
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from mlflow import MlflowClient

from conftest import CLI, REPO, run_cli, write_study
from rpt_transfer.jobs.train_metrics import METRICS_FILE, from_jsonl
from rpt_transfer.plan_store import read_plan
from rpt_transfer.store import Store
from servers_s3 import REGION, TEST_KEY, new_bucket_name, s3_server, set_s3_env  # noqa: F401

TESTS = Path(__file__).resolve().parents[1]
FAKES = f"{TESTS / 'fake_openrlhf'}{os.pathsep}{TESTS / 'fake_vllm'}"


def openrlhf_study(store: str, tracking: str, seed: int, data: dict | None = None) -> dict:
    """A one-run study on the fake OpenRLHF; each `seed` is another train job on the same pre-trained base."""
    return {
        "study": f"orl-{seed}",
        "kind": "interventional",
        "store": store,
        "tracking_uri": tracking,
        "models": {
            "base": {"tiny": {"corpus": {"smoke_arith": 64}, "steps": 4, "seed": 0}, "prompt_mode": "chat"}
        },
        "base": "base",
        "trainer": "openrlhf",
        "openrlhf": {"gpus_per_node": 1},
        "training": {
            "learning_rate": 0.001,
            "steps": 6,
            "max_new_tokens": 8,
            "rollouts_per_prompt": 2,
            "prompts_per_step": 2,
            "checkpoint_every": 2,
        },
        "train": [
            {
                "name": "m",
                "domain": "code" if data else "math",
                "seed": seed,
                "data": data or {"benchmark": "smoke_arith", "examples": 32},
            }
        ],
        "benchmarks": ["smoke_arith"],
        "limit": 2,
        "sampling": {"max_tokens": 6, "n": 1},
    }


def job_env(tmp_path: Path, **more: str) -> dict[str, str]:
    return {
        "PYTHONPATH": FAKES,
        "RPT_CACHE": str(tmp_path / "cache"),
        "FAKE_OPENRLHF_RECORD": str(tmp_path / "record.jsonl"),
        **more,
    }


@pytest.fixture(scope="module")
def bucket(s3_server: str, mlflow_server: str) -> Iterator[tuple[str, str]]:  # noqa: F811
    """One bucket for the module: the tiny base is pre-trained once, and each test trains its own job."""
    with pytest.MonkeyPatch.context() as patch:
        set_s3_env(patch, s3_server, TEST_KEY, TEST_KEY)
        name = new_bucket_name()
        boto3.client("s3", endpoint_url=s3_server, region_name=REGION).create_bucket(Bucket=name)
        yield f"s3://{name}/root", mlflow_server


@pytest.fixture
def prepared(request: pytest.FixtureRequest, tmp_path: Path, bucket: tuple[str, str]) -> dict:
    """A prepared study in S3 with its base pre-trained: what a workflow has before `train/0`."""
    store_uri, tracking = bucket
    seed = zlib.crc32(request.node.name.encode()) % 1000  # a train job of each test's own
    data = getattr(request, "param", None)
    if data is not None:  # a training file of code tasks
        rows = [
            {"id": f"c{i}", "prompt": f"Write f returning {i}.", "reference": f"assert f() == {i}"}
            for i in range(8)
        ]
        (tmp_path / "code.jsonl").write_text(
            "".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8"
        )
        data = {"path": str(tmp_path / "code.jsonl"), "scorer": "code_function"}
    spec = write_study(tmp_path / "orl.yaml", openrlhf_study(store_uri, tracking, seed, data))
    prepared = run_cli("prepare", str(spec), env=job_env(tmp_path))  # where OpenRLHF is installed
    assert prepared.returncode == 0, prepared.stderr
    uri = prepared.stdout.strip()
    pretrain = run_cli("job", "run", "--plan", uri, "--part", "pretrain", env=job_env(tmp_path))
    assert pretrain.returncode == 0, pretrain.stderr[-2000:]
    (train,) = [job for job in read_plan(uri).jobs if job.kind == "train"]
    return {"uri": uri, "store": Store.from_uri(store_uri), "job": train, "tracking": tracking}


def train(prepared: dict, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    return run_cli("job", "run", "--plan", prepared["uri"], "--part", "train/0", env=job_env(tmp_path, **env))


def records(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "record.jsonl").read_text().splitlines()]


def test_a_killed_run_resumes_from_its_stored_checkpoint_and_logs_every_step_once(
    prepared: dict, tmp_path: Path
) -> None:
    store, job = prepared["store"], prepared["job"]
    killed = train(prepared, tmp_path, FAKE_OPENRLHF_DIE_AFTER_STEP="4")
    assert killed.returncode != 0
    assert "OpenRLHF stopped with exit code 1 after step 4" in killed.stderr, killed.stderr[-6000:]
    assert store.is_done(f"training/{job.id}/step-000004")
    assert not store.is_done(f"checkpoints/{job.id}")

    done = train(prepared, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "fake openrlhf: resuming from global_step4" in done.stderr
    first, second = records(tmp_path)
    assert (first["resumed_from"], second["resumed_from"]) == (0, 4)
    assert sorted(map(int, second["rewards"])) == [5, 6]
    assert "--ckpt.load_enable" in second["argv"]

    assert store.is_done(f"checkpoints/{job.id}")
    assert store.list_keys(f"training/{job.id}") == []  # the resume area goes once the weights are committed
    rows = from_jsonl(store.read_object(f"checkpoints/{job.id}", METRICS_FILE))
    assert [row.step for row in rows] == [1, 2, 3, 4, 5, 6]
    assert all(row.metrics["reward_failure"] == 0.0 for row in rows)
    assert all(row.metrics["reward"] == 0.5 for row in rows)  # half the fake's samples answer right

    client = MlflowClient(prepared["tracking"])
    (run,) = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], f"tags.job_id = '{job.id}'"
    )
    history = client.get_metric_history(run.info.run_id, "reward")
    assert sorted((m.step, m.value) for m in history) == [(step, 0.5) for step in range(1, 7)]
    assert run.info.status == "FINISHED"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def reward_service() -> Iterator[str]:
    """`rpt-transfer reward-server` on loopback, without credentials in its environment."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_TRACKING_"))}
    process = subprocess.Popen(
        [*CLI, "reward-server", "--port", str(port), "--workers", "2"],
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the reward service did not start"
            time.sleep(0.2)
    yield f"{url}/get_reward"
    process.terminate()
    process.wait(timeout=30)


def test_rewards_through_the_reward_service(prepared: dict, tmp_path: Path, reward_service: str) -> None:
    done = train(prepared, tmp_path, RPT_REWARD_URL=reward_service)
    assert done.returncode == 0, done.stderr[-3000:]
    (record,) = records(tmp_path)
    argv = record["argv"]
    assert argv[argv.index("--reward.remote_url") + 1] == reward_service
    rows = from_jsonl(prepared["store"].read_object(f"checkpoints/{prepared['job'].id}", METRICS_FILE))
    assert [row.metrics["reward"] for row in rows] == [0.5] * 6


def test_an_unreachable_reward_service_fails_in_one_line_before_training(
    prepared: dict, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}/get_reward"
    result = train(prepared, tmp_path, RPT_REWARD_URL=url)
    assert result.returncode != 0
    assert f"RPT_REWARD_URL: the reward service at {url} is unreachable" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "record.jsonl").exists()  # OpenRLHF never started


@pytest.mark.parametrize("prepared", ["code"], indirect=True)
def test_code_rewards_without_a_reward_service_are_refused(prepared: dict, tmp_path: Path) -> None:
    """Model-written code never runs in the trainer's process: GPUs and credentials are there."""
    result = train(prepared, tmp_path, RPT_REWARD_URL="")
    assert result.returncode != 0, result.stderr[-3000:]
    assert "reward: scorer code_function runs model-written code" in result.stderr
    assert "set RPT_REWARD_URL to a reward service" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "record.jsonl").exists()
