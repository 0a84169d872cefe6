"""`rpt-transfer discover --submit` end to end: the fake Hub, a moto S3 store and the Kubernetes double.

The double (tests/argo/k8s_double.py) speaks the Kubernetes and Argo APIs and validates the Workflow it is
asked to create; no controller runs. The registry is read back from the same store.
"""

from pathlib import Path

import hub_scene
import pytest
import yaml
from hub_scene import ACCEPTED, BASE, BASE2, DAPO, GRPO, cli, config, populate

import servers_hub
from argo.k8s_double import NAMESPACE, K8sDouble, double_fixture, kube_fixture  # noqa: F401 - fixtures
from rpt_transfer.argo.client import STUDY_LABEL, TEMPLATE_NAME
from rpt_transfer.discovery import load, model_sizes
from rpt_transfer.discovery.registry import PREFIX, read
from rpt_transfer.spec import parse_study
from rpt_transfer.store import Store
from servers_hub import FakeHub

fake_hub = servers_hub.fake_hub
store_env = hub_scene.store_env


@pytest.fixture
def s3_config(fake_hub: FakeHub, s3_store_uri: str, tmp_path: Path) -> tuple[dict[str, str], Path, Store]:
    """The populated fake Hub's commits, a config whose study (and registry) store is a moto bucket."""
    study = {"benchmarks": ["smoke_arith"], "limit": 4, "store": s3_store_uri}
    return populate(fake_hub), config(tmp_path / "discovery.yaml", study=study), Store.from_uri(s3_store_uri)


def test_submit_creates_the_workflow_of_every_pinned_pair_records_it_and_a_second_run_adds_nothing(
    double: K8sDouble, kube: Path, s3_config: tuple, capsys: pytest.CaptureFixture[str]
) -> None:
    sha, path, store = s3_config
    code, out, err = cli(capsys, "discover", "--config", str(path), "--submit", "-n", NAMESPACE)
    assert code == 0, err
    (workflow,) = double.workflows.values()
    assert workflow["spec"]["workflowTemplateRef"] == {"name": TEMPLATE_NAME}
    params = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
    spec = parse_study(store.read_bytes(params["study"].removeprefix(store.uri + "/")).decode())
    assert workflow["metadata"]["labels"][STUDY_LABEL] == spec.study and spec.study.startswith("discovered-")
    hubs = {name: (m.hub, m.revision) for name, m in spec.models.items()}
    pairs = {(hubs[p.rpt], hubs[p.base][0], tuple(p.domains), p.algorithm) for p in spec.pairs}
    assert pairs == {
        ((GRPO, sha[GRPO]), BASE, ("math",), "grpo"),
        (("bob/R1-1.5B-Code-RL", sha["bob/R1-1.5B-Code-RL"]), BASE, ("code",), "grpo"),
        ((DAPO, sha[DAPO]), BASE2, ("math",), "dapo"),
    }
    assert f"submitted Workflow {workflow['metadata']['name']} in namespace {NAMESPACE}" in out
    assert f"recorded 9 decision(s) in {store.uri}/{PREFIX}/" in out

    registry = read(store)
    (run,) = registry.runs
    assert (run.study, run.workflow, run.namespace) == (spec.study, workflow["metadata"]["name"], NAMESPACE)
    assert {b.hub: b.sha for b in run.bases} == {BASE: sha[BASE], BASE2: sha[BASE2]}
    assert set(run.watermarks) == {f"base_model:{BASE}", f"base_model:{BASE2}"}
    accepted = {d.id: d.sha for d in load(store) if d.outcome == "accepted"}
    assert accepted == {m: sha[m] for m in ACCEPTED}
    stored = yaml.safe_load(store.read_object(f"{PREFIX}/{run.run_id}", "study.yaml"))
    assert stored["study"] == spec.study
    sizes = model_sizes(store)
    assert sizes[f"{GRPO}@{sha[GRPO]}"] == 1_500_000_000 and sizes[f"{BASE}@{sha[BASE]}"] == 1_777_088_000
    assert len(sizes) == 5  # the three accepted and the two bases

    code, out, err = cli(capsys, "discover", "--config", str(path), "--submit", "-n", NAMESPACE)
    assert code == 0 and err.startswith("nothing new: ") and out == "", err
    assert len(double.workflows) == 1 and len(read(store).runs) == 1


def test_a_refused_submit_records_nothing_so_the_next_run_decides_again(
    double: K8sDouble, kube: Path, s3_config: tuple, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path, store = s3_config
    code, _, err = cli(capsys, "discover", "--config", str(path), "--submit", "-n", "other")
    assert code == 2 and f"namespace other has no WorkflowTemplate {TEMPLATE_NAME}" in err
    assert not double.workflows and store.list_keys(PREFIX) == []


def test_submit_with_nothing_accepted_records_the_decisions_and_submits_nothing(
    fake_hub: FakeHub, store_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(fake_hub)
    path = config(tmp_path / "small.yaml", bases=[{"hub": BASE2}], max_params_b=1)
    code, out, err = cli(capsys, "discover", "--config", str(path), "--submit")
    assert code == 0 and out == "", err
    assert "no new RPT model among 2 decision(s); nothing to submit (recorded in " in err
    registry = read(Store.from_uri(str(store_env)))
    assert [run.study for run in registry.runs] == [None]
    assert {d.outcome for d in registry.decisions.values()} == {"skipped"}
