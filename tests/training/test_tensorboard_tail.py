"""Tailing TensorBoard event files as OpenRLHF writes them: each step once, whole, while the writer is open."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from torch.utils.tensorboard import SummaryWriter

from rpt_transfer.training.tensorboard_tail import EventTail, StepRecord, metric_name

RUN = "rpt-run"


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def log_train(writer: SummaryWriter, global_step: int, logs: dict[str, Any]) -> None:
    """OpenRLHF 0.11.2's `TensorboardLogger.log_train`, line for line."""
    generated_samples = logs.get("generated_samples")
    for k, v in logs.items():
        if k == "generated_samples" and v is not None:
            text, reward = generated_samples
            formatted_text = f"Sample:\\n{text}\\n\\nReward: {reward:.4f}"
            writer.add_text("train/generated_samples", formatted_text, global_step)
        elif v is not None:
            writer.add_scalar(f"train/{k}", v, global_step)


def log_eval(writer: SummaryWriter, global_step: int, logs: dict[str, Any]) -> None:
    """OpenRLHF 0.11.2's `TensorboardLogger.log_eval`."""
    for k, v in logs.items():
        if v is not None:
            writer.add_scalar(f"eval/{k}", v, global_step)


def status(step: int) -> dict[str, Any]:
    """A step's logs as OpenRLHF's trainer hands them over: losses, rollout stats, a None, a sample."""
    return {
        "policy_loss": 0.5 / step,
        "generated_samples": [f"the answer is {step}", 0.25 * step],
        "rollout/reward_mean": 0.1 * step,
        "kl": None,
        "entropy_loss": float("nan") if step == 2 else 1.0 + step,
        "lr": 1e-6,
    }


def expected(step: int) -> dict[str, float]:
    """What the tail must give for `status(step)`: prefix gone, None and non-finite values and text dropped."""
    out = {"policy_loss": 0.5 / step, "rollout/reward_mean": 0.1 * step, "lr": 1e-6}
    if step != 2:
        out["entropy_loss"] = 1.0 + step
    return out


def approx(records: list[StepRecord]) -> list[tuple[int, dict[str, Any]]]:
    """Records with float32-rounded values comparable (TensorBoard stores scalars as float32)."""
    return [(r.step, {k: pytest.approx(v, rel=1e-6) for k, v in r.metrics.items()}) for r in records]


def test_steps_arrive_once_and_whole_while_the_writer_flushes(tmp_path: Path) -> None:
    writer = SummaryWriter(log_dir=str(tmp_path / RUN))
    tail = EventTail(tmp_path)
    got: list[StepRecord] = []
    try:
        for step in range(1, 7):
            logs = status(step)
            first, rest = dict(list(logs.items())[:2]), dict(list(logs.items())[2:])
            log_train(writer, step, first)
            writer.flush()
            mid = tail.poll()  # half of `step` is on disk: it must not come out yet
            assert all(r.step < step for r in mid)
            got += mid
            log_train(writer, step, rest)
            writer.flush()
            got += tail.poll()
            assert [r.step for r in got] == list(range(1, step))  # the newest step is held back
            assert tail.poll() == []  # nothing new, nothing twice
    finally:
        writer.close()
    got += tail.poll(final=True)
    assert approx(got) == [(s, expected(s)) for s in range(1, 7)]
    assert tail.poll(final=True) == []


def test_through_releases_a_held_step_and_eval_keeps_its_prefix(tmp_path: Path) -> None:
    with SummaryWriter(log_dir=str(tmp_path / RUN)) as writer:
        tail = EventTail(tmp_path)
        log_train(writer, 1, status(1))
        log_train(writer, 2, status(2))
        log_eval(writer, 2, {"accuracy": 0.75, "skipped": None})
        writer.flush()
        assert [r.step for r in tail.poll()] == [1]
        assert tail.poll(through=1) == []
        (record,) = tail.poll(through=2)
        assert record.step == 2
        assert approx([record]) == approx([StepRecord(2, {**expected(2), "eval/accuracy": 0.75})])
        log_train(writer, 3, {"policy_loss": 3.0})
        writer.flush()
        assert tail.poll() == []  # step 2 went already; 3 is held
    assert tail.poll(final=True) == [StepRecord(3, {"policy_loss": 3.0})]


def test_event_files_appearing_later_are_read_too(tmp_path: Path) -> None:
    tail = EventTail(tmp_path / "not-yet")
    assert tail.poll(final=True) == []  # the folder need not exist yet
    with SummaryWriter(log_dir=str(tmp_path / "not-yet" / RUN)) as first:
        log_train(first, 1, {"policy_loss": 1.0})
        log_train(first, 2, {"policy_loss": 2.0})
    assert tail.poll() == [StepRecord(1, {"policy_loss": 1.0})]
    # A resumed OpenRLHF writes a second file into the same run folder; another run nests deeper.
    with (
        SummaryWriter(log_dir=str(tmp_path / "not-yet" / RUN)) as second,
        SummaryWriter(log_dir=str(tmp_path / "not-yet" / "other" / "deeper")) as third,
    ):
        log_train(second, 3, {"policy_loss": 3.0})
        log_train(second, 4, {"policy_loss": 4.0})
        log_eval(third, 10, {"score": 0.5})
        log_eval(third, 11, {"score": 0.6})
        second.flush()
        third.flush()
        got = tail.poll()
        assert sorted(got) == [
            StepRecord(2, {"policy_loss": 2.0}),  # the first file's last step: a newer file came beside it
            StepRecord(3, {"policy_loss": 3.0}),
            StepRecord(10, {"eval/score": 0.5}),
        ]
    final = tail.poll(final=True)
    assert sorted(final) == [
        StepRecord(4, {"policy_loss": 4.0}),
        StepRecord(11, {"eval/score": pytest.approx(0.6)}),
    ]


def test_a_truncated_last_record_is_read_when_complete(tmp_path: Path) -> None:
    source = tmp_path / "source"
    with SummaryWriter(log_dir=str(source)) as writer:
        for step in range(1, 5):
            log_train(writer, step, status(step))
    (written,) = source.iterdir()
    data = written.read_bytes()
    tailed = tmp_path / "tailed" / RUN
    tailed.mkdir(parents=True)
    target = tailed / written.name
    target.write_bytes(b"")
    tail = EventTail(tmp_path / "tailed")
    got: list[StepRecord] = []
    chunk = 37  # cuts records at every kind of place: header, length crc, payload, payload crc
    for start in range(0, len(data), chunk):
        with target.open("ab") as out:
            out.write(data[start : start + chunk])
        got += tail.poll()
    got += tail.poll(final=True)
    assert approx(got) == [(s, expected(s)) for s in range(1, 5)]


def test_a_removed_file_gives_what_it_held(tmp_path: Path) -> None:
    with SummaryWriter(log_dir=str(tmp_path / RUN)) as writer:
        log_train(writer, 1, {"policy_loss": 1.0})
    tail = EventTail(tmp_path)
    assert tail.poll() == []
    for path in (tmp_path / RUN).iterdir():
        path.unlink()
    assert tail.poll() == [StepRecord(1, {"policy_loss": 1.0})]
    assert tail.poll(final=True) == []


def test_scalars_reach_mlflow_by_step(tmp_path: Path, mlflow_server: str) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.create_experiment(f"tail-{tmp_path.name}")
    run = client.create_run(experiment).info.run_id

    def on_step(step: int, metrics: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        client.log_batch(run, metrics=[Metric(k, v, now, step) for k, v in sorted(metrics.items())])

    tail = EventTail(tmp_path)
    with SummaryWriter(log_dir=str(tmp_path / RUN)) as writer:
        for step in range(1, 5):
            log_train(writer, step, status(step))
            writer.flush()
            for record in tail.poll():  # as the backend does while OpenRLHF runs
                on_step(*record)
    for record in tail.poll(final=True):
        on_step(*record)
    client.set_terminated(run)
    loss = client.get_metric_history(run, "policy_loss")
    assert [(m.step, m.value) for m in sorted(loss, key=lambda m: m.step)] == [
        (s, pytest.approx(0.5 / s, rel=1e-6)) for s in range(1, 5)
    ]
    entropy = client.get_metric_history(run, "entropy_loss")
    assert sorted(m.step for m in entropy) == [1, 3, 4]  # step 2's NaN never left the tail
    assert [m.step for m in client.get_metric_history(run, "rollout/reward_mean")] != []
    assert client.get_metric_history(run, "generated_samples") == []


def test_names_and_import_stays_light() -> None:
    assert metric_name("train/policy_loss") == "policy_loss"
    assert metric_name("train/rollout/reward_mean") == "rollout/reward_mean"
    assert metric_name("eval/accuracy") == "eval/accuracy"
    code = (
        "import sys, rpt_transfer.training.tensorboard_tail, rpt_transfer.training.openrlhf_checkpoints;"
        " print(sorted(m for m in ('tensorboard', 'torch', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
