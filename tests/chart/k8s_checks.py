"""Offline checks of rendered Kubernetes objects, for tests: schemas, unknown keys, the restricted pod profile.

Core kinds (Deployment, Service, NetworkPolicy, RBAC, ...) are validated with the `kubernetes-validate`
package's strict schemas (unknown fields are errors) of a given Kubernetes version. Argo kinds and KubeRay's
RayJob are validated against the JSON schemas vendored outside the repository, in ../shared/data/schemas
(see SOURCES.md there); those set no `additionalProperties: false`, so unknown keys are looked for by walking
each object against the schema's `properties`. A kind none of these knows is an error, never a pass.

`pod_specs` finds every pod an object will create (Argo templates and RayJob groups included) and
`restricted_violations` checks one against the Kubernetes "restricted" Pod Security Standard, plus the
project's rule that every container requests CPU and memory and limits its memory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from kubernetes_validate.utils import VersionNotSupportedError, all_versions
from packaging.version import Version
from referencing import Registry, Resource

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO.parent / "shared" / "data" / "schemas"
ARGO_SCHEMA = SCHEMAS / "argo-workflows.schema.json"
RAYJOB_SCHEMA = SCHEMAS / "kuberay-rayjob-v1.schema.json"

K8S_VERSIONS: tuple[str, ...] = tuple(all_versions())
"""The Kubernetes versions whose schemas the installed kubernetes-validate carries, oldest first."""
SUPPORTED_K8S: tuple[str, str] = (K8S_VERSIONS[0], K8S_VERSIONS[-1])
_K8S_SCHEMAS = resources.files("kubernetes_validate") / "kubernetes-json-schema"

ARGO_API = "argoproj.io/v1alpha1"
ARGO_KINDS = (
    "Workflow",
    "WorkflowTemplate",
    "ClusterWorkflowTemplate",
    "CronWorkflow",
    "WorkflowEventBinding",
)
RAY_API = "ray.io/v1"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
MAX_MESSAGE = 240


def schemas_available(paths: tuple[Path, ...] = (ARGO_SCHEMA, RAYJOB_SCHEMA)) -> str | None:
    """None when the vendored schemas (by default Argo's and KubeRay's) are there, else why a test needing
    them skips."""
    missing = [path.name for path in paths if not path.is_file()]
    if not missing:
        return None
    return (
        f"vendored JSON schemas not found in {SCHEMAS} (missing {', '.join(missing)}): they are kept outside "
        "the repository, in the project's shared/data/schemas (argo-workflows.schema.json from "
        "argoproj/argo-workflows, kuberay-rayjob-v1.schema.json from ray-project/kuberay; see SOURCES.md there)"
    )


ARGO_SCHEMA_MISSING = schemas_available((ARGO_SCHEMA,))
"""Why Argo's schema cannot be read here, or None (tests/argo needs only this one)."""


@cache
def _vendored(path: Path) -> dict[str, Any]:
    reason = schemas_available()
    if reason:
        pytest.skip(reason)
    return json.loads(path.read_text())


def argo_schema() -> dict[str, Any]:
    """The vendored Argo Workflows JSON schema (skips the calling test without it)."""
    return _vendored(ARGO_SCHEMA)


def rayjob_schema() -> dict[str, Any]:
    """The vendored RayJob (ray.io/v1) CRD schema (skips the calling test without it)."""
    return _vendored(RAYJOB_SCHEMA)


# ---- schema walking, shared with tests/argo/test_templates.py ----


def validator(schema: dict[str, Any], definition: str) -> jsonschema.protocols.Validator:
    """A validator of one definition of a schema that keeps its definitions under `definitions`."""
    root = {"definitions": schema["definitions"], "$ref": f"#/definitions/{definition}"}
    return jsonschema.Draft202012Validator(root)


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """The schema node a `$ref` chain leads to."""
    while "$ref" in node:
        node = schema["definitions"][node["$ref"].removeprefix("#/definitions/")]
    return node


def unknown_keys(schema: dict[str, Any], value: Any, node: dict[str, Any], path: str = "") -> list[str]:
    """Keys of `value` that its schema node does not name; maps (additionalProperties) take any key, and so
    does a node with `x-kubernetes-preserve-unknown-fields` (its named keys are still walked)."""
    node = resolve(schema, node)
    found: list[str] = []
    if isinstance(value, dict):
        properties, extra = node.get("properties"), node.get("additionalProperties")
        closed = (properties is not None or extra is False) and not node.get(
            "x-kubernetes-preserve-unknown-fields"
        )
        for key, item in value.items():
            if properties is not None and key in properties:
                found += unknown_keys(schema, item, properties[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                found += unknown_keys(schema, item, extra, f"{path}.{key}")
            elif closed:
                found.append(f"{path}.{key}")
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for index, item in enumerate(value):
            found += unknown_keys(schema, item, node["items"], f"{path}[{index}]")
    return found


# ---- messages ----


def _name(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    return f"{obj.get('kind', '?')} {metadata.get('name') or metadata.get('generateName') or '?'}"


def _path(parts: Iterable[Any]) -> str:
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts)
    return text or "(top level)"


def _line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def _schema_errors(obj: dict[str, Any], errors: Iterable[jsonschema.ValidationError], note: str) -> list[str]:
    ordered = sorted(errors, key=lambda e: (list(map(str, e.absolute_path)), e.message))
    return [_line(f"{_name(obj)}: {_path(e.absolute_path)}: {e.message} ({note})") for e in ordered]


def _unknown(obj: dict[str, Any], paths: list[str], note: str) -> list[str]:
    return [f"{_name(obj)}: {path}: unknown key, the {note} does not name it" for path in paths]


# ---- core kinds: kubernetes-validate ----


def _schema_version(k8s_version: str) -> str:
    """The newest version kubernetes-validate has schemas for that is not newer than `k8s_version`."""
    wanted = Version(".".join(k8s_version.removeprefix("v").split(".")[:2]))
    older = [v for v in K8S_VERSIONS if Version(v).release[:2] <= wanted.release[:2]]
    if not older or wanted.release[:2] > Version(K8S_VERSIONS[-1]).release[:2]:
        raise VersionNotSupportedError(k8s_version)
    return older[-1]


@cache
def _k8s_registry(version: str) -> Registry:
    text = (_K8S_SCHEMAS / f"v{version}-local-strict" / "_definitions.json").read_text()
    return Resource.from_contents(json.loads(text)) @ Registry()


@cache
def _k8s_validator(version: str, kind: str, api_version: str) -> jsonschema.protocols.Validator | None:
    # kubernetes-validate's own file naming: the group's first label and the version, e.g.
    # rbac.authorization.k8s.io/v1 -> rbac-v1, apps/v1 -> apps-v1, v1 -> v1
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    file = _K8S_SCHEMAS / f"v{version}-local-strict" / f"{kind.lower()}-{api}.json"
    if not file.is_file():
        return None
    schema = json.loads(file.read_text())
    registry = Resource.from_contents(schema) @ _k8s_registry(version)
    return jsonschema.Draft202012Validator(schema, registry=registry)


@cache
def _object_meta_validator() -> jsonschema.protocols.Validator:
    version = K8S_VERSIONS[-1]
    ref = {"$ref": f"https://kubernetes.io/api/_definitions.json#/$defs/{OBJECT_META}"}
    return jsonschema.Draft202012Validator(ref, registry=_k8s_registry(version))


def core_errors(obj: dict[str, Any], k8s_version: str) -> list[str]:
    """Errors of a core Kubernetes object against kubernetes-validate's strict schema for `k8s_version`
    ("1.33.0"; the newest schema not newer than it is used): every error, one line each, [] when valid.

    A kind/apiVersion with no schema there is one error. A version outside SUPPORTED_K8S raises
    kubernetes_validate's VersionNotSupportedError.
    """
    version = _schema_version(k8s_version)
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if not isinstance(kind, str) or not isinstance(api_version, str):
        return [f"{_name(obj)}: no apiVersion and kind, so no schema to check it against"]
    checker = _k8s_validator(version, kind, api_version)
    if checker is None:
        return [
            f"{_name(obj)}: no schema for kind {kind} of apiVersion {api_version} in Kubernetes {version} "
            "(kubernetes-validate's core kinds)"
        ]
    return _schema_errors(obj, checker.iter_errors(obj), f"Kubernetes {version} strict schema")


# ---- Argo and KubeRay: the vendored schemas ----


def argo_errors(obj: dict[str, Any]) -> list[str]:
    """Errors of an Argo object against its kind's definition in the vendored Argo schema, and its keys
    that schema does not name. Mind the schema's quirk: Quantity and IntOrString are typed string only."""
    schema, kind = argo_schema(), obj.get("kind")
    definition = f"io.argoproj.workflow.v1alpha1.{kind}"
    if kind not in ARGO_KINDS or definition not in schema["definitions"]:
        return [f"{_name(obj)}: no schema for kind {kind} in the vendored Argo schema"]
    note = "vendored Argo schema"
    errors = _schema_errors(obj, validator(schema, definition).iter_errors(obj), note)
    return errors + _unknown(obj, unknown_keys(schema, obj, schema["definitions"][definition]), note)


@cache
def _rayjob_validator() -> jsonschema.protocols.Validator:
    schema = rayjob_schema()
    return jsonschema.validators.validator_for(schema)(schema)


def rayjob_errors(obj: dict[str, Any]) -> list[str]:
    """Errors of a RayJob (ray.io/v1) against KubeRay's CRD schema, its keys the CRD does not name (except
    under `x-kubernetes-preserve-unknown-fields`), and its metadata against Kubernetes' strict ObjectMeta
    (the CRD types metadata as any object; the API server checks it as ObjectMeta)."""
    schema, note = rayjob_schema(), "KubeRay RayJob CRD schema"
    errors = _schema_errors(obj, _rayjob_validator().iter_errors(obj), note)
    errors += _unknown(obj, unknown_keys(schema, obj, schema), note)
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        meta_errors = _object_meta_validator().iter_errors(metadata)
        errors += [
            _line(f"{_name(obj)}: {_path(['metadata', *e.absolute_path])}: {e.message} (ObjectMeta)")
            for e in meta_errors
        ]
    return errors


def object_errors(obj: dict[str, Any], k8s_version: str) -> list[str]:
    """Errors of any rendered object: Argo kinds and RayJob against the vendored schemas, anything else
    against kubernetes-validate's core kinds; a kind none of them has a schema for is an error."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if api_version == ARGO_API and kind in ARGO_KINDS:
        return argo_errors(obj)
    if api_version == RAY_API and kind == "RayJob":
        return rayjob_errors(obj)
    return core_errors(obj, k8s_version)


# ---- the pods an object creates ----

TEMPLATED = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"}
"""Kinds whose pods come from `spec.template`."""
SUBMITTER_CONTAINER = {
    "name": "ray-job-submitter",
    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "200Mi"}},
}
"""The container KubeRay gives a RayJob's submitter when the RayJob sets no submitterPodTemplate (KubeRay's
GetDefaultSubmitterContainer): no securityContext at all."""
AUTOSCALER_RESOURCES = {
    "limits": {"cpu": "500m", "memory": "512Mi"},
    "requests": {"cpu": "500m", "memory": "512Mi"},
}
"""KubeRay's resources of the autoscaler sidecar when autoscalerOptions.resources is unset."""
PLACEHOLDER = re.compile(r"\{\{[^{}]*\}\}")


def _merge(base: Any, patch: Any) -> Any:
    """`patch` over `base` as a strategic merge patch does for pod specs: maps merge, lists of named items
    (containers, volumes) merge by name, anything else is replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        return {**base, **{key: _merge(base.get(key), value) for key, value in patch.items()}}
    named = isinstance(base, list) and isinstance(patch, list)
    if named and all(isinstance(item, dict) and "name" in item for item in [*base, *patch]):
        merged = {item["name"]: item for item in base}
        for item in patch:
            merged[item["name"]] = _merge(merged.get(item["name"]), item)
        return list(merged.values())
    return patch


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for key in ("initContainers", "containers", "ephemeralContainers") for c in spec.get(key) or []]


def _parse_patch(text: str) -> dict[str, Any] | None:
    """A podSpecPatch as a mapping, or None when it is not JSON (nor, without placeholders, YAML)."""
    try:
        parsed = json.loads(text)
    except ValueError:
        if PLACEHOLDER.search(text):  # YAML would read a bare {{x}} as a nested flow mapping
            return None
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError:
            return None
    return parsed if isinstance(parsed, dict) else None


def _argo_pod(spec: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
    """The pod spec Argo makes of a container/script/containerSet template: its containers (the main one is
    always named main), its pod-level settings from the template or the workflow spec, its patches applied."""
    main = template.get("container") or template.get("script")
    containers = [{**main, "name": "main"}] if main else []
    containers += (template.get("containerSet") or {}).get("containers", []) or []
    pod: dict[str, Any] = {
        "containers": containers + list(template.get("sidecars", []) or []),
        "initContainers": list(template.get("initContainers", []) or []),
        "volumes": [*(spec.get("volumes") or []), *(template.get("volumes") or [])],
    }
    context = template.get("securityContext", spec.get("securityContext"))
    if context is not None:
        pod["securityContext"] = context
    if "hostNetwork" in spec:
        pod["hostNetwork"] = spec["hostNetwork"]
    for text in (spec.get("podSpecPatch"), template.get("podSpecPatch")):
        if not text:
            continue
        patch = _parse_patch(text)
        if patch is None:
            pod.setdefault("unparsablePodSpecPatches", []).append(text)
        else:
            pod = _merge(pod, patch)
    return pod


def _argo_pods(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronWorkflow":
        spec = spec.get("workflowSpec") or {}
    defaults = spec.get("templateDefaults") or {}
    for template in spec.get("templates") or []:
        template = _merge(defaults, template)
        if not any(key in template for key in ("container", "script", "containerSet")):
            continue
        pod = _argo_pod(spec, template)
        yield f"{_name(obj)} template {template.get('name')}", pod, _containers(pod)


def _rayjob_pods(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    spec, where = obj.get("spec") or {}, _name(obj)
    cluster = spec.get("rayClusterSpec") or {}
    mode = spec.get("submissionMode") or "K8sJobMode"
    if "headGroupSpec" in cluster:
        head = dict(((cluster["headGroupSpec"].get("template") or {}).get("spec")) or {})
        extra = []
        if cluster.get("enableInTreeAutoscaling"):
            options = cluster.get("autoscalerOptions") or {}
            autoscaler = {"name": "autoscaler", "resources": options.get("resources", AUTOSCALER_RESOURCES)}
            if "securityContext" in options:
                autoscaler["securityContext"] = options["securityContext"]
            extra.append(autoscaler)
        if mode == "SidecarMode":
            extra.append(SUBMITTER_CONTAINER)
        head["containers"] = [*(head.get("containers") or []), *extra]
        yield f"{where} head", head, _containers(head)
    for group in cluster.get("workerGroupSpecs") or []:
        worker = (group.get("template") or {}).get("spec") or {}
        yield f"{where} worker group {group.get('groupName')}", worker, _containers(worker)
    if "submitterPodTemplate" in spec:
        submitter = (spec["submitterPodTemplate"] or {}).get("spec") or {}
        yield f"{where} submitter", submitter, _containers(submitter)
    elif mode == "K8sJobMode":
        default = {"containers": [SUBMITTER_CONTAINER], "restartPolicy": "Never"}
        yield f"{where} submitter (KubeRay's default: no submitterPodTemplate)", default, _containers(default)


def pod_specs(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    """(where, pod spec, its containers) for every pod `obj` will create; nothing for a kind making none.

    The pod spec bears the pod-level settings (securityContext, hostNetwork, hostUsers, volumes, ...); the
    containers are its init, regular and ephemeral ones. Argo templates get their pod-level securityContext
    from the template, else the workflow spec, and their podSpecPatch (workflow's, then template's) applied;
    one that does not parse is kept under `unparsablePodSpecPatches`, which restricted_violations reports.
    Argo's own executor containers (init, wait) are not included: the controller's config sets them.
    """
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind == "Pod":
        yield _name(obj), spec, _containers(spec)
    elif kind in TEMPLATED:
        pod = (spec.get("template") or {}).get("spec") or {}
        yield _name(obj), pod, _containers(pod)
    elif kind == "CronJob":
        pod = ((((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")) or {}).get("spec") or {}
        yield _name(obj), pod, _containers(pod)
    elif kind == "RayJob":
        yield from _rayjob_pods(obj)
    elif obj.get("apiVersion") == ARGO_API and kind in ARGO_KINDS:
        yield from _argo_pods(obj)


# ---- the restricted Pod Security Standard ----

ALLOWED_VOLUMES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim"}
    | {"projected", "secret"}
)
"""Volume types the restricted profile allows (`image` since Kubernetes 1.33)."""
ALLOWED_SECCOMP = ("RuntimeDefault", "Localhost")
ALLOWED_SELINUX_TYPES = ("", "container_t", "container_init_t", "container_kvm_t", "container_engine_t")
SAFE_SYSCTLS = frozenset(
    {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start"}
    | {"net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports"}
    | {"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl"}
    | {"net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}
)
"""The baseline profile's safe sysctls at policy v1.32 to v1.36 (1.37 adds two more)."""
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
REQUIRED_RESOURCES = (("requests", "cpu"), ("requests", "memory"), ("limits", "memory"))


def _context_violations(context: dict[str, Any]) -> list[str]:
    """What a pod or container securityContext sets that the profile forbids wherever it is set."""
    found = []
    if context.get("runAsNonRoot") is False:
        found.append("runAsNonRoot false")
    if context.get("runAsUser") == 0:
        found.append("runAsUser 0 (root)")
    seccomp = (context.get("seccompProfile") or {}).get("type")
    if seccomp is not None and seccomp not in ALLOWED_SECCOMP:
        found.append(f"seccompProfile {seccomp} (RuntimeDefault or Localhost only)")
    apparmor = (context.get("appArmorProfile") or {}).get("type")
    if apparmor == "Unconfined":
        found.append("appArmorProfile Unconfined")
    selinux = context.get("seLinuxOptions") or {}
    if selinux.get("type", "") not in ALLOWED_SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
        found.append(f"seLinuxOptions {selinux} (only a container type, no user or role)")
    if (context.get("windowsOptions") or {}).get("hostProcess"):
        found.append("windowsOptions.hostProcess true")
    return found


def _pod_violations(pod: dict[str, Any]) -> list[str]:
    context = pod.get("securityContext") or {}
    found = _context_violations(context)
    found += [f"{key} true" for key in ("hostNetwork", "hostPID", "hostIPC") if pod.get(key)]
    unsafe = sorted(s.get("name") for s in context.get("sysctls") or [] if s.get("name") not in SAFE_SYSCTLS)
    if unsafe:
        found.append(f"sysctls {unsafe} are not in the safe set")
    for volume in pod.get("volumes") or []:
        kinds = sorted(set(volume) - {"name"} - ALLOWED_VOLUMES)
        if kinds:
            found.append(f"volume {volume.get('name')}: {', '.join(kinds)} volumes are not allowed")
    for text in pod.get("unparsablePodSpecPatches") or []:
        found.append(
            f"podSpecPatch does not parse (a {{{{...}}}} placeholder outside a JSON string?), so what it sets "
            f"cannot be checked: {_line(text)[:120]}"
        )
    return found


def _container_violations(pod: dict[str, Any], container: dict[str, Any]) -> list[str]:
    pod_context, context = pod.get("securityContext") or {}, container.get("securityContext") or {}
    found = _context_violations(context)
    if "runAsNonRoot" not in context and "runAsNonRoot" not in pod_context:
        found.append("runAsNonRoot not set true (on the pod or this container)")
    seccomp_set = "type" in (context.get("seccompProfile") or {})
    if not seccomp_set and "type" not in (pod_context.get("seccompProfile") or {}):
        found.append("seccompProfile not set (RuntimeDefault or Localhost, on the pod or this container)")
    if context.get("allowPrivilegeEscalation") is not False:
        found.append("allowPrivilegeEscalation not false")
    capabilities = context.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or []):
        found.append('capabilities.drop lacks "ALL"')
    added = sorted(set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"})
    if added:
        found.append(f"capabilities.add {added} (NET_BIND_SERVICE only)")
    if context.get("privileged"):
        found.append("privileged true")
    if context.get("procMount", "Default") != "Default":
        found.append(f"procMount {context['procMount']} (Default only)")
    ports = [p["hostPort"] for p in container.get("ports") or [] if p.get("hostPort")]
    if ports:
        found.append(f"hostPort {ports}")
    handlers = [container.get(probe) or {} for probe in PROBES]
    handlers += list((container.get("lifecycle") or {}).values())
    if any((handler.get(way) or {}).get("host") for handler in handlers for way in ("httpGet", "tcpSocket")):
        found.append("a probe or lifecycle hook sets host")
    resources = container.get("resources") or {}
    missing = [
        f"{part}.{name}" for part, name in REQUIRED_RESOURCES if name not in (resources.get(part) or {})
    ]
    if missing:
        found.append(f"resources lack {', '.join(missing)}")
    return found


def restricted_violations(where: str, pod: dict[str, Any], containers: list[dict[str, Any]]) -> list[str]:
    """One line per breach of the restricted Pod Security Standard, and of the project's resources rule.

    The profile as the pod-security admission enforces it on Kubernetes 1.33 to 1.37, at its strictest
    across them: `hostUsers: false` relaxes nothing (it waives runAsNonRoot/runAsUser from policy 1.35 only),
    a probe's or hook's `host` is refused (from 1.34), sysctls are the 1.32 safe set; the deprecated AppArmor
    annotations (pod metadata) are not looked at. Plus: every container requests cpu and memory and limits
    its memory.
    """
    found = [f"{where}: {problem}" for problem in _pod_violations(pod)]
    for container in containers:
        prefix = f"{where} container {container.get('name')}"
        found += [f"{prefix}: {problem}" for problem in _container_violations(pod, container)]
    return found
