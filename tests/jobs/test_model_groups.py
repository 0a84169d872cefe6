"""One model load per process: `job run ID ID ...` shares a loaded backend among a model's generate jobs.

Real parts throughout: tiny models pre-trained by their own job, the hf backend, file and moto S3 stores.
Loads are counted through the public backend registry (`generation.BACKENDS`), checkpoint downloads by
the object GETs a real S3 server logs.
"""

import io
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import run_cli, tiny_study, write_study
from inprocess import call_cli
from rpt_transfer import generation
from rpt_transfer.plan import Job, Plan, group_key
from rpt_transfer.planner import make_plan
from rpt_transfer.runner import read_plan
from rpt_transfer.spec import parse_study
from rpt_transfer.store import Store
from servers_s3 import REGION, TEST_KEY, new_bucket_name, set_s3_env, start_moto, stop_moto
from test_cli import assert_one_line_error

BENCHMARKS = ["smoke_arith", "smoke_facts", "canary_math"]


def three_benchmarks(store: str, **changes: object) -> dict:
    """The tiny study on three benchmarks, one shard each, without MLflow."""
    settings = {"benchmarks": BENCHMARKS, "resources": {"shards": 1}, "tracking_uri": "none"}
    return tiny_study(store, **{**settings, **changes})


def generate_jobs(plan: Plan, model: str) -> list[Job]:
    return [job for job in plan.jobs if job.kind == "generate" and job.context["model"] == model]


def pretrain_job(plan: Plan, model: str) -> Job:
    return next(job for job in plan.jobs if job.kind == "pretrain" and job.context["model"] == model)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Plan]:
    """A prepared study whose base model is pre-trained: the store, the plan's URI and the plan."""
    tmp = tmp_path_factory.mktemp("groups")
    store = tmp / "store"
    spec = write_study(tmp / "s.yaml", three_benchmarks(str(store)))
    prepared = run_cli("prepare", str(spec))
    assert prepared.returncode == 0, prepared.stderr
    uri = prepared.stdout.strip()
    plan = read_plan(uri)
    env = {"RPT_CACHE": str(tmp / "cache")}
    trained = run_cli("job", "run", pretrain_job(plan, "base").id, "--plan", uri, env=env)
    assert trained.returncode == 0, trained.stderr
    return store, uri, plan


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Model folders the hf backend was loaded from, in order, counted by a loader in the public registry."""
    seen: list[str] = []
    real = generation.BACKENDS["hf"]

    def counting(**kwargs: object) -> generation.GenerationBackend:
        seen.append(str(kwargs["model_path"]))
        return real(**kwargs)

    monkeypatch.setitem(generation.BACKENDS, "hf", counting)
    return seen


def use_copy(pretrained: tuple[Path, str, Plan], target: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """A fresh store holding what the fixture's does (plan, checkpoints), where the jobs now run (RPT_STORE)."""
    shutil.copytree(pretrained[0], target)
    monkeypatch.setenv("RPT_STORE", str(target))
    monkeypatch.setenv("RPT_CACHE", str(target.parent / f"{target.name}-cache"))
    return Store.from_uri(str(target))


def rows(store: Store, job: Job) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(store.read_object(job.key, "part-00000.parquet")))


def job_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("job ")]


def test_a_group_loads_its_model_once_and_writes_the_rows_of_jobs_run_alone(
    pretrained: tuple[Path, str, Plan],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    loads: list[str],
) -> None:
    _, uri, plan = pretrained
    group = generate_jobs(plan, "base")
    assert len(group) == 3 and len({group_key(job) for job in group}) == 1
    ids = [job.id for job in group]

    together = use_copy(pretrained, tmp_path / "together", monkeypatch)
    result = call_cli(capsys, "job", "run", *ids, "--plan", uri)
    assert result.returncode == 0, result.stderr
    assert job_lines(result.stderr) == [f"job {job_id}: done, 1 objects" for job_id in ids]
    assert len(loads) == 1

    again = call_cli(capsys, "job", "run", *ids, "--plan", uri)
    assert again.returncode == 0 and job_lines(again.stderr) == [f"job {i}: already done" for i in ids]
    assert len(loads) == 1  # a job already done loads nothing

    alone = use_copy(pretrained, tmp_path / "alone", monkeypatch)
    for job_id in ids:
        single = call_cli(capsys, "job", "run", job_id, "--plan", uri)
        assert single.returncode == 0, single.stderr
    assert len(loads) == 4  # one per job run alone
    for job in group:
        pd.testing.assert_frame_equal(rows(together, job), rows(alone, job))
        assert len(rows(together, job)) == 8  # limit 4 × n 2


def test_a_failed_job_does_not_stop_the_others(
    pretrained: tuple[Path, str, Plan],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    loads: list[str],
) -> None:
    _, uri, plan = pretrained
    first, second, third = generate_jobs(plan, "base")
    blocked = generate_jobs(plan, "rpt")[0]  # rpt is not pre-trained in this store
    store = use_copy(pretrained, tmp_path / "store", monkeypatch)

    unknown = call_cli(capsys, "job", "run", first.id, "0000", "--plan", uri)
    assert_one_line_error(unknown, "job '0000' is not in the plan")
    assert not store.is_done(first.key)  # refused before anything ran

    result = call_cli(capsys, "job", "run", first.id, blocked.id, second.id, third.id, "--plan", uri)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = job_lines(result.stderr)
    assert lines[0] == f"job {first.id}: done, 1 objects"
    assert re.fullmatch(
        rf"job {blocked.id}: failed: job {blocked.id} \(generate\) needs pretrain \w+ .*", lines[1]
    )
    assert lines[2:] == [f"job {job.id}: done, 1 objects" for job in (second, third)]
    assert all(store.is_done(job.key) for job in (first, second, third))
    assert len(loads) == 1  # the failed job in between did not unload base


def test_a_model_that_cannot_load_fails_each_of_its_jobs_after_one_try(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], loads: list[str]
) -> None:
    spec = write_study(
        tmp_path / "s.yaml",
        three_benchmarks(
            str(tmp_path / "store"),
            models={
                "base": {"path": "checkpoints/nothing-here"},
                "rpt": {"path": "checkpoints/also-missing"},
            },
        ),
    )
    loaded = call_cli(capsys, "prepare", str(spec))
    assert loaded.returncode == 0, loaded.stderr
    plan = read_plan(loaded.stdout.strip())
    ids = [job.id for job in generate_jobs(plan, "base")]
    result = call_cli(capsys, "job", "run", *ids, "--plan", loaded.stdout.strip())
    assert result.returncode == 1
    lines = job_lines(result.stderr)
    assert len(lines) == 3 and all("checkpoints/nothing-here: no checkpoint there" in line for line in lines)
    assert loads == []  # the checkpoint was missing before the backend was built, and looked for once


def test_fanout_groups_give_each_model_its_jobs_and_outside_deps(tmp_path: Path) -> None:
    store = "file:///nowhere/store"
    study = three_benchmarks(store, resources={"shards": 2, "backend": "vllm", "gpus_per_job": 2})
    plan = make_plan(parse_study(yaml.safe_dump(study), "s.yaml"), store, None)
    groups = plan.fanout()["groups"]
    assert [group["model"] for group in groups] == ["base", "rpt"]
    for group in groups:
        assert set(group) == {"model", "backend", "gpus", "jobs", "deps"}
        assert (group["backend"], group["gpus"]) == ("vllm", 2)
        assert group["jobs"] == [job.id for job in generate_jobs(plan, group["model"])]  # plan order
        assert len(group["jobs"]) == 6  # 3 benchmarks × 2 shards
        assert group["deps"] == [pretrain_job(plan, group["model"]).id]
    assert sorted(i for group in groups for i in group["jobs"]) == sorted(
        job.id for job in plan.jobs if job.kind == "generate"
    )

    spec = write_study(tmp_path / "s.yaml", three_benchmarks(str(tmp_path / "store")))
    printed = run_cli("plan", str(spec), "--json", "--kind", "groups")
    assert printed.returncode == 0, printed.stderr
    listed = yaml.safe_load(printed.stdout)
    assert [(g["model"], g["backend"], g["gpus"], len(g["jobs"])) for g in listed] == [
        ("base", "hf", 0, 3),
        ("rpt", "hf", 0, 3),
    ]
    assert not (tmp_path / "store").exists()
    one_gpu = three_benchmarks(store, resources={"gpus_per_job": 1})  # hf on one GPU: its pods ask for it
    hf_plan = make_plan(parse_study(yaml.safe_dump(one_gpu), "s.yaml"), store, None)
    assert {group["gpus"] for group in hf_plan.fanout()["groups"]} == {1}


def test_a_group_key_changes_with_what_loading_depends_on() -> None:
    store = "file:///nowhere/store"

    def key_of(**changes: object) -> str | None:
        plan = make_plan(parse_study(yaml.safe_dump(three_benchmarks(store, **changes)), "s"), store, None)
        return group_key(generate_jobs(plan, "base")[0])

    plain = key_of()
    assert key_of(sampling={"temperature": 0.5, "max_tokens": 6, "n": 2, "seed": 3}) == plain
    assert key_of(resources={"shards": 1, "batch_size": 4}) != plain


@pytest.fixture
def logged_s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A moto S3 server of this test's own (its request log tells what was fetched) and a fresh bucket."""
    import boto3

    proc, endpoint = start_moto(tmp_path)
    try:
        set_s3_env(monkeypatch, endpoint, TEST_KEY, TEST_KEY)
        bucket = new_bucket_name()
        boto3.client("s3", endpoint_url=endpoint, region_name=REGION).create_bucket(Bucket=bucket)
        yield f"s3://{bucket}/root", next(tmp_path.glob("moto-*.log"))
    finally:
        stop_moto(proc)


def test_a_checkpoint_is_downloaded_once_per_pod_for_all_its_jobs(
    logged_s3: tuple[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    loads: list[str],
) -> None:
    store_uri, log = logged_s3
    study = three_benchmarks(store_uri, resources={"shards": 2})
    prepared = call_cli(capsys, "prepare", str(write_study(tmp_path / "s.yaml", study)))
    assert prepared.returncode == 0, prepared.stderr
    uri = prepared.stdout.strip()
    plan = read_plan(uri)
    base = pretrain_job(plan, "base")
    monkeypatch.setenv("RPT_CACHE", str(tmp_path / "trainer-cache"))
    assert call_cli(capsys, "job", "run", base.id, "--plan", uri).returncode == 0
    store = Store.from_uri(store_uri)
    manifest = store.manifest(base.key)
    assert manifest is not None and len(manifest.objects) >= 3

    monkeypatch.setenv("RPT_CACHE", str(tmp_path / "pod-cache"))  # a fresh pod
    fetched = object_gets(log, store_uri, base.key)
    group = [job.id for job in generate_jobs(plan, "base")]
    assert len(group) == 6
    first = call_cli(capsys, "job", "run", *group[:3], "--plan", uri)
    second = call_cli(capsys, "job", "run", *group[3:], "--plan", uri)  # another process in the same pod
    assert first.returncode == second.returncode == 0, (first.stderr, second.stderr)
    downloads = object_gets(log, store_uri, base.key)[len(fetched) :]
    assert sorted(downloads) == sorted(manifest.stored_name(info.name) for info in manifest.objects)
    # each object of the checkpoint once, none twice
    assert len(loads) == 2 and loads[0] == loads[1]  # one load per process, from the one verified copy


def object_gets(log: Path, store_uri: str, key: str) -> list[str]:
    """Names (under the job's folder) of the objects a moto server's log shows read, MANIFEST.json aside."""
    bucket, _, prefix = store_uri.removeprefix("s3://").partition("/")
    pattern = re.compile(rf'"GET /{bucket}/{prefix}/{key}/([^ ?]+) HTTP')
    names = [m.group(1) for m in map(pattern.search, log.read_text().splitlines()) if m is not None]
    return [name for name in names if not name.endswith("MANIFEST.json")]
