"""A training file enters ids by its sha256 only; it is staged into the store and train jobs read it there."""

import json
from pathlib import Path

import boto3
import pytest
import yaml

from conftest import run_cli
from rpt_transfer.errors import RptError
from rpt_transfer.hashing import sha256_hex
from rpt_transfer.jobs import run_job
from rpt_transfer.plan import Plan
from rpt_transfer.planner import make_plan
from rpt_transfer.spec import parse_study
from rpt_transfer.store import Store
from rpt_transfer.training.data import load_examples, stage_inputs, staged_key

ROWS = [{"id": f"q{i}", "prompt": f"What is {i} + 1?", "reference": str(i + 1)} for i in range(8)]
DATA = "".join(json.dumps(row) + "\n" for row in ROWS).encode()


def train_study(data_path: str, base: dict | None = None) -> dict:
    return {
        "study": "staged",
        "kind": "interventional",
        "models": {"base": base or {"tiny": {"corpus": {"smoke_arith": 8}, "steps": 1, "seed": 0}}},
        "base": "base",
        "training": {
            "learning_rate": 0.001,
            "steps": 1,
            "max_new_tokens": 4,
            "rollouts_per_prompt": 2,
            "prompts_per_step": 2,
            "checkpoint_every": 1,
        },
        "train": [{"name": "m", "domain": "math", "data": {"path": data_path, "scorer": "math"}}],
        "benchmarks": ["smoke_arith"],
        "limit": 1,
        "sampling": {"max_tokens": 4, "n": 1},
    }


def plan_of(study: dict, store: str) -> Plan:
    return make_plan(parse_study(yaml.safe_dump(study), "s.yaml"), store, None)


def train_job(plan: Plan):
    return next(job for job in plan.jobs if job.kind == "train")


def write(path: Path, data: bytes = DATA) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_train_ids_hash_the_content_not_the_path(tmp_path: Path) -> None:
    store = f"file://{tmp_path / 'store'}"
    here = plan_of(train_study(str(write(tmp_path / "a" / "train.jsonl"))), store)
    there = plan_of(train_study(str(write(tmp_path / "b" / "other-name.jsonl"))), store)
    assert train_job(here).id == train_job(there).id
    assert train_job(here).inputs["data"]["sha256"] == sha256_hex(DATA)
    assert str(tmp_path) not in json.dumps([job.inputs for job in here.jobs])
    assert train_job(here).context["data"] == str(tmp_path / "a" / "train.jsonl")  # for people only
    changed = plan_of(train_study(str(write(tmp_path / "c.jsonl", DATA + DATA))), store)
    assert train_job(changed).id != train_job(here).id


def test_planning_writes_nothing_and_staging_is_idempotent(tmp_path: Path) -> None:
    source = write(tmp_path / "train.jsonl")
    store = Store.from_uri(str(tmp_path / "store"))
    plan = plan_of(train_study(str(source)), store.uri)
    assert not (tmp_path / "store").exists()
    key = staged_key(sha256_hex(DATA))
    assert stage_inputs(plan, store) == [key]
    assert store.read_bytes(key) == DATA
    assert stage_inputs(plan, store) == []  # already there: nothing written
    study = parse_study(yaml.safe_dump(train_study(str(source))), "s.yaml")
    assert stage_inputs(study, store) == []  # a study works as well as its plan


def test_a_file_changed_after_planning_is_refused(tmp_path: Path) -> None:
    source = write(tmp_path / "train.jsonl")
    store = Store.from_uri(str(tmp_path / "store"))
    plan = plan_of(train_study(str(source)), store.uri)
    write(source, DATA + b'{"id": "x", "prompt": "p", "reference": "r"}\n')
    with pytest.raises(RptError, match=r"train.jsonl changed since the study was planned.*re-plan") as err:
        stage_inputs(plan, store)
    assert "\n" not in str(err.value)
    assert store.list_keys("inputs") == []


def test_a_train_job_without_its_staged_data_fails_in_one_line(tmp_path: Path) -> None:
    source = write(tmp_path / "train.jsonl")
    store = tmp_path / "store"
    plan = plan_of(train_study(str(source), base={"path": "checkpoints/not-needed-yet"}), f"file://{store}")
    plan_path = write(tmp_path / "plan.json", plan.to_json().encode())
    result = run_cli("job", "run", train_job(plan).id, "--plan", str(plan_path))
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = result.stderr.strip().splitlines()
    assert sha256_hex(DATA) in line and "run `rpt-transfer prepare` first" in line, line


def test_the_train_job_reads_the_staged_copy(tmp_path: Path, cache_dir: Path) -> None:
    """With the original file gone (a pod never has it), the train job trains from the store's copy."""
    source = write(tmp_path / "train.jsonl")
    store_path = tmp_path / "store"
    plan = plan_of(train_study(str(source)), f"file://{store_path}")
    stage_inputs(plan, Store.from_uri(str(store_path)))
    source.unlink()
    for job in plan.jobs:  # in-process (what `job run` calls) to spare two interpreter start-ups
        if job.kind in ("pretrain", "train"):
            assert run_job(plan, job.id) is not None
    assert (store_path / train_job(plan).key / "MANIFEST.json").is_file()


def test_a_staged_copy_that_does_not_match_its_hash_is_refused(tmp_path: Path) -> None:
    store = Store.from_uri(str(tmp_path / "store"))
    digest = sha256_hex(DATA)
    store.write_bytes(staged_key(digest), DATA + b"\n")
    identity = {"sha256": digest, "examples": None, "scorer": {"name": "math", "version": "1"}}
    with pytest.raises(RptError, match=r"does not match its sha256") as err:
        load_examples(identity, store)
    assert "\n" not in str(err.value)
    store.write_bytes(staged_key(digest), DATA)
    examples, scorer = load_examples({**identity, "examples": 3}, store)
    assert [e.id for e in examples] == ["q0", "q1", "q2"] and scorer == "math"


def test_a_training_file_in_s3_is_hashed_and_staged(tmp_path: Path, s3_store_uri: str) -> None:
    bucket = s3_store_uri.removeprefix("s3://").split("/")[0]
    boto3.client("s3").put_object(Bucket=bucket, Key="datasets/train.jsonl", Body=DATA)
    uri = f"s3://{bucket}/datasets/train.jsonl"
    local = plan_of(train_study(str(write(tmp_path / "train.jsonl"))), s3_store_uri)
    remote = plan_of(train_study(uri), s3_store_uri)
    assert train_job(remote).id == train_job(local).id and train_job(remote).context["data"] == uri
    store = Store.from_uri(s3_store_uri)
    assert stage_inputs(remote, store) == [staged_key(sha256_hex(DATA))]
    assert load_examples(train_job(remote).inputs["data"], store)[0][0].id == "q0"
    missing = r"^train\[0\]\.data\.path: training data s3://.*/datasets/missing.jsonl: cannot read it"
    with pytest.raises(RptError, match=missing) as err:
        plan_of(train_study(f"s3://{bucket}/datasets/missing.jsonl"), s3_store_uri)
    assert "\n" not in str(err.value)
