"""The multi-node train step: train-ray's check, and the RayJob its resource template creates.

The RayJob's manifest is text with Argo expression tags (src/rpt_transfer/argo/rayjob.py). Here it is
substituted as Argo substitutes a template (argo_expr.substitute_json: globals, then inputs, each over the
template's JSON text), with sample values and with hostile ones, then parsed and checked: KubeRay's schema
(../shared/data; skipped, saying why, without it), the restricted Pod Security Standard, the train pods'
command. The local interpreter (argo_runner.py) then runs the generated template's `train-ray` for real,
the RayJob's entrypoint as the head's process.
"""

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from argo_expr import TAG, evaluate, go_json, substitute_json, validation_text
from argo_runner import ERROR, FAILED, SUCCEEDED, ArgoRunner, _requirement_holds, _requirements
from k8s_double import K8sDouble
from test_templates import DEFAULTS, HOSTILE, key_paths, parse, template_spec

from chart.k8s_checks import pod_specs, rayjob_errors, restricted_violations
from rpt_transfer.argo import pods, rayjob, render, templates

INPUTS = {
    "plan": "s3://rpt-transfer/store/studies/paper/plans/3f9a1c2e0b7d4a65.json",
    "part": "train/3",
    "gpus": "8",
    "nodes": "4",
    "gpu-resource": "nvidia.com/gpu",
}
"""A train item over 4 nodes of 8 GPUs, as the study step gives it (prepare's outputs)."""
WORKFLOW = "paper-interventional-x7k2p"


def by_name() -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in template_spec()["templates"]}


def job_template() -> dict[str, Any]:
    return by_name()["train-ray-job"]


def fixed_inputs(template: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in template["inputs"]["parameters"] if "value" in p}


def substituted(params: dict[str, str] | None = None, inputs: dict[str, str] | None = None) -> dict[str, Any]:
    """The train-ray-job template as Argo substitutes it for a pod: workflow parameters, then inputs."""
    template = job_template()
    globals_ = {f"workflow.parameters.{k}": v for k, v in (params or DEFAULTS).items()}
    globals_["workflow.name"] = WORKFLOW
    given = {**fixed_inputs(template), **(inputs or INPUTS)}
    return substitute_json(template, globals_, {f"inputs.parameters.{k}": v for k, v in given.items()})


def rendered(params: dict[str, str] | None = None, inputs: dict[str, str] | None = None) -> dict[str, Any]:
    """The RayJob as Argo's executor would create it."""
    return yaml.safe_load(substituted(params, inputs)["resource"]["manifest"])


def ray_pods(obj: dict[str, Any]) -> list[dict[str, Any]]:
    cluster = obj["spec"]["rayClusterSpec"]
    return [cluster["headGroupSpec"]["template"], *(g["template"] for g in cluster["workerGroupSpecs"])]


def test_the_resource_template_creates_a_rayjob_and_follows_it() -> None:
    template = job_template()
    resource = template["resource"]
    assert resource["action"] == "create" and resource["setOwnerReference"] is True
    assert (
        resource["successCondition"]
        == "status.jobDeploymentStatus == Complete, status.jobStatus == SUCCEEDED"
    )
    assert resource["failureCondition"] == (
        "status.jobDeploymentStatus in (Failed, ValidationFailed), status.jobStatus in (FAILED, STOPPED)"
    )
    assert template["activeDeadlineSeconds"] == "{{workflow.parameters.train-deadline}}"
    assert template["retryStrategy"]["expression"] == pods.RETRY_EXPRESSION
    ref = {"name": "rpt-transfer-limits", "key": "{{workflow.parameters.gpu-semaphore-key}}"}
    assert template["synchronization"] == {"semaphores": [{"configMapKeyRef": ref}]}
    assert fixed_inputs(template) == {"cpu": "8", "memory": "96Gi", "shm-size": "16Gi"}  # pods.SIZES["gpu"]
    assert template["metadata"]["labels"] == {pods.ROLE_LABEL: "train"}


def test_the_rayjob_validates_against_kuberays_schema() -> None:
    assert rayjob_errors(rendered()) == []
    assert rayjob_errors(rendered(inputs={**INPUTS, "nodes": "2", "gpus": "1"})) == []


def test_every_pod_of_the_rayjob_meets_the_restricted_standard() -> None:
    found = list(pod_specs(rendered()))
    assert [where.split(" ", 2)[-1] for where, _, _ in found] == ["head", "worker group gpu", "submitter"]
    for where, pod, containers in found:
        assert restricted_violations(where, pod, containers) == [], where


def test_the_rayjob_runs_the_train_pods_command_on_n_nodes_of_g_gpus() -> None:
    obj = rendered()
    spec = obj["spec"]
    assert (obj["apiVersion"], obj["kind"]) == ("ray.io/v1", "RayJob")
    assert obj["metadata"]["generateName"] == "rpt-train-" and "name" not in obj["metadata"]
    assert obj["metadata"]["labels"]["workflows.argoproj.io/workflow"] == WORKFLOW
    # the entrypoint: the train pods' argv, through the submitter's shell, Ray's join and the head's shell
    words = shlex.split(subprocess.list2cmdline(shlex.split(spec["entrypoint"])))
    assert words == ["rpt-transfer", "job", "run", "--plan", INPUTS["plan"], "--part", "train/3"]
    assert parse(words[1:]).params["part"] == "train/3"
    assert spec["submissionMode"] == "K8sJobMode" and spec["shutdownAfterJobFinishes"] is True
    assert spec["backoffLimit"] == 0 and spec["ttlSecondsAfterFinished"] == rayjob.TTL_SECONDS
    assert spec["activeDeadlineSeconds"] == int(DEFAULTS["train-deadline"])
    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == "2.55.0"
    (workers,) = cluster["workerGroupSpecs"]
    assert workers["replicas"] == workers["minReplicas"] == workers["maxReplicas"] == 3  # and the head: 4
    assert cluster["headGroupSpec"]["rayStartParams"] == {"dashboard-host": "0.0.0.0", "num-gpus": "8"}
    assert workers["rayStartParams"] == {"num-gpus": "8"}
    for template in ray_pods(obj):
        assert template["metadata"]["labels"] == {
            pods.ROLE_LABEL: "train", pods.SIZE_LABEL: "gpu", "app.kubernetes.io/part-of": "rpt-transfer",
        }  # fmt: skip
        pod = template["spec"]
        (container,) = pod["containers"]
        assert container["image"] == DEFAULTS["trainer-image"]
        assert container["resources"] == {
            "requests": {"cpu": "8", "memory": "96Gi", "nvidia.com/gpu": "8"},
            "limits": {"memory": "96Gi", "nvidia.com/gpu": "8"},
        }
        assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        assert container["envFrom"] == [
            {"configMapRef": {"name": "rpt-transfer-settings", "optional": True}},
            {"secretRef": {"name": "rpt-transfer-credentials", "optional": True}},
        ]
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env == {"RPT_STORE": "", "MLFLOW_TRACKING_URI": "", "RPT_TRAIN_WORKDIR": "/train-work"}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["train-work"]["persistentVolumeClaim"] == {"claimName": ""}  # the default: none
        assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}
        assert {m["name"]: m["mountPath"] for m in container["volumeMounts"]} == {
            "dshm": "/dev/shm", "train-work": "/train-work",
        }  # fmt: skip
    claimed = rendered({**DEFAULTS, "train-shared-claim": "rpt-train-work", "store": "s3://b/p"})
    for template in ray_pods(claimed):  # every node mounts the one claim at the same path
        volumes = {v["name"]: v for v in template["spec"]["volumes"]}
        assert volumes["train-work"]["persistentVolumeClaim"] == {"claimName": "rpt-train-work"}
        assert {"name": "RPT_STORE", "value": "s3://b/p"} in template["spec"]["containers"][0]["env"]
    submitter = spec["submitterPodTemplate"]
    assert submitter["metadata"]["labels"][pods.ROLE_LABEL] == "train"
    assert submitter["spec"]["restartPolicy"] == "Never"
    assert [c["name"] for c in submitter["spec"]["containers"]] == ["ray-job-submitter"]
    assert submitter["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}  # the image is there
    assert "nvidia.com/gpu" not in json.dumps(submitter["spec"]["containers"])  # but it asks for no GPU


def test_argos_validation_reads_the_manifest_and_each_tag_needs_one_pass() -> None:
    manifest = job_template()["resource"]["manifest"]
    assert isinstance(yaml.safe_load(validation_text(manifest)), dict)  # as `argo lint` and the API check
    for tag in TAG.findall(manifest):
        assert tag.startswith("=") and "\n" not in tag, tag  # only expression tags, one line each
        names = set(re.findall(r"\b(workflow|inputs)\.", tag))
        # Argo's first pass knows the globals, its second only the inputs: a tag needing both never resolves
        assert len(names) == 1, tag


HOSTILE_VALUES = [
    HOSTILE,
    "x'\n  hostPID: true\nspec: {}\n#",
    'x"\\" }: {hostNetwork: true}',
    "{{=sprig.replace('a', '\"', 'a')}}: {{inputs.parameters.plan}}",
    "{{=toJson('x')}}\n{{workflow.name}}",
]
"""Values that would add keys to the YAML if they landed raw: quotes of both kinds, newlines, flow mappings,
and tags that Argo's second pass would evaluate if a value's `{{` reached it."""


@pytest.mark.parametrize("hostile", HOSTILE_VALUES)
def test_a_hostile_value_of_any_parameter_changes_no_key_of_the_rayjob(hostile: str) -> None:
    numbers = {"train-deadline"}  # asInt: a number or nothing (next test)
    attacked_params = {k: v if k in numbers else hostile for k, v in DEFAULTS.items()}
    normal, attacked = rendered(), rendered(attacked_params)

    def shape(obj: dict[str, Any]) -> list[str]:  # the nodeSelector's key is a parameter
        return [path for path in key_paths(obj) if ".nodeSelector." not in path]

    assert shape(attacked) == shape(normal)
    head = attacked["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    assert head["containers"][0]["image"] == hostile and head["nodeSelector"] == {hostile: hostile}
    assert head["volumes"][1]["persistentVolumeClaim"]["claimName"] == hostile
    assert attacked["metadata"]["labels"]["workflows.argoproj.io/workflow"] == WORKFLOW
    text = substituted(attacked_params)["resource"]["manifest"]
    assert "{{" not in text  # no tag of a value is left for the second pass


@pytest.mark.parametrize("deadline", ["2 days", "1\nspec: {}", "1.5"])
def test_a_deadline_that_is_no_integer_leaves_no_valid_rayjob(deadline: str) -> None:
    """asInt fails, Argo leaves the tag as it is, and the manifest is no RayJob: creation fails."""
    text = substituted({**DEFAULTS, "train-deadline": deadline})["resource"]["manifest"]
    assert "{{=asInt(workflow.parameters['train-deadline'])}}" in text
    try:
        obj = yaml.safe_load(text)
    except yaml.YAMLError:
        return
    assert not isinstance(obj["spec"]["activeDeadlineSeconds"], int)


def test_the_expression_subset_reads_as_argo_does() -> None:
    scope = {"workflow.parameters.a-b": "x<&'\"{", "workflow.parameters": "[...]", "inputs.parameters.n": "4"}
    assert evaluate("workflow.parameters['a-b']", scope) == "x<&'\"{"
    assert go_json("x<&'\"{") == '"x\\u003c\\u0026\'\\"{"'
    assert evaluate("sprig.replace('{', '\\\\u007b', toJson('{a}'))", scope) == '"\\u007ba}"'
    assert evaluate("asInt(inputs.parameters.n) - 1", scope) == 3
    assert evaluate('"\'" + sprig.replace("\'", "\'\\\\\'\'", "it\'s") + "\'"', {}) == "'it'\\''s'"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ({"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}, "succeeded"),
        ({"jobDeploymentStatus": "Failed", "jobStatus": "FAILED", "reason": "AppFailed"}, "failed"),
        ({"jobDeploymentStatus": "Complete", "jobStatus": "STOPPED"}, "failed"),
        ({"jobDeploymentStatus": "Failed", "jobStatus": "RUNNING", "reason": "DeadlineExceeded"}, "failed"),
        ({"jobDeploymentStatus": "Failed", "reason": "SubmissionFailed"}, "failed"),
        ({"jobDeploymentStatus": "ValidationFailed"}, "failed"),
        ({"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}, "waits"),
        ({"jobDeploymentStatus": "Initializing"}, "waits"),
        ({}, "waits"),
    ],
)
def test_the_conditions_read_kuberays_statuses(status: dict[str, str], outcome: str) -> None:
    """As Argo's executor: any failure requirement fails the step, every success requirement succeeds it."""
    resource = job_template()["resource"]
    obj = {"status": status}
    failed = any(_requirement_holds(r, obj) for r in _requirements(resource["failureCondition"]))
    succeeded = all(_requirement_holds(r, obj) for r in _requirements(resource["successCondition"]))
    assert ("failed" if failed else "succeeded" if succeeded else "waits") == outcome


def test_the_check_pod_refuses_an_empty_claim_in_one_line() -> None:
    check = by_name()["train-ray-check"]
    container = check["container"]
    assert (
        container["command"][:2] == ["sh", "-c"]
        and container["image"] == "{{workflow.parameters.runner-image}}"
    )
    assert "envFrom" not in container  # nothing to read but one parameter
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["RPT_SHARED_CLAIM"] == "{{workflow.parameters.train-shared-claim}}"
    for claim, code in (("", 2), ("rpt-train-work", 0), (HOSTILE, 0)):
        values = {**env, "RPT_SHARED_CLAIM": claim, "RPT_PART": "train/3", "RPT_NODES": "4"}
        result = subprocess.run(container["command"], env=values, capture_output=True, text=True, check=False)
        assert result.returncode == code, result.stderr
        if code:
            (line,) = result.stderr.splitlines()
            assert (
                line.startswith("error: train part train/3 runs on 4 nodes")
                and "training.sharedClaim" in line
            )


FAKE_TRAINER = """import json, os, sys
work = os.environ["RPT_TRAIN_WORKDIR"]
os.makedirs(work, exist_ok=True)
with open(os.path.join(work, "ran"), "a") as out:
    out.write(" ".join(sys.argv[1:]) + "\\n")
print(json.dumps({"argv": sys.argv[1:], "env": dict(os.environ)}))
sys.exit(1 if "train/9" in sys.argv else 0)
"""


def only_train_ray(claim: str) -> dict[str, Any]:
    """The generated WorkflowTemplate, entered at a step that calls train-ray with a train item."""
    doc = render.to_dict(templates.workflow_template())
    spec = doc["spec"]
    for parameter in spec["arguments"]["parameters"]:
        if parameter["name"] == "train-shared-claim":
            parameter["value"] = claim
    call = {
        "name": "train",
        "template": "train-ray",
        "arguments": {"parameters": [{"name": k, "value": f"{{{{item.{k}}}}}"} for k in rayjob.INPUTS]},
        "withParam": json.dumps([{**INPUTS, "part": part} for part in ("train/3", "train/9")]),
    }
    spec["templates"].append({"name": "only-train", "steps": [[call]]})
    spec["entrypoint"] = "only-train"
    del spec["onExit"]
    return doc


def test_the_interpreter_runs_train_ray_as_the_head_would(tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "rpt-transfer"
    fake.parent.mkdir()
    fake.write_text(f"#!{sys.executable}\n{FAKE_TRAINER}")
    fake.chmod(0o755)
    runner = ArgoRunner(
        only_train_ray("rpt-train-work"),
        commands={"rpt-transfer": str(fake), "sh": "/bin/sh"},
        secrets={"rpt-transfer-credentials": {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}},
        config_maps={pods.SETTINGS_CONFIGMAP: {"RPT_REWARD_URL": "http://reward:8000/get_reward"}},
        workdir=tmp_path / "pods",
    )
    run = runner.submit({"study": "s3://b/spec.yaml", "store": "s3://b/store"}, name="wf-ray")
    assert run.status == FAILED  # train/9's job exits 1: its RayJob fails, and so does its step
    # the interpreter runs a loop's items one after another, each item's steps in order
    assert [(pod.template, pod.phase) for pod in run.pods] == [
        ("train-ray-check", SUCCEEDED), ("train-ray-job", SUCCEEDED),
        ("train-ray-check", SUCCEEDED), ("train-ray-job", FAILED),
    ]  # fmt: skip
    head = run.pods[1]
    assert head.container_argv == [
        "rpt-transfer",
        "job",
        "run",
        "--plan",
        INPUTS["plan"],
        "--part",
        "train/3",
    ]
    assert head.env["RPT_STORE"] == "s3://b/store" and head.env["AWS_SECRET_ACCESS_KEY"] == "s"
    assert head.env["RPT_REWARD_URL"] == "http://reward:8000/get_reward" and "RAY_ADDRESS" in head.env
    assert head.labels[pods.ROLE_LABEL] == "train" and head.image == DEFAULTS["trainer-image"]
    # both runs wrote to the one claim (a ReadWriteMany volume: every node and attempt sees it)
    shared = tmp_path / "pods" / "claims" / "rpt-train-work" / "ran"
    assert shared.read_text().splitlines() == [
        f"job run --plan {INPUTS['plan']} --part train/{i}" for i in (3, 9)
    ]
    assert head.env["RPT_TRAIN_WORKDIR"] == str(shared.parent)
    failed = [node for node in run.nodes if node.template == "train-ray-job" and node.phase == FAILED]
    assert (
        failed[0].message
        == "failure condition 'status.jobDeploymentStatus in (Failed, ValidationFailed)' evaluated true"
    )
    assert [obj["status"]["jobStatus"] for obj in run.resources] == ["SUCCEEDED", "FAILED"]
    assert all(obj["metadata"]["name"].startswith("rpt-train-") for obj in run.resources)
    assert rayjob_errors({k: v for k, v in run.resources[0].items() if k != "status"}) == []


def test_the_interpreter_stops_a_multi_node_run_without_a_claim(tmp_path: Path) -> None:
    runner = ArgoRunner(
        only_train_ray(""),
        commands={"rpt-transfer": sys.executable, "sh": "/bin/sh"},
        workdir=tmp_path / "pods",
    )
    run = runner.submit({"study": "s3://b/spec.yaml"}, name="wf-noclaim")
    assert run.status == FAILED and run.resources == []  # no RayJob was asked for
    assert {pod.template for pod in run.pods} == {"train-ray-check"}
    assert all(pod.exit_code == 2 and "train-shared-claim is empty" in pod.stderr for pod in run.pods)
    assert ERROR not in {node.phase for node in run.nodes}


def test_the_kubernetes_double_takes_the_template_with_its_resource_template() -> None:
    """The double validates what it stores (Argo's schema and the unknown-key walk): the generated template,
    with train-ray-job's `resource`, installs there as the chart installs it in a cluster."""
    with K8sDouble() as double:
        double.add_template("rpt", render.to_dict(templates.workflow_template()))
        stored = double.templates[("rpt", templates.TEMPLATE_NAME)]
    job = next(t for t in stored["spec"]["templates"] if t["name"] == "train-ray-job")
    assert job["resource"]["manifest"] == rayjob.manifest()
