"""`prepare --workflow` and `track close`: an Argo workflow holds the study's MLflow parent run RUNNING from
its first step to its exit handler; score jobs in between leave it so. A real MLflow server, real jobs.
"""

import uuid
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Run

from conftest import run_cli, write_study
from rpt_transfer.runner import read_plan
from rpt_transfer.store import Store
from test_prepare import commit_generations, path_study


def parent(client: MlflowClient, study: str) -> Run:
    experiment = client.get_experiment_by_name(f"rpt-transfer/{study}")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id], "tags.run_type = 'study'")
    return run


def ok(*args: str) -> str:
    result = run_cli(*args)
    assert result.returncode == 0, (args, result.stderr)
    return result.stdout


def test_a_workflow_holds_the_parent_run_until_its_exit_handler_closes_it(
    mlflow_server: str, tmp_path: Path
) -> None:
    study = f"close-{uuid.uuid4().hex[:8]}"
    store = tmp_path / "store"
    spec = write_study(tmp_path / "s.yaml", path_study(str(store), study=study, tracking_uri=mlflow_server))
    client = MlflowClient(mlflow_server)
    uri = ok("prepare", str(spec), "--workflow", "wf-1").strip()
    run = parent(client, study)
    assert run.info.status == "RUNNING" and run.data.tags["argo.workflow"] == "wf-1"

    plan = read_plan(uri)
    for model in ("base", "rpt"):
        commit_generations(Store.from_uri(str(store)), plan, model)
    ok("job", "run", "--plan", uri, "--part", "score/0/0:1")  # a score job logs under the parent run
    assert parent(client, study).info.status == "RUNNING"  # and leaves it running

    closed = ok("track", "close", str(spec), "--status", "Failed", "--workflow", "wf-1").splitlines()
    assert closed == [
        f"report: not made (the aggregate job of study {study} is not done); `rpt-transfer status STUDY` shows why",
        f"MLflow: {mlflow_server} (experiment rpt-transfer/{study})",
    ]
    run = parent(client, study)
    assert run.info.status == "FAILED" and run.data.tags["argo.workflow.status"] == "Failed"

    ok("prepare", str(spec), "--workflow", "wf-2")  # the study submitted again
    run = parent(client, study)
    assert run.info.status == "RUNNING" and run.data.tags["argo.workflow"] == "wf-2"
    assert "argo.workflow.status" not in run.data.tags  # the earlier workflow's end is not this one's
    late = run_cli("track", "close", str(spec), "--status", "Succeeded", "--workflow", "wf-1")
    assert late.returncode == 0 and "belongs to workflow wf-2 now; left as it is" in late.stderr, late.stderr
    assert parent(client, study).info.status == "RUNNING"  # wf-1's late exit handler leaves wf-2's run

    last = [job.id for job in plan.jobs if job.kind in ("score", "aggregate")][
        1:
    ]  # the other score job, then
    ok("job", "run", *last, "--plan", uri)  # the aggregate, in one process (the workflow gives them 2 pods)
    spec_uri = f"{store.as_uri()}/{plan.spec}"  # as the exit handler names the study: by its URI
    closed = ok("track", "close", spec_uri, "--status", "Succeeded", "--workflow", "wf-2").splitlines()
    report = closed[0].removeprefix("report: ")
    assert closed[0].startswith("report: ") and report.endswith("report.html") and Path(report).is_file()
    run = parent(client, study)
    assert run.info.status == "FINISHED" and run.data.tags["argo.workflow.status"] == "Succeeded"


def test_an_unknown_status_is_one_line(tmp_path: Path) -> None:
    spec = write_study(tmp_path / "s.yaml", path_study(str(tmp_path / "store")))
    result = run_cli("track", "close", str(spec), "--status", "Running")
    assert result.returncode == 2 and result.stdout == ""
    assert (
        result.stderr
        == "error: --status 'Running': accepted: Succeeded, Failed, Error (Argo's workflow.status)\n"
    )
