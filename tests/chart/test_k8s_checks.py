"""The offline checks of rendered objects (k8s_checks): each finds what it is for, and passes what is valid.

Checks of Argo and RayJob objects read the vendored schemas in ../shared/data/schemas and skip, saying so,
without them; the core kinds' schemas come with the kubernetes-validate package.
"""

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from k8s_checks import (
    SUPPORTED_K8S,
    argo_errors,
    core_errors,
    object_errors,
    pod_specs,
    rayjob_errors,
    restricted_violations,
    schemas_available,
    unknown_keys,
)
from kubernetes_validate.utils import VersionNotSupportedError

OLDEST, NEWEST = SUPPORTED_K8S
needs_schemas = pytest.mark.skipif(schemas_available() is not None, reason=str(schemas_available()))


def container(name: str = "main", **more: Any) -> dict[str, Any]:
    """A container the restricted profile and the project's resources rule accept (with a compliant pod)."""
    return {
        "name": name,
        "image": "example.org/app:1.0",
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "128Mi"}},
        **more,
    }


def pod_spec() -> dict[str, Any]:
    return {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container()],
        "volumes": [{"name": "scratch", "emptyDir": {}}],
    }


def deployment(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec()},
            **spec,
        },
    }


def rayjob() -> dict[str, Any]:
    template = {"metadata": {"labels": {"app": "ray"}}, "spec": pod_spec()}
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {"name": "study", "labels": {"app": "ray"}},
        "spec": {
            "entrypoint": "python -m job",
            "shutdownAfterJobFinishes": True,
            "rayClusterSpec": {
                "headGroupSpec": {"rayStartParams": {}, "template": copy.deepcopy(template)},
                "workerGroupSpecs": [
                    {
                        "groupName": "gpu",
                        "replicas": 1,
                        "minReplicas": 0,
                        "maxReplicas": 2,
                        "template": template,
                    }
                ],
            },
            "submitterPodTemplate": copy.deepcopy(template),
        },
    }


def workflow_template() -> dict[str, Any]:
    """A small WorkflowTemplate: a workflow-level securityContext, one template overriding it, one patch."""
    main = {k: v for k, v in container().items() if k != "name"}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": "study"},
        "spec": {
            "entrypoint": "main",
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "templates": [
                {
                    "name": "main",
                    "steps": [[{"name": "a", "template": "a"}], [{"name": "b", "template": "b"}]],
                },
                {"name": "a", "container": main},
                {
                    "name": "b",
                    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "Localhost"}},
                    "podSpecPatch": json.dumps({"hostUsers": False}),
                    "script": {**main, "source": "print(1)"},
                    "retryStrategy": {"limit": "2"},
                },
            ],
        },
    }


# ---- core kinds ----


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_a_valid_deployment_passes_the_oldest_and_newest_schemas(version: str) -> None:
    assert core_errors(deployment(), version) == []


def test_the_supported_versions_are_what_kubernetes_validate_carries() -> None:
    assert SUPPORTED_K8S[0].startswith("1.") and SUPPORTED_K8S[1].startswith("1.")
    assert core_errors(deployment(), "1.33.0") == [] and core_errors(deployment(), "v1.37") == []
    with pytest.raises(VersionNotSupportedError):
        core_errors(deployment(), "1.99.0")


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_a_misspelt_field_is_reported_with_its_object_and_path(version: str) -> None:
    obj = {**deployment(replicass=2), "stauts": {}}
    obj["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    errors = core_errors(obj, version)
    assert len(errors) == 3, errors
    assert errors[0].startswith("Deployment web: (top level): ") and "'stauts' was unexpected" in errors[0]
    assert errors[1].startswith("Deployment web: .spec: ") and "'replicass' was unexpected" in errors[1]
    assert errors[2].startswith("Deployment web: .spec.template.spec.containers[0]: ")
    assert "'imagePullPolicyy' was unexpected" in errors[2]


def test_a_wrong_type_is_reported() -> None:
    obj = deployment(replicas="two")
    obj["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = ["128Mi"]
    errors = core_errors(obj, NEWEST)
    assert [e.split(": ")[1] for e in errors] == [
        ".spec.replicas",
        ".spec.template.spec.containers[0].resources.limits.memory",
    ], errors


@pytest.mark.parametrize(
    "obj",
    [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"a": "1"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "rb"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "sa"}],
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "np"},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"port": 443}]}]},
        },
    ],
    ids=lambda obj: obj["kind"],
)
def test_core_kinds_of_each_api_group_are_found_and_checked(obj: dict[str, Any]) -> None:
    assert core_errors(obj, OLDEST) == []
    broken = {**obj, "metadata": {**obj["metadata"], "lables": {}}}
    assert core_errors(broken, NEWEST) == [
        f"{obj['kind']} {obj['metadata']['name']}: .metadata: Additional properties are not allowed "
        f"('lables' was unexpected) (Kubernetes {NEWEST} strict schema)"
    ]


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [("apps/v2", "Deployment"), ("monitoring.coreos.com/v1", "ServiceMonitor"), ("ray.io/v1", "RayCluster")],
)
def test_a_kind_without_a_schema_is_an_error(api_version: str, kind: str) -> None:
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}, "spec": {}}
    (error,) = object_errors(obj, NEWEST)
    assert error.startswith(f"{kind} x: no schema for kind {kind} of apiVersion {api_version}")


# ---- Argo and RayJob ----


@needs_schemas
def test_a_workflow_template_passes_and_a_misspelt_or_mistyped_key_is_reported() -> None:
    obj = workflow_template()
    assert argo_errors(obj) == [] and object_errors(obj, NEWEST) == []
    obj["spec"]["templates"][2]["retryStrategy"]["backof"] = {}
    obj["spec"]["templates"][1]["container"]["args"] = "not a list"
    assert argo_errors(obj) == [
        "WorkflowTemplate study: .spec.templates[1].container.args: 'not a list' is not of type 'array' "
        "(vendored Argo schema)",
        "WorkflowTemplate study: .spec.templates[2].retryStrategy.backof: unknown key, the vendored Argo "
        "schema does not name it",
    ]


def test_an_argo_kind_the_schema_lacks_is_an_error() -> None:
    obj = {**workflow_template(), "kind": "WorkflowTemplat"}
    assert object_errors(obj, NEWEST) == [
        "WorkflowTemplat study: no schema for kind WorkflowTemplat of apiVersion argoproj.io/v1alpha1 in "
        f"Kubernetes {NEWEST} (kubernetes-validate's core kinds)"
    ]


@needs_schemas
def test_a_valid_rayjob_passes() -> None:
    assert rayjob_errors(rayjob()) == [] and object_errors(rayjob(), OLDEST) == []


@needs_schemas
@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda s: s.update(entrypiont="python -m job"), ".spec.entrypiont: unknown key"),
        (lambda s: s.update(shutdownAfterJobFinishes="yes"), ".spec.shutdownAfterJobFinishes: 'yes' is not"),
        (lambda s: s["rayClusterSpec"]["workerGroupSpecs"][0].pop("groupName"), "'groupName' is a required"),
        (
            lambda s: s["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0].update(
                imag="x"
            ),
            ".spec.rayClusterSpec.headGroupSpec.template.spec.containers[0].imag: unknown key",
        ),
        (lambda s: s["submitterPodTemplate"]["metadata"].update(lables={}), "metadata.lables: unknown key"),
    ],
    ids=["misspelt", "wrong-type", "required", "nested-misspelt", "template-metadata"],
)
def test_an_invalid_rayjob_is_reported(edit: Callable[[dict[str, Any]], Any], expected: str) -> None:
    obj = rayjob()
    edit(obj["spec"])
    (error,) = rayjob_errors(obj)
    assert error.startswith("RayJob study: ") and expected in error, error


@needs_schemas
def test_a_rayjobs_own_metadata_is_checked_as_object_meta() -> None:
    obj = rayjob()
    obj["metadata"]["lables"] = {"a": "b"}
    (error,) = rayjob_errors(obj)
    assert error.startswith("RayJob study: .metadata: Additional properties are not allowed ('lables'"), error


def test_unknown_keys_spares_maps_and_preserved_fields_only() -> None:
    schema = {
        "definitions": {"Env": {"properties": {"name": {"type": "string"}}}},
        "properties": {
            "labels": {"additionalProperties": {"$ref": "#/definitions/Env"}},
            "raw": {
                "properties": {"known": {"properties": {}}},
                "x-kubernetes-preserve-unknown-fields": True,
            },
            "env": {"items": {"$ref": "#/definitions/Env"}},
        },
    }
    value = {
        "labels": {"any": {"name": "a", "nmae": "b"}},
        "raw": {"anything": 1, "known": {"typo": 1}},
        "env": [{"name": "a"}, {"naem": "b"}],
        "extra": 1,
    }
    assert unknown_keys(schema, value, schema) == [
        ".labels.any.nmae",
        ".raw.known.typo",
        ".env[1].naem",
        ".extra",
    ]


def test_schemas_available_names_the_folder_it_looked_in() -> None:
    reason = schemas_available()
    assert reason is None or ("shared/data/schemas" in reason and "argo-workflows.schema.json" in reason)


# ---- the pods an object creates ----


def test_pod_specs_finds_the_pod_of_a_deployment_and_a_cronjob() -> None:
    ((where, pod, containers),) = pod_specs(deployment())
    assert where == "Deployment web" and pod["securityContext"]["runAsNonRoot"] is True
    assert [c["name"] for c in containers] == ["main"]
    spec = {**pod_spec(), "initContainers": [container("init")]}
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly"},
        "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {"spec": spec}}}},
    }
    assert core_errors(cronjob, NEWEST) == []
    ((where, pod, containers),) = pod_specs(cronjob)
    assert (where, pod, [c["name"] for c in containers]) == ("CronJob nightly", spec, ["init", "main"])
    assert list(pod_specs({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})) == []


def test_pod_specs_finds_a_rayjobs_head_workers_and_submitter() -> None:
    found = list(pod_specs(rayjob()))
    assert [where for where, _, _ in found] == [
        "RayJob study head",
        "RayJob study worker group gpu",
        "RayJob study submitter",
    ]
    for where, pod, containers in found:
        assert pod == pod_spec() and [c["name"] for c in containers] == ["main"]
        assert restricted_violations(where, pod, containers) == []


def test_a_rayjob_without_a_submitter_template_gets_kuberays_bare_default() -> None:
    obj = rayjob()
    del obj["spec"]["submitterPodTemplate"]
    obj["spec"]["rayClusterSpec"]["enableInTreeAutoscaling"] = True
    pods = {where: (pod, containers) for where, pod, containers in pod_specs(obj)}
    head_pod, head = pods["RayJob study head"]
    assert [c["name"] for c in head] == ["main", "autoscaler"]  # KubeRay adds the autoscaler sidecar
    assert "RayJob study head container autoscaler: allowPrivilegeEscalation not false" in (
        restricted_violations("RayJob study head", head_pod, head)
    )
    where = "RayJob study submitter (KubeRay's default: no submitterPodTemplate)"
    pod, containers = pods[where]
    assert f"{where} container ray-job-submitter: allowPrivilegeEscalation not false" in (
        restricted_violations(where, pod, containers)
    )
    obj["spec"]["submissionMode"] = "HTTPMode"
    assert [where for where, _, _ in pod_specs(obj)] == ["RayJob study head", "RayJob study worker group gpu"]


def test_pod_specs_finds_each_argo_pod_with_its_security_context_and_patch() -> None:
    obj = workflow_template()
    found = list(pod_specs(obj))
    assert [where for where, _, _ in found] == [
        "WorkflowTemplate study template a",
        "WorkflowTemplate study template b",
    ]
    (_, a, a_containers), (_, b, b_containers) = found
    assert a["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"} and "hostUsers" not in a
    assert b["securityContext"]["seccompProfile"] == {"type": "Localhost"} and b["hostUsers"] is False
    assert [c["name"] for c in a_containers] == [c["name"] for c in b_containers] == ["main"]
    assert b_containers[0]["source"] == "print(1)"
    for where, pod, containers in found:
        assert restricted_violations(where, pod, containers) == []
    cron = {"apiVersion": "argoproj.io/v1alpha1", "kind": "CronWorkflow", "metadata": {"name": "nightly"}}
    cron["spec"] = {"schedules": ["@daily"], "workflowSpec": obj["spec"]}
    assert [where for where, _, _ in pod_specs(cron)] == [
        "CronWorkflow nightly template a",
        "CronWorkflow nightly template b",
    ]


def test_an_argo_patch_merges_into_the_pod_and_its_containers_and_template_defaults_apply() -> None:
    obj = workflow_template()
    obj["spec"]["templateDefaults"] = {"sidecars": [container("proxy")]}
    patch = {
        "hostPID": True,
        "containers": [{"name": "main", "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
    }
    obj["spec"]["templates"][1]["podSpecPatch"] = json.dumps(patch)
    where, pod, containers = next(iter(pod_specs(obj)))
    assert [c["name"] for c in containers] == ["main", "proxy"]
    assert containers[0]["resources"]["limits"] == {"memory": "128Mi", "nvidia.com/gpu": "1"}
    assert restricted_violations(where, pod, containers) == [f"{where}: hostPID true"]


def test_an_unparsable_patch_is_reported_and_a_parsable_one_with_placeholders_is_read() -> None:
    obj = workflow_template()
    template = obj["spec"]["templates"][1]
    template["podSpecPatch"] = (
        '{"containers": [{"name": "main", "resources": {"limits": {"{{x}}": "{{y}}"}}}]}'
    )
    where, pod, containers = next(iter(pod_specs(obj)))
    assert containers[0]["resources"]["limits"]["{{x}}"] == "{{y}}"
    assert restricted_violations(where, pod, containers) == []
    template["podSpecPatch"] = '{"hostUsers": {{inputs.parameters.userns}}}'
    where, pod, containers = next(iter(pod_specs(obj)))
    (violation,) = restricted_violations(where, pod, containers)
    assert violation.startswith(f"{where}: podSpecPatch does not parse")
    template["podSpecPatch"] = "hostUsers: false\n"  # Argo also takes a YAML patch
    _, pod, _ = next(iter(pod_specs(obj)))
    assert pod["hostUsers"] is False


# ---- the restricted profile ----


def test_a_compliant_pod_has_no_violation() -> None:
    pod = pod_spec()
    pod["volumes"] += [
        {"name": k, k: {}} for k in ("configMap", "secret", "projected", "downwardAPI", "csi", "image")
    ]
    pod["containers"][0]["securityContext"]["capabilities"]["add"] = ["NET_BIND_SERVICE"]
    pod["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 0}]
    pod["securityContext"]["sysctls"] = [{"name": "net.ipv4.ping_group_range", "value": "0 1"}]
    pod["initContainers"] = [container("init")]
    assert restricted_violations("Pod p", pod, pod["initContainers"] + pod["containers"]) == []
    # the pod-level settings may be on every container instead
    pod = pod_spec()
    context = pod.pop("securityContext")
    pod["containers"][0]["securityContext"] |= context
    assert restricted_violations("Pod p", pod, pod["containers"]) == []


def _pod(edit: Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], Any]) -> dict[str, Any]:
    pod = pod_spec()
    main = pod["containers"][0]
    edit(pod, pod["securityContext"], main)
    return pod


RULES: dict[str, tuple[Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], Any], str]] = {
    "runAsNonRoot unset": (
        lambda p, s, c: s.pop("runAsNonRoot"),
        "container main: runAsNonRoot not set true",
    ),
    "runAsNonRoot false on the pod": (lambda p, s, c: s.update(runAsNonRoot=False), ": runAsNonRoot false"),
    "runAsNonRoot false on a container": (
        lambda p, s, c: c["securityContext"].update(runAsNonRoot=False),
        "container main: runAsNonRoot false",
    ),
    "root user on the pod": (lambda p, s, c: s.update(runAsUser=0), ": runAsUser 0"),
    "root user on a container": (
        lambda p, s, c: c["securityContext"].update(runAsUser=0),
        "main: runAsUser 0",
    ),
    "privilege escalation unset": (
        lambda p, s, c: c["securityContext"].pop("allowPrivilegeEscalation"),
        "main: allowPrivilegeEscalation not false",
    ),
    "privilege escalation": (
        lambda p, s, c: c["securityContext"].update(allowPrivilegeEscalation=True),
        "main: allowPrivilegeEscalation not false",
    ),
    "capabilities kept": (lambda p, s, c: c["securityContext"].pop("capabilities"), 'lacks "ALL"'),
    "capability added": (
        lambda p, s, c: c["securityContext"]["capabilities"].update(add=["NET_BIND_SERVICE", "SYS_ADMIN"]),
        "capabilities.add ['SYS_ADMIN']",
    ),
    "seccomp unset": (lambda p, s, c: s.pop("seccompProfile"), "main: seccompProfile not set"),
    "seccomp unconfined on the pod": (
        lambda p, s, c: s.update(seccompProfile={"type": "Unconfined"}),
        "Pod p: seccompProfile Unconfined",
    ),
    "seccomp unconfined on a container": (
        lambda p, s, c: c["securityContext"].update(seccompProfile={"type": "Unconfined"}),
        "Pod p container main: seccompProfile Unconfined",
    ),
    "privileged": (lambda p, s, c: c["securityContext"].update(privileged=True), "main: privileged true"),
    "host network": (lambda p, s, c: p.update(hostNetwork=True), "Pod p: hostNetwork true"),
    "host PID": (lambda p, s, c: p.update(hostPID=True), "Pod p: hostPID true"),
    "host IPC": (lambda p, s, c: p.update(hostIPC=True), "Pod p: hostIPC true"),
    "hostPath volume": (
        lambda p, s, c: p["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
        "volume h: hostPath volumes are not allowed",
    ),
    "nfs volume": (
        lambda p, s, c: p["volumes"].append({"name": "n", "nfs": {"server": "s", "path": "/"}}),
        "volume n: nfs volumes are not allowed",
    ),
    "host port": (lambda p, s, c: c.update(ports=[{"containerPort": 80, "hostPort": 80}]), "hostPort [80]"),
    "proc mount": (lambda p, s, c: c["securityContext"].update(procMount="Unmasked"), "procMount Unmasked"),
    "apparmor unconfined on the pod": (
        lambda p, s, c: s.update(appArmorProfile={"type": "Unconfined"}),
        "Pod p: appArmorProfile Unconfined",
    ),
    "apparmor unconfined on a container": (
        lambda p, s, c: c["securityContext"].update(appArmorProfile={"type": "Unconfined"}),
        "main: appArmorProfile Unconfined",
    ),
    "selinux user": (lambda p, s, c: s.update(seLinuxOptions={"user": "root"}), "seLinuxOptions"),
    "selinux type": (lambda p, s, c: c["securityContext"].update(seLinuxOptions={"type": "spc_t"}), "spc_t"),
    "unsafe sysctl": (
        lambda p, s, c: s.update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
        "sysctls ['kernel.msgmax']",
    ),
    "host process": (
        lambda p, s, c: c["securityContext"].update(windowsOptions={"hostProcess": True}),
        "hostProcess",
    ),
    "probe host": (
        lambda p, s, c: c.update(livenessProbe={"httpGet": {"host": "10.0.0.1", "port": 80}}),
        "a probe or lifecycle hook sets host",
    ),
    "no cpu request": (lambda p, s, c: c["resources"]["requests"].pop("cpu"), "resources lack requests.cpu"),
    "no memory request": (
        lambda p, s, c: c["resources"]["requests"].pop("memory"),
        "resources lack requests.memory",
    ),
    "no memory limit": (lambda p, s, c: c["resources"].pop("limits"), "resources lack limits.memory"),
    "unparsable patch": (
        lambda p, s, c: p.update(unparsablePodSpecPatches=['{"a": {{b}}}']),
        "podSpecPatch does not parse",
    ),
}


@pytest.mark.parametrize("rule", list(RULES))
def test_each_rule_fires_on_a_pod_breaking_only_it(rule: str) -> None:
    edit, expected = RULES[rule]
    pod = _pod(edit)
    (violation,) = restricted_violations("Pod p", pod, pod["containers"])
    assert violation.startswith("Pod p") and expected in violation, violation


def test_an_init_container_is_held_to_the_same_rules() -> None:
    pod = pod_spec()
    init = container("setup")
    del init["securityContext"]["allowPrivilegeEscalation"]
    assert restricted_violations("Pod p", pod, [init, *pod["containers"]]) == [
        "Pod p container setup: allowPrivilegeEscalation not false"
    ]
