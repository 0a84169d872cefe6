"""`rpt-transfer submit` against k8s_double (a contract double, not a cluster) and a moto S3 store.

The double speaks the Kubernetes custom-resource API and the Argo Server's, validates every created Workflow
against the Argo v4.1 JSON schema, and runs no controller: tests write the Workflow's status themselves.
"""

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from k8s_double import (  # noqa: F401 - fixtures
    NAMESPACE,
    K8sDouble,
    cli,
    double_fixture,
    kube_fixture,
    nodes_of,
    pod_node,
    study_file_fixture,
)

from conftest import tiny_study, write_study
from rpt_transfer.argo.client import STUDY_LABEL, TEMPLATE_NAME, study_label, workflow_body
from rpt_transfer.argo.status import fnv32a
from rpt_transfer.plan import latest_plan_key
from rpt_transfer.store import Store


def created(double: K8sDouble) -> dict:
    (workflow,) = double.workflows.values()
    return workflow


def test_submit_checks_prepares_and_creates_the_workflow_of_the_contract(
    double: K8sDouble, kube: Path, study_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "submit", str(study_file), "-n", NAMESPACE)
    assert code == 0, err
    workflow = created(double)
    name, meta, spec = workflow["metadata"]["name"], workflow["metadata"], workflow["spec"]
    assert name.startswith("mini-") and meta["generateName"] == "mini-"
    assert meta["labels"] == {STUDY_LABEL: "mini"}
    assert spec["workflowTemplateRef"] == {"name": TEMPLATE_NAME}
    (study_param,) = spec["arguments"]["parameters"]
    store = Store.from_uri(study_file.read_text().split("store: ")[1].split()[0])
    plan_key = store.read_bytes(latest_plan_key("mini")).decode().strip()
    assert study_param["name"] == "study" and study_param["value"].startswith(
        store.uri + "/studies/mini/specs/"
    )
    assert store.read_bytes(study_param["value"].removeprefix(store.uri + "/")) == study_file.read_bytes()
    assert [seen.status for seen in double.posts(dry=True)] == [201]  # checked before anything was written
    assert f"plan: {store.key_uri(plan_key)}" in out
    assert "estimate: 16 prompts, 32 samples" in out and "GPU-hours (lower bound)" in out
    assert "to run: 2 pretrain, 8 generate, 4 score, 1 aggregate (15 of 15 jobs)" in out
    assert f"submitted Workflow {name} in namespace {NAMESPACE}" in out
    assert (
        f"argo watch -n {NAMESPACE} {name}" in out
        and f"rpt-transfer status {study_file} -n {NAMESPACE}" in out
    )


def test_submit_passes_score_chunk_and_goes_through_an_argo_server(
    double: K8sDouble, study_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(study_file.parent / "absent"))  # the server needs no kubeconfig
    monkeypatch.setenv("ARGO_TOKEN", double.token)
    code, out, err = cli(
        capsys, "submit", str(study_file), "-n", NAMESPACE, "--argo-server", double.url, "--score-chunk", "2"
    )
    assert code == 0, err
    workflow = created(double)
    assert {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}["score-chunk"] == "2"
    assert all(seen.path.startswith("/api/v1/") for seen in double.seen)  # Hera's WorkflowsService paths
    assert f"submitted Workflow {workflow['metadata']['name']}" in out


def _script(double: K8sDouble, final: str, nodes_at_end: Callable[[str], list[dict]]) -> None:
    """A controller in three reads: Running with a pod, still Running, then `final` with `nodes_at_end`."""
    reads = iter(range(100))

    def advance(double: K8sDouble, namespace: str, name: str) -> None:
        step = next(reads)
        if step == 0:
            pod = pod_node(name, f"{name}[1].pretrain(0:pretrain)", "job-cpu", "Running", "pretrain")
            double.set_status(namespace, name, "Running", {pod["id"]: pod})
        elif step == 2:
            double.set_status(namespace, name, final, nodes_of(*nodes_at_end(name)))

    double.before_get.append(advance)


def test_watch_prints_progress_and_exits_0_when_the_workflow_succeeds(
    double: K8sDouble,
    kube: Path,
    study_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("rpt_transfer.argo.submit.WATCH_SECONDS", 0.01)
    _script(double, "Succeeded", lambda name: [])
    code, out, err = cli(capsys, "submit", str(study_file), "-n", NAMESPACE, "--watch")
    assert code == 0, err
    assert "Running: pretrain 0/2 (2 running), generate 0/8, score 0/4, aggregate 0/1" in out
    assert (
        out.strip()
        .splitlines()[-1]
        .endswith("Succeeded: pretrain 0/2, generate 0/8, score 0/4, aggregate 0/1")
    )


def test_watch_exits_1_and_names_the_failed_pod_when_the_workflow_fails(
    double: K8sDouble,
    kube: Path,
    study_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("rpt_transfer.argo.submit.WATCH_SECONDS", 0.01)
    node = "[1].pretrain(0:pretrain)"
    _script(
        double,
        "Failed",
        lambda name: [
            pod_node(name, name + node, "job-cpu", "Failed", "pretrain", message="Error (exit code 1)")
        ],
    )
    code, out, _ = cli(capsys, "submit", str(study_file), "-n", NAMESPACE, "--watch")
    assert code == 1
    assert "Failed: pretrain 0/2 (2 failed)" in out
    name = created(double)["metadata"]["name"]
    pod = f"{name}-job-cpu-{fnv32a(name + node)}"
    assert f"  pretrain: pod {pod} Failed: Error (exit code 1)" in out
    assert f"    log: kubectl logs -n rpt {pod} -c main" in out


# -- refusals: one line, exit 2, nothing submitted and nothing written -------------------------------------


def refused(capsys: pytest.CaptureFixture[str], double: K8sDouble, study: Path, *args: str) -> str:
    code, out, err = cli(capsys, "submit", str(study), *args)
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert double.posts(dry=False) == [] and not double.workflows
    store = Store.from_uri(study.read_text().split("store: ")[1].split()[0])
    assert not store.exists(latest_plan_key("mini"))  # no plan written
    return err


def test_no_kubeconfig_is_one_line(
    double: K8sDouble, study_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(study_file.parent / "no-such-kubeconfig"))
    err = refused(capsys, double, study_file, "-n", NAMESPACE)
    assert "no Kubernetes configuration: KUBECONFIG=" in err and "service account" in err
    assert double.seen == []


def test_a_namespace_without_the_template_is_one_line(
    double: K8sDouble, kube: Path, study_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused(capsys, double, study_file, "-n", "other")
    assert f"namespace other has no WorkflowTemplate {TEMPLATE_NAME}" in err
    assert "install the chart, or `kubectl apply -n other -f workflows/`" in err


def test_a_store_that_is_not_s3_is_one_line(
    double: K8sDouble, kube: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = write_study(tmp_path / "local.yaml", tiny_study(str(tmp_path / "store"), tracking_uri="none"))
    code, _, err = cli(capsys, "submit", str(local), "-n", NAMESPACE)
    assert code == 2 and "is not on S3" in err and "s3://bucket/prefix" in err
    assert len(err.strip().splitlines()) == 1
    assert double.seen == [] and not (tmp_path / "store").exists()


def test_a_study_still_running_is_one_line(
    double: K8sDouble, kube: Path, study_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    running = double.add_workflow(NAMESPACE, workflow_body("mini", "s3://b/studies/mini/specs/x.yaml"))
    double.set_status(NAMESPACE, running["metadata"]["name"], "Running")
    before = dict(double.workflows)
    code, _, err = cli(capsys, "submit", str(study_file), "-n", NAMESPACE)
    assert code == 2 and double.posts() == [] and double.workflows == before
    assert (
        f"Workflow {running['metadata']['name']} is still running in namespace {NAMESPACE} (Running)" in err
    )


def test_rbac_without_create_is_one_line_naming_the_rule(
    double: K8sDouble, kube: Path, study_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    double.forbid("create", "workflows")
    err = refused(capsys, double, study_file, "-n", NAMESPACE)
    assert "forbids create workflows in namespace rpt (403 Forbidden)" in err
    assert "needs RBAC `create` on `workflows.argoproj.io`" in err


def test_the_installed_template_declares_every_parameter_submit_passes(
    double: K8sDouble, kube: Path, study_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = Path(__file__).resolve().parents[2] / "workflows" / f"{TEMPLATE_NAME}.yaml"
    if not path.exists():
        pytest.skip(f"{path} is not generated yet")
    double.add_template("real", yaml.safe_load(path.read_text(encoding="utf-8")))  # schema-checked too
    code, _, err = cli(capsys, "submit", str(study_file), "-n", "real", "--score-chunk", "3")
    assert code == 0, err
    template = double.templates[("real", TEMPLATE_NAME)]
    declared = {p["name"] for p in template["spec"]["arguments"]["parameters"]}
    (workflow,) = double.workflows.values()
    assert (
        {p["name"] for p in workflow["spec"]["arguments"]["parameters"]}
        == {"study", "score-chunk"}
        <= declared
    )


LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
"""Kubernetes' rule for a label value (at most 63 characters)."""


@pytest.mark.parametrize("study", ["mini", "mini-", "a_b.", "x" * 62 + "_", "ab-_."])
def test_every_study_name_makes_a_valid_label_of_its_own(study: str) -> None:
    label = workflow_body(study, "s3://b/spec.yaml")["metadata"]["labels"][STUDY_LABEL]
    assert LABEL_VALUE.match(label) and len(label) <= 63 and label == study_label(study)
    assert (label == study) == study[-1].isalnum()
    assert study_label(study + "-") != study_label(study + ".")  # two names never share one label
