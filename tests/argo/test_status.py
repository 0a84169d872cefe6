"""`rpt-transfer status` against k8s_double (a contract double, not a cluster) and a moto S3 store.

Job states come from the store (manifests) and the Workflow's pod nodes, which the tests write as Argo's
controller would; pod names follow Argo v4's POD_NAMES=v2 rule.
"""

from pathlib import Path

import pytest
from k8s_double import (  # noqa: F401 - fixtures
    NAMESPACE,
    K8sDouble,
    cli,
    double_fixture,
    kube_fixture,
    nodes_of,
    pod_node,
    retry_node,
    study_file_fixture,
)

from rpt_transfer.argo.client import workflow_body
from rpt_transfer.argo.status import fnv32a, pod_name
from rpt_transfer.fanout import part_jobs
from rpt_transfer.plan import Plan
from rpt_transfer.runner import prepare
from rpt_transfer.store import Store


def test_fnv32a_and_pod_names_follow_argo_v4() -> None:
    assert fnv32a("") == 0x811C9DC5 and fnv32a("a") == 0xE40C292C and fnv32a("foobar") == 0xBF9CF968
    workflow = {"metadata": {"name": "mini-x7k2p"}}
    node = {"id": "mini-x7k2p-1", "name": "foobar", "templateName": "job-gpu"}
    assert pod_name(workflow, node) == f"mini-x7k2p-job-gpu-{0xBF9CF968}"
    by_ref = {**node, "templateRef": {"name": "other", "template": "generate"}}
    assert pod_name(workflow, by_ref) == f"mini-x7k2p-generate-{0xBF9CF968}"
    assert pod_name(workflow, {**node, "name": "mini-x7k2p"}) == "mini-x7k2p"  # the Workflow's own pod
    long = {**node, "templateName": "t" * 300}
    assert pod_name(workflow, long) == f"{('mini-x7k2p-' + 't' * 300)[:242]}-{0xBF9CF968}"
    v1 = {"metadata": {"name": "mini-x7k2p", "annotations": {"workflows.argoproj.io/pod-name-format": "v1"}}}
    assert pod_name(v1, node) == "mini-x7k2p-1"


def commit(store: Store, plan: Plan, job_id: str) -> None:
    """Make a job done, as its pod would: its output and then its manifest."""
    job = plan.job(job_id)
    with store.begin(job.key, job_id=job.id, kind=job.kind, inputs=job.inputs) as writer:
        writer.put_bytes("out.txt", b"done")
        writer.commit()


def test_without_a_workflow_status_says_so_and_counts_the_store(
    double: K8sDouble, kube: Path, study_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prepared = prepare(study_file)
    commit(prepared.store, prepared.plan, part_jobs(prepared.plan, "pretrain")[0])
    code, out, err = cli(capsys, "status", str(study_file), "-n", NAMESPACE)
    assert code == 0, err
    assert (
        "study mini: no Workflow in namespace rpt (label rpt-transfer.io/study=mini); the store says:" in out
    )
    rows = table(out)
    assert rows["pretrain"] == [2, 1, 0, 0, 1] and rows["generate"] == [8, 0, 0, 0, 8]


def table(out: str) -> dict[str, list[int]]:
    """kind -> [jobs, done, running, failed, to do] from the printed table."""
    rows = {}
    for line in out.splitlines():
        cells = [cell.strip() for cell in line.strip("│ ").split("│")]
        if len(cells) == 6 and cells[1].isdigit():
            rows[cells[0]] = [int(cell) for cell in cells[1:]]
    return rows


def test_status_maps_pods_to_jobs_running_and_failed_with_their_pod_and_log_command(
    double: K8sDouble, kube: Path, study_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prepared = prepare(study_file)
    plan, store = prepared.plan, prepared.store
    for job_id in part_jobs(plan, "pretrain"):
        commit(store, plan, job_id)
    (done_generate, *_) = part_jobs(plan, "generate/0")
    commit(store, plan, done_generate)
    spec_uri = store.key_uri(plan.spec or "")
    name = double.add_workflow(NAMESPACE, workflow_body("mini", spec_uri))["metadata"]["name"]
    prepare_pod = pod_node(name, f"{name}[0].prepare", "prepare", "Succeeded")
    prepare_pod["outputs"] = {"parameters": [{"name": "plan", "value": prepared.uri}]}
    running = pod_node(name, f"{name}[3].models(0:...).generate", "generate-gpu", "Running", "generate/0")
    attempts = [
        pod_node(
            name,
            f"{name}[3].models(1:...).score(0)",
            "score",
            "Failed",
            "score/1/0:2",
            startedAt="2026-12-06T20:01:00Z",
        ),
        pod_node(
            name,
            f"{name}[3].models(1:...).score(1)",
            "score",
            "Error",
            "score/1/0:2",
            startedAt="2026-12-06T20:05:00Z",
            message="pod deleted",
        ),
    ]
    retry = retry_node(name, f"{name}[3].models(1:...).score", "score", "Failed", attempts)
    retrying = pod_node(name, f"{name}[3].models(0:...).score(0)", "score", "Failed", "score/0/0:2")
    still = retry_node(name, f"{name}[3].models(0:...).score", "score", "Running", [retrying])
    double.set_status(
        NAMESPACE, name, "Running", nodes_of(prepare_pod, running, retry, *attempts, retrying, still)
    )

    code, out, err = cli(capsys, "status", str(study_file), "-n", NAMESPACE)
    assert code == 0, err
    assert f"study mini: Workflow {name} in namespace rpt, Running, started " in out
    rows = table(out)
    generate_0 = len(part_jobs(plan, "generate/0"))
    assert rows["pretrain"] == [2, 2, 0, 0, 0]
    assert rows["generate"] == [8, 1, generate_0 - 1, 0, 8 - generate_0]
    assert rows["score"] == [4, 0, 2, 2, 0]  # a retry still running counts as running, not failed
    assert rows["aggregate"] == [1, 0, 0, 0, 1]
    pod = f"{name}-score-{fnv32a(name + '[3].models(1:...).score(1)')}"  # the last attempt
    failed_jobs = ", ".join(part_jobs(plan, "score/1/0:2"))
    assert "failed pods (1):" in out
    assert f"  score/1/0:2: pod {pod} Error: pod deleted\n    jobs not done: {failed_jobs}\n" in out
    assert f"    log: kubectl logs -n rpt {pod} -c main" in out


def test_status_through_an_argo_server_and_refused_rbac(
    double: K8sDouble, study_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prepare(study_file)
    monkeypatch.setenv("ARGO_SERVER", double.url)
    monkeypatch.setenv("ARGO_TOKEN", double.token)
    monkeypatch.setenv("ARGO_NAMESPACE", NAMESPACE)
    name = double.add_workflow(NAMESPACE, workflow_body("mini", "s3://x/studies/mini/specs/a.yaml"))[
        "metadata"
    ]["name"]
    double.set_status(NAMESPACE, name, "Succeeded", {})
    code, out, err = cli(capsys, "status", str(study_file))
    assert code == 0, err
    assert f"Workflow {name} in namespace rpt, Succeeded" in out and all(
        s.path.startswith("/api/v1/") for s in double.seen
    )
    double.forbid("list", "workflows")
    code, _, err = cli(capsys, "status", str(study_file))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "forbids list workflows in namespace rpt (403 Forbidden)" in err and "RBAC `list`" in err
