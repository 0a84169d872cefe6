"""`rpt-transfer prepare`: content-keyed, immutable spec and plan, a pointer to the current plan, and
the pod's environment overriding the addresses a plan recorded. Real subprocesses, a real moto S3 server.
"""

import shutil
import sqlite3
import subprocess
from pathlib import Path

import boto3
import pytest

from conftest import CLI, run_cli, tiny_study, write_study
from rpt_transfer.errors import PlanError, StoreError
from rpt_transfer.hashing import sha256_hex
from rpt_transfer.jobs.generate import PART, benchmark_for
from rpt_transfer.jobs.rows import GENERATION_SCHEMA, to_parquet
from rpt_transfer.plan import Plan, latest_plan_key
from rpt_transfer.plan_store import publish_plan
from rpt_transfer.runner import current_plan, load_and_resolve, prepare, read_plan
from rpt_transfer.settings import in_job
from rpt_transfer.store import Store
from rpt_transfer.training.data import staged_key
from servers_mlflow import new_mlflow_db
from servers_s3 import REGION, free_port


def path_study(store: str, **changes: object) -> dict:
    """Two models already in the store (no pre-training), one small benchmark, MLflow off."""
    study = {
        "study": "prep",
        "kind": "observational",
        "store": store,
        "tracking_uri": "none",
        "models": {"base": {"path": "checkpoints/base"}, "rpt": {"path": "checkpoints/rpt"}},
        "pairs": [{"name": "p", "rpt": "rpt", "base": "base", "domains": ["math"], "algorithm": "grpo"}],
        "benchmarks": ["smoke_arith"],
        "limit": 2,
        "sampling": {"temperature": 0.0, "max_tokens": 4, "n": 1, "seed": 0},
    }
    study.update(changes)
    return study


def commit_generations(store: Store, plan: Plan, model: str) -> str:
    """Commit made-up generations for one model, as its generate jobs would; return its score job's id."""
    for job in plan.jobs:
        if job.kind != "generate" or job.context["model"] != model:
            continue
        bench, shard = benchmark_for(job.inputs["benchmark"]), job.inputs["shard"]
        items = bench.items(job.inputs["limit"])[shard["start"] : shard["stop"]]
        rows = [
            {**dict.fromkeys(GENERATION_SCHEMA.names), "study": plan.study, "job": job.id, "model": model,
             "model_ref": "{}", "benchmark": bench.name, "item_id": item.id, "sample_index": 0, "prompt": "q",
             "prompt_hash": "0", "completion": f"ANSWER: {item.reference}", "finish_reason": "stop",
             "prompt_tokens": 1, "completion_tokens": 1}
            for item in items
        ]  # fmt: skip
        with store.begin(job.key, job_id=job.id, kind="generate", inputs=job.inputs) as writer:
            writer.put_bytes(PART, to_parquet(rows, GENERATION_SCHEMA))
            writer.commit()
    return next(j.id for j in plan.jobs if j.kind == "score" and j.context["model"] == model)


def local_plan_path(uri: str) -> Path:
    assert uri.startswith("file://"), uri
    return Path(uri.removeprefix("file://"))


def test_prepare_prints_only_the_plan_uri_and_a_second_prepare_changes_nothing(tmp_path: Path) -> None:
    store = tmp_path / "store"
    spec = write_study(tmp_path / "s.yaml", path_study(str(store)))
    first = run_cli("prepare", str(spec))
    assert first.returncode == 0, first.stderr
    uri = first.stdout.strip()
    assert first.stdout == uri + "\n" and uri.startswith(f"{store.as_uri()}/studies/prep/plans/")
    plan_file = local_plan_path(uri)
    before = plan_file.stat()
    digest = plan_file.name.removesuffix(".json")
    assert sha256_hex(plan_file.read_bytes())[:16] == digest  # the key is the content's hash
    plan = read_plan(uri)
    assert (store / plan.spec).read_bytes() == spec.read_bytes()  # the spec, also content-keyed
    assert plan.spec == f"studies/prep/specs/{sha256_hex(spec.read_bytes())[:16]}.yaml"
    assert (store / latest_plan_key("prep")).read_text().strip() == plan_file.relative_to(store).as_posix()

    second = run_cli("prepare", str(spec))
    assert second.returncode == 0 and second.stdout == first.stdout, second.stderr
    after = plan_file.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not even rewritten
    assert sorted(p.name for p in (store / "studies" / "prep" / "plans").iterdir()) == [plan_file.name]
    fanout = run_cli("plan", str(spec), "--json")
    assert __import__("json").loads(fanout.stdout)["plan"] == uri  # `plan --json` names the same plan


def test_two_prepares_at_once_agree(tmp_path: Path) -> None:
    """Two runners preparing one spec at the same moment: one creates each object, the other finds it."""
    store = tmp_path / "store"
    spec = write_study(tmp_path / "s.yaml", path_study(str(store)))
    racers = [
        subprocess.Popen(
            [*CLI, "prepare", str(spec)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outputs = [racer.communicate(timeout=120) for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0, 0], outputs
    assert len({out for out, _ in outputs}) == 1
    assert len(list((store / "studies" / "prep" / "plans").iterdir())) == 1


def test_changed_spec_gets_a_new_plan_and_the_old_one_still_runs(tmp_path: Path) -> None:
    store = tmp_path / "store"
    spec = write_study(tmp_path / "s.yaml", path_study(str(store)))
    old = prepare(spec)
    old_bytes = local_plan_path(old.uri).read_bytes()
    write_study(
        spec, path_study(str(store), sampling={"temperature": 0.0, "max_tokens": 4, "n": 1, "seed": 1})
    )
    new = prepare(spec)
    assert new.uri != old.uri and {j.id for j in new.plan.jobs} != {j.id for j in old.plan.jobs}
    assert local_plan_path(old.uri).read_bytes() == old_bytes
    assert current_plan(old.store, "prep") == new.plan  # the pointer names the newest plan
    assert len(list((store / "studies" / "prep" / "specs").iterdir())) == 2

    score = commit_generations(old.store, old.plan, "base")  # a pod of the older run, holding its URI
    result = run_cli("job", "run", score, "--plan", old.uri)
    assert result.returncode == 0, result.stderr
    assert old.store.is_done(old.plan.job(score).key)


@pytest.mark.parametrize("problem", ["malformed", "missing training file", "unknown model", "no MLflow"])
def test_a_bad_spec_writes_nothing(tmp_path: Path, problem: str) -> None:
    store = tmp_path / "store"
    spec = tmp_path / "s.yaml"
    if problem == "no MLflow":  # the spec names a server nobody runs: found before the store is written
        write_study(spec, path_study(str(store), tracking_uri=f"http://127.0.0.1:{free_port()}"))
    elif problem == "malformed":
        spec.write_text(f"study: x\nstore: {store}\nmodels: [unclosed\n")
    elif problem == "unknown model":
        write_study(spec, path_study(str(store), pairs=[{**path_study("")["pairs"][0], "rpt": "nope"}]))
    else:
        interventional = {
            "study": "x", "kind": "interventional", "store": str(store), "tracking_uri": "none",
            "models": {"b": {"tiny": {"corpus": {"smoke_arith": 4}, "steps": 1}}}, "base": "b",
            "training": {"learning_rate": 0.001, "steps": 1, "max_new_tokens": 4, "rollouts_per_prompt": 2,
                         "prompts_per_step": 2},
            "train": [{"name": "m", "domain": "math",
                       "data": {"path": str(tmp_path / "absent.jsonl"), "scorer": "math"}}],
            "benchmarks": ["smoke_arith"], "limit": 2,
        }  # fmt: skip
        write_study(spec, interventional)
    result = run_cli("prepare", str(spec))
    assert result.returncode == 2 and result.stdout == "", result.stdout
    assert "Traceback" not in result.stderr and result.stderr.startswith("error: ")
    assert not list(store.rglob("*"))  # not even a spec or plan


def test_prepare_to_s3_writes_each_plan_once(tmp_path: Path, s3_store_uri: str, s3_server: str) -> None:
    bucket, _, prefix = s3_store_uri.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name=REGION)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    spec = write_study(tmp_path / "s.yaml", path_study(s3_store_uri, tracking_uri=None))
    runs = [run_cli("prepare", str(spec)) for _ in range(2)]
    for result in runs:
        assert result.returncode == 0, result.stderr
        assert "warning: no MLflow tracking" in result.stderr  # warnings to stderr, the URI to stdout
    uri = runs[0].stdout.strip()
    assert runs[1].stdout == runs[0].stdout == uri + "\n" and uri.startswith(f"{s3_store_uri}/studies/prep/")
    key = f"{prefix}/{uri.removeprefix(s3_store_uri + '/')}"
    versions = s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
    assert len(versions) == 1  # the second prepare wrote no new version
    plan = read_plan(uri)
    assert current_plan(Store.from_uri(s3_store_uri), "prep") == plan
    assert plan.store == s3_store_uri and plan.tracking_uri is None


def test_a_changed_stored_plan_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    spec = write_study(tmp_path / "s.yaml", path_study(str(store)))
    prepared = prepare(spec)
    path = local_plan_path(prepared.uri)
    path.write_bytes(path.read_bytes().replace(b'"prep"', b'"prep" ', 1))
    with pytest.raises(PlanError, match="does not match its content key"):
        read_plan(prepared.uri)
    with pytest.raises(StoreError, match="holds other bytes"):
        publish_plan(prepared.store, prepared.plan)


def test_no_plan_yet_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match=r"study 'prep' has no plan in store .*`rpt-transfer prepare"):
        current_plan(Store.from_uri(str(tmp_path / "empty")), "prep")


def tagged_runs(db: Path, job_id: str) -> int:
    """How many MLflow runs in a SQLite backend carry this job id (read with sqlite3, no mlflow import)."""
    with sqlite3.connect(db) as connection:
        query = "SELECT COUNT(*) FROM tags WHERE key = 'job_id' AND value = ?"
        return connection.execute(query, (job_id,)).fetchone()[0]


def test_job_run_takes_store_and_mlflow_from_the_pods_environment(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A plan made on a laptop names its store and MLflow there; a pod reaches them by other names."""
    laptop = tmp_path / "laptop-store"
    new_mlflow_db(tmp_path_factory, laptop)  # the default MLflow of a local store, schema in place
    spec = write_study(tmp_path / "s.yaml", path_study(str(laptop), tracking_uri=None))
    prepared = prepare(spec)
    assert prepared.plan.tracking_uri == f"sqlite:///{laptop}/mlflow.db"
    score = commit_generations(prepared.store, prepared.plan, "base")
    pod = tmp_path / "pod-store"
    shutil.move(laptop, pod)  # the same store, reached under another name
    pod_mlflow = new_mlflow_db(tmp_path_factory, tmp_path / "pod-mlflow")
    plan_uri = str(pod / local_plan_path(prepared.uri).relative_to(laptop))
    env = {"RPT_STORE": str(pod), "MLFLOW_TRACKING_URI": f"sqlite:///{pod_mlflow}"}
    result = run_cli("job", "run", score, "--plan", plan_uri, env=env)
    assert result.returncode == 0, result.stderr
    assert (pod / prepared.plan.job(score).key / "MANIFEST.json").is_file() and not laptop.exists()
    assert tagged_runs(pod_mlflow, score) == 1 and tagged_runs(pod / "mlflow.db", score) == 0


@pytest.mark.parametrize(
    ("env", "planned", "expected"),
    [
        ({}, ("/a", "http://laptop:5000"), ("/a", "http://laptop:5000")),
        ({"RPT_STORE": "s3://b/p"}, ("/a", "http://laptop:5000"), ("s3://b/p", "http://laptop:5000")),
        ({"MLFLOW_TRACKING_URI": "http://mlflow:80"}, ("/a", "sqlite:///x.db"), ("/a", "http://mlflow:80")),
        ({"MLFLOW_TRACKING_URI": "none"}, ("/a", "http://laptop:5000"), ("/a", None)),
        # tracking the plan turned off stays off
        ({"MLFLOW_TRACKING_URI": "http://mlflow:80"}, ("/a", None), ("/a", None)),
        # the default SQLite inside a local store moves with the store; another SQLite file does not
        ({"RPT_STORE": "/b"}, ("/a", "sqlite:////a/mlflow.db"), ("/b", "sqlite:////b/mlflow.db")),
        ({"RPT_STORE": "/b"}, ("/a", "sqlite:////c/mlflow.db"), ("/b", "sqlite:////c/mlflow.db")),
    ],
)
def test_in_a_job_the_environment_overrides_the_planned_addresses(
    monkeypatch: pytest.MonkeyPatch, env: dict, planned: tuple, expected: tuple
) -> None:
    for name in ("RPT_STORE", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert in_job(*planned) == expected


def test_load_and_resolve_plan_names_the_spec(tmp_path: Path) -> None:
    spec = write_study(tmp_path / "s.yaml", tiny_study(str(tmp_path / "store")))
    plan = load_and_resolve(spec, check_store=False).plan()
    assert plan.spec == f"studies/mini/specs/{sha256_hex(spec.read_bytes())[:16]}.yaml"


def test_prepare_stages_training_files_before_the_plan_names_them(tmp_path: Path) -> None:
    data = tmp_path / "math.jsonl"
    data.write_text('{"id": "a", "prompt": "1+1?", "reference": "2"}\n')
    store = tmp_path / "store"
    study = {
        "study": "x", "kind": "interventional", "store": str(store), "tracking_uri": "none",
        "models": {"b": {"tiny": {"corpus": {"smoke_arith": 4}, "steps": 1}}}, "base": "b",
        "training": {"learning_rate": 0.001, "steps": 1, "max_new_tokens": 4, "rollouts_per_prompt": 2,
                     "prompts_per_step": 2},
        "train": [{"name": "m", "domain": "math", "data": {"path": str(data), "scorer": "math"}}],
        "benchmarks": ["smoke_arith"], "limit": 2,
    }  # fmt: skip
    prepared = prepare(write_study(tmp_path / "s.yaml", study))
    staged = store / staged_key(sha256_hex(data.read_bytes()))
    assert staged.read_bytes() == data.read_bytes()
    train = next(job for job in prepared.plan.jobs if job.kind == "train")
    assert train.inputs["data"]["sha256"] == sha256_hex(data.read_bytes())


def test_prepare_given_the_loaded_study_stores_the_plan_it_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `submit` does: load and plan once (planning may ask the Hub), check, then prepare that plan."""
    from rpt_transfer import runner

    spec = write_study(tmp_path / "s.yaml", tiny_study(str(tmp_path / "store"), tracking_uri="none"))
    made: list[str] = []
    real = runner.make_plan
    monkeypatch.setattr(runner, "make_plan", lambda *args: made.append("plan") or real(*args))
    loaded = load_and_resolve(spec, check_store=False, runnable=False)
    checked = loaded.plan(spec.read_bytes())
    prepared = prepare(spec, loaded=loaded)
    assert made == ["plan"] and prepared.plan is checked
    assert read_plan(prepared.uri) == checked
