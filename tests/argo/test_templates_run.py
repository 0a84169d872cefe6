"""The WorkflowTemplate as written runs the real smoke study (issue 12): through argo_runner.py, not a cluster.

`workflows/rpt-transfer-study.yaml` is rendered with a submission's parameters as `argo submit -p study=...`
gives them, and every step's container command runs as a real process in Argo's order (argo_runner.py says
how it follows Argo, and where it cannot). The spec is uploaded to S3 (a moto server) and the workflow is
told only its URI; the pods reach the store and MLflow (a real server) through the template's `store` and
`mlflow-uri` parameters and the credentials secret, as in a cluster, with nothing else from this process's
environment. The same spec then runs with the local executor into a file store, and the report tables the
two aggregate jobs wrote must be equal.
"""

import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pandas as pd
import pytest
import yaml
from argo_runner import SUCCEEDED, ArgoRunner, WorkflowRun, load_workflow_template

from conftest import CLI, REPO
from rpt_transfer.store import Store
from servers_s3 import REGION, TEST_KEY, new_bucket_name, set_s3_env
from store_checks import manifest_prefixes

pytestmark = pytest.mark.slow

TEMPLATE = "rpt-transfer-study"
SMOKE = REPO / "studies" / "smoke.yaml"
SECRET = "rpt-transfer-credentials"
JOB_LINE = re.compile(r"^job (\S+): (done, \d+ objects|already done|failed: .*)$", re.M)
TIMINGS: dict[str, float] = {}


@dataclass
class Runs:
    store: str
    local_store: Path
    spec_uri: str
    first: WorkflowRun
    second: WorkflowRun
    parent_after_first: dict
    parent_after_second: dict


def _parent_run(tracking_uri: str) -> dict:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name("rpt-transfer/smoke")
    assert experiment is not None, "no MLflow experiment for the smoke study"
    parents = [
        run
        for run in client.search_runs([experiment.experiment_id])
        if run.data.tags.get("run_type") == "study"
    ]
    assert len(parents) == 1, [run.info.run_id for run in parents]
    return {
        "status": parents[0].info.status,
        "tags": dict(parents[0].data.tags),
        "id": parents[0].info.run_id,
    }


@pytest.fixture(scope="module")
def runs(s3_server: str, mlflow_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    tmp = tmp_path_factory.mktemp("argo-smoke")
    with pytest.MonkeyPatch.context() as patch:
        set_s3_env(patch, s3_server, TEST_KEY, TEST_KEY)  # for this process's own reads of the store
        patch.setenv("RPT_CACHE", str(tmp / "local-cache"))  # the local executor's run only: pods get none
        bucket = new_bucket_name()
        s3 = boto3.client("s3", endpoint_url=s3_server, region_name=REGION)
        s3.create_bucket(Bucket=bucket)
        store = f"s3://{bucket}/store-root"
        # the user's upload of the spec, outside the store's layout: the pods plan it from there
        s3.put_object(Bucket=bucket, Key="uploads/smoke.yaml", Body=SMOKE.read_bytes())
        spec_uri = f"s3://{bucket}/uploads/smoke.yaml"
        secrets = {
            SECRET: {
                "AWS_ENDPOINT_URL": s3_server,
                "AWS_ACCESS_KEY_ID": TEST_KEY,
                "AWS_SECRET_ACCESS_KEY": TEST_KEY,
                "AWS_DEFAULT_REGION": REGION,
            }
        }
        runner = ArgoRunner(
            load_workflow_template(REPO / "workflows", TEMPLATE),
            commands={"rpt-transfer": str(Path(sys.executable).parent / "rpt-transfer")},
            secrets=secrets,
            workdir=tmp / "pods",
            stream=True,
        )
        parameters = {"study": spec_uri, "store": store, "mlflow-uri": mlflow_server}

        # the local executor's run of the same spec, into a file store, alongside (both are mostly idle CPU)
        local_store = tmp / "local-store"
        spec = yaml.safe_load(SMOKE.read_text(encoding="utf-8"))
        local_spec = tmp / "smoke.yaml"
        local_spec.write_text(yaml.safe_dump({**spec, "store": str(local_store)}, sort_keys=False))
        local_log = tmp / "local-run.log"
        started = time.monotonic()
        with local_log.open("wb") as log:
            local = subprocess.Popen(
                [*CLI, "run", str(local_spec)],
                cwd=REPO,
                env=dict(os.environ),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            first = runner.submit(parameters, name="smoke-argo-first")
            TIMINGS["argo workflow"] = time.monotonic() - started
            after_first = _parent_run(mlflow_server)
            again = time.monotonic()
            second = runner.submit(parameters, name="smoke-argo-again")
            TIMINGS["argo workflow again"] = time.monotonic() - again
            after_second = _parent_run(mlflow_server)
            code = local.wait(timeout=900)
        finally:
            if local.poll() is None:
                local.kill()
                local.wait()
        TIMINGS["local executor (alongside)"] = time.monotonic() - started
        assert code == 0, local_log.read_text()[-3000:]
        print(f"\n[test_templates_run] seconds: {TIMINGS}", flush=True)
        yield Runs(store, local_store, spec_uri, first, second, after_first, after_second)


def _describe(run: WorkflowRun) -> str:
    return "\n".join(
        f"{p.template} {p.phase} exit={p.exit_code} {p.message} {' '.join(p.container_argv[1:])}\n{p.stderr[-1500:]}"
        for p in run.pods
    )


def _part(pod) -> str | None:
    argv = pod.container_argv
    return argv[argv.index("--part") + 1] if "--part" in argv else None


def test_workflow_succeeds_with_pods_in_argo_order(runs: Runs) -> None:
    run = runs.first
    assert run.status == SUCCEEDED, _describe(run)
    assert run.exit_status_seen == SUCCEEDED
    assert all(pod.exit_code == 0 for pod in run.pods), _describe(run)
    prepare, *jobs, exit_handler = run.pods
    assert prepare.template == "prepare" and exit_handler.template == "exit-handler"
    assert prepare.labels["rpt-transfer.io/role"] == "prepare"
    models = json.loads(prepare.outputs["models"])
    assert [m["model"] for m in models] == ["tiny-base", "tiny-math"] and all(m["gpus"] == 0 for m in models)
    expected = [("pretrain", "pretrain")]  # the smoke study trains nothing: the train steps are skipped
    for model in models:
        expected.append(("generate-cpu", model["generate"]))
        expected += [("score", chunk) for chunk in model["score"]]
    expected.append(("aggregate", "aggregate"))
    assert [(pod.template, _part(pod)) for pod in jobs] == expected
    roles = [pod.labels["rpt-transfer.io/role"] for pod in run.pods]
    assert roles[-2:] == ["aggregate", "exit-handler"] and roles.count("generate") == len(models)
    plan = prepare.outputs["plan"]
    assert plan.startswith(f"{runs.store}/studies/smoke/plans/")
    assert all(pod.container_argv[pod.container_argv.index("--plan") + 1] == plan for pod in jobs)
    # every job ran in its pod, and none was left to another
    lines = [line for pod in jobs for line in JOB_LINE.findall(pod.stderr)]
    assert lines and all(status.startswith("done, ") for _, status in lines), _describe(run)
    # the pods' environment is the template's and the secret's, nothing of this test process's
    for pod in run.pods:
        assert pod.env["RPT_STORE"] == runs.store and pod.env["AWS_ENDPOINT_URL"].startswith(
            "http://127.0.0.1"
        )
        assert "RPT_CACHE" not in pod.env and "HF_HUB_OFFLINE" not in pod.env
    scores = [pod for pod in run.pods if pod.template == "score"]
    assert all(pod.env["RPT_SANDBOX_MIN"] == "userns" for pod in scores)
    assert all(pod.labels["rpt-transfer.io/egress"] == "store-and-mlflow" for pod in scores)
    assert all(pod.retry_strategy and "75" in pod.retry_strategy["expression"] for pod in jobs)
    # score pods run as uid 65534 (nobody, no writable home in an image): none of them may write under HOME
    assert [(pod.template, pod.notes) for pod in run.pods if pod.notes] == []


def test_exit_handler_closes_the_parent_run(runs: Runs) -> None:
    for parent, run in ((runs.parent_after_first, runs.first), (runs.parent_after_second, runs.second)):
        assert parent["status"] == "FINISHED", parent
        assert parent["tags"].get("argo.workflow") == run.name, parent["tags"]
    assert runs.parent_after_first["id"] == runs.parent_after_second["id"]
    closing = runs.first.pods[-1]
    assert closing.container_argv[1:] == [
        "track", "close", runs.spec_uri, "--status", "Succeeded", "--workflow", "smoke-argo-first"
    ]  # fmt: skip
    assert f"{runs.store}/reports/smoke/" in closing.stdout + closing.stderr, closing.stdout + closing.stderr


def _report_tables(store: Store) -> dict[str, pd.DataFrame]:
    prefixes = manifest_prefixes(store, "reports/smoke/")
    assert len(prefixes) == 1, prefixes
    manifest = store.manifest(prefixes[0])
    assert manifest is not None
    tables = {}
    for info in manifest.objects:
        data = io.BytesIO(store.read_object(prefixes[0], info.name))
        if info.name.endswith(".csv"):
            tables[info.name] = pd.read_csv(data)
        elif info.name.endswith(".parquet"):
            tables[info.name] = pd.read_parquet(data)
    return tables


def test_report_tables_equal_the_local_executors(runs: Runs) -> None:
    argo = _report_tables(Store.from_uri(runs.store))
    local = _report_tables(Store.from_uri(str(runs.local_store)))
    assert sorted(argo) == sorted(local)
    accuracy = [name for name in argo if name.rsplit("/", 1)[-1] == "accuracy.parquet"]
    assert len(accuracy) == 1, sorted(argo)
    assert sorted(argo[accuracy[0]]["model"].unique()) == ["tiny-base", "tiny-math"]
    for name in sorted(argo):
        pd.testing.assert_frame_equal(argo[name], local[name], obj=name)


def test_running_the_workflow_again_runs_no_job(runs: Runs) -> None:
    run = runs.second
    assert run.status == SUCCEEDED, _describe(run)
    prepare, *jobs, _ = run.pods
    assert prepare.outputs["plan"] == runs.first.pods[0].outputs["plan"]  # the plan is reused, not redone
    assert [(p.template, _part(p)) for p in jobs] == [(p.template, _part(p)) for p in runs.first.pods[1:-1]]
    for pod in jobs:
        lines = JOB_LINE.findall(pod.stderr)
        assert lines and all(status == "already done" for _, status in lines), (
            pod.template,
            pod.stderr[-2000:],
        )
