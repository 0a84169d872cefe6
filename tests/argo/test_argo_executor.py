"""The Argo executor and both clients against k8s_double (a contract double, not a cluster), S3 on moto.

submit creates the Workflow, status maps the store and the pod nodes to job states, wait polls until the
Workflow ends, cancel sets `spec.shutdown: Stop` (the exit handler still runs); the clients' failures are one line each.
"""

from pathlib import Path

import pytest
from k8s_double import (  # noqa: F401 - fixtures
    NAMESPACE,
    SCHEMA_MISSING,
    K8sDouble,
    double_fixture,
    kube_fixture,
    nodes_of,
    pod_node,
    retry_node,
    study_file_fixture,
)
from test_status import commit

from rpt_transfer.argo.client import (
    ArgoServerClient,
    KubernetesClient,
    WorkflowClient,
    connect,
    workflow_body,
)
from rpt_transfer.errors import RptError
from rpt_transfer.executors import JobState
from rpt_transfer.executors.argo import ArgoExecutor
from rpt_transfer.fanout import part_jobs
from rpt_transfer.runner import prepare
from servers_s3 import free_port


@pytest.fixture(params=["kubernetes", "argo-server"])
def client(request: pytest.FixtureRequest, double: K8sDouble, kube: Path) -> WorkflowClient:
    if request.param == "kubernetes":
        return KubernetesClient(NAMESPACE)
    return ArgoServerClient(double.url, double.token, NAMESPACE)


def test_submit_status_wait_and_cancel(double: K8sDouble, client: WorkflowClient, study_file: Path) -> None:
    prepared = prepare(study_file)
    plan, store = prepared.plan, prepared.store
    cached = part_jobs(plan, "pretrain")
    for job_id in cached:
        commit(store, plan, job_id)
    executor = ArgoExecutor(client, store, poll_seconds=0.01)
    executor.submit(plan, prepared.uri)
    (workflow,) = double.workflows.values()
    assert workflow["spec"]["arguments"]["parameters"] == [
        {"name": "study", "value": store.key_uri(plan.spec)}
    ]
    states = executor.status()
    assert {states[job] for job in cached} == {JobState.CACHED}
    assert {s for job, s in states.items() if job not in cached} == {JobState.PENDING}

    name = executor.name
    generate = part_jobs(plan, "generate/1")
    running = pod_node(name, f"{name}[3].models(1:...).generate", "generate-gpu", "Running", "generate/1")
    double.set_status(NAMESPACE, name, "Running", nodes_of(running))
    assert {executor.status()[job] for job in generate} == {JobState.RUNNING}

    executor.cancel()
    assert double.workflows[(NAMESPACE, name)]["spec"]["shutdown"] == "Stop"

    lost = pod_node(
        name,
        f"{name}[3].models(1:...).generate(0)",
        "generate-gpu",
        "Failed",
        "generate/1",
        message="terminated",
    )
    retry = retry_node(name, f"{name}[3].models(1:...).generate", "generate-gpu", "Failed", [lost])
    commit(store, plan, generate[0])  # it finished before the pod was killed
    double.set_status(NAMESPACE, name, "Failed", nodes_of(lost, retry))
    outcomes = {outcome.job.id: outcome for outcome in executor.wait()}
    assert outcomes[generate[0]].state is JobState.DONE
    pod = f"{name}-generate-gpu-"
    for job in generate[1:]:
        assert outcomes[job].state is JobState.FAILED
        assert outcomes[job].message.startswith(f"terminated (pod {pod}")
        assert f"kubectl logs -n {NAMESPACE} {pod}" in outcomes[job].message
    others = set(outcomes) - set(generate) - set(cached)
    assert {outcomes[job].state for job in others} == {JobState.BLOCKED}
    assert {outcomes[job].state for job in cached} == {JobState.CACHED}


def test_an_invalid_workflow_is_refused_by_the_double_in_one_line(
    double: K8sDouble, client: WorkflowClient
) -> None:
    if SCHEMA_MISSING:
        pytest.skip(SCHEMA_MISSING)
    body = workflow_body("mini", "s3://b/studies/mini/specs/a.yaml")
    body["spec"]["workflowTemplateRefs"] = body["spec"].pop("workflowTemplateRef")  # a misspelt key
    with pytest.raises(
        RptError,
        match=r"(refused to create workflows in namespace rpt \(422\)|Argo does not know).*workflowTemplateRefs",
    ):
        client.create_workflow(body)
    body = workflow_body("mini", "s3://b/studies/mini/specs/a.yaml")
    body["spec"]["arguments"]["parameters"][0]["value"] = 4  # parameters are strings
    with pytest.raises(RptError, match=r"\(422\)|not valid \(spec.arguments.parameters.0.value"):
        client.create_workflow(body)
    assert not double.workflows


def test_kubernetes_client_failures_are_one_line(
    double: K8sDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(double.write_kubeconfig(tmp_path / "wrong", token="wrong")))
    with pytest.raises(RptError, match=r"did not accept the credentials to get workflowtemplates .*401"):
        connect(NAMESPACE).get_template()
    monkeypatch.setenv("KUBECONFIG", str(double.write_kubeconfig(tmp_path / "ok", namespace=NAMESPACE)))
    assert connect().namespace == NAMESPACE  # the context's namespace
    double.forbid("get", "workflowtemplates")
    with pytest.raises(
        RptError, match=r"needs RBAC `get` on `workflowtemplates.argoproj.io` in namespace rpt"
    ):
        connect().get_template()
    with pytest.raises(RptError, match=r"namespace rpt has no Workflow|refused to get workflows"):
        connect().get_workflow("absent")
    closed = tmp_path / "closed"
    closed.write_text((tmp_path / "ok").read_text().replace(double.url, f"http://127.0.0.1:{free_port()}"))
    monkeypatch.setenv("KUBECONFIG", str(closed))
    with pytest.raises(
        RptError, match=r"Kubernetes API at http://127.0.0.1:\d+ cannot be reached to list workflows"
    ):
        connect().list_workflows("a=b")


def test_argo_server_failures_are_one_line(double: K8sDouble) -> None:
    with pytest.raises(RptError, match=r"Argo Server at .* did not accept the credentials .*401"):
        ArgoServerClient(double.url, "wrong", NAMESPACE).list_workflows("")
    with pytest.raises(RptError, match=r"namespace other has no WorkflowTemplate rpt-transfer-study"):
        ArgoServerClient(double.url, double.token, "other").get_template()
    with pytest.raises(RptError, match=r"cannot be reached to get workflows"):
        ArgoServerClient(f"http://127.0.0.1:{free_port()}", None, NAMESPACE).get_workflow("x")
    with pytest.raises(RptError, match=r"--argo-server 'host:2746': give the Argo Server's URL"):
        ArgoServerClient("host:2746", None)
