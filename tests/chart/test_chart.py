"""The Helm chart, rendered and linted offline for each profile (helm-python-sdk), every object validated.

Core kinds with kubernetes-validate's strict schemas of the oldest and newest supported Kubernetes, Argo
kinds with Argo's schema plus the unknown-key check, RayJobs with KubeRay's (k8s_checks). The templates the
chart installs are the committed workflows/ objects; every pod meets the restricted Pod Security Standard
but the score pods' documented sandbox needs; bad values fail with a line naming the value.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import helm_python as helm
import pytest
import yaml
from chart_render import (
    CHART,
    NAMESPACE,
    PROFILES,
    merged,
    objects,
    one,
    parse_cli,
    profile_objects,
    profile_values,
    render,
)
from k8s_checks import (
    K8S_VERSIONS,
    object_errors,
    pod_specs,
    rayjob_errors,
    restricted_violations,
    schemas_available,
)

from argo.argo_expr import substitute_json
from rpt_transfer.argo import pods, templates
from rpt_transfer.argo import render as argo_render
from rpt_transfer.argo.params import PARAMS

CHART_K8S = ("1.33.0", K8S_VERSIONS[-1])
"""The oldest Kubernetes the chart installs on (Chart.yaml's kubeVersion: user namespaces, `hostUsers`) and the
newest kubernetes-validate knows."""
assert CHART_K8S[0] in K8S_VERSIONS

SCORE_SANDBOX_NEEDS = {
    "seccompProfile Unconfined",
    "appArmorProfile Unconfined",
    "procMount Unmasked",
}
"""What the score pods' sandbox needs beyond the restricted standard (docs/sandbox.md, `userns` level), and
nothing else may deviate. Matched as substrings of k8s_checks' findings."""


def lint_problems(values: dict[str, Any]) -> list[str]:
    """`helm lint --strict` findings of warning level or worse, and its errors."""
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE)
    return [f"{m['path']}: {m['error']}" for m in report["messages"] if m["severity"] >= 2] + report["errors"]


@pytest.mark.parametrize("profile", list(PROFILES))
def test_each_profile_lints_clean(profile: str) -> None:
    assert lint_problems(profile_values(profile)) == []


@pytest.mark.parametrize("k8s", CHART_K8S)
@pytest.mark.parametrize("profile", list(PROFILES))
def test_every_rendered_object_validates(profile: str, k8s: str) -> None:
    if reason := schemas_available():
        pytest.skip(reason)
    found = profile_objects(profile)
    assert found
    assert [error for obj in found for error in object_errors(obj, k8s)] == []


def test_the_profiles_install_what_they_say() -> None:
    kinds = {p: {(o["kind"], o["metadata"]["name"]) for o in profile_objects(p)} for p in PROFILES}
    assert ("WorkflowTemplate", templates.TEMPLATE_NAME) in kinds["default"]
    assert ("Deployment", "rpt-transfer-mlflow") in kinds["default"]
    assert ("StatefulSet", "rpt-transfer-s3") in kinds["dev"] and (
        "StatefulSet",
        "rpt-transfer-s3",
    ) not in kinds["default"]
    assert ("PersistentVolumeClaim", "rpt-transfer-mlflow") in kinds["dev"]  # SQLite on a volume
    assert ("CronWorkflow", "rpt-transfer-discover") in kinds["everything"]
    assert not any(kind == "CronWorkflow" for kind, _ in kinds["default"])  # off unless switched on
    assert not any(kind == "Secret" for p in PROFILES for kind, _ in kinds[p])  # referenced, never made


def expected_template(values: dict[str, Any]) -> dict[str, Any]:
    """The committed WorkflowTemplate with the parameter defaults a chart sets from `values` (README)."""
    committed = yaml.safe_load((argo_render.WORKFLOWS_DIR / f"{templates.TEMPLATE_NAME}.yaml").read_text())
    image = "{repository}:{tag}".format
    settings = {
        "store": values["store"]["uri"],
        "mlflow-uri": f"http://rpt-transfer-mlflow.{NAMESPACE}.svc:5000",
        "credentials-secret": "rpt-transfer-credentials",
        "runner-image": image(**values["images"]["runner"]),
        "evaluator-image": image(**values["images"]["evaluator"]),
        "trainer-image": image(**values["images"]["trainer"]),
        "gpu-resource": values["gpu"]["resource"],
        "gpu-node-label": values["gpu"]["nodeLabel"],
        "gpu-node-label-value": values["gpu"]["nodeLabelValue"],
        "gpu-toleration-key": values["gpu"]["tolerationKey"],
        "sandbox-min": "userns",
        "train-shared-claim": values["training"]["sharedClaim"],
    }
    for parameter in committed["spec"]["arguments"]["parameters"]:
        if parameter["name"] in settings:
            parameter["value"] = settings[parameter["name"]]
    committed["spec"]["archiveLogs"] = True
    gpu, shm = values["podSizes"]["gpu"], str(values["training"]["shmSize"])
    for template in committed["spec"]["templates"]:
        size = template.get("metadata", {}).get("labels", {}).get(pods.SIZE_LABEL)
        if "container" in template and size:
            kind = values["podSizes"][size]
            template["container"]["resources"] = {
                "requests": {"cpu": str(kind["cpu"]), "memory": kind["memory"]},
                "limits": {"memory": kind["memory"]},
            }
        if template["name"] == "train-gpu":  # training.shmSize
            template["volumes"][0]["emptyDir"]["sizeLimit"] = shm
        if template["name"] == "train-ray-job":  # the Ray pods' sizes: its fixed inputs
            sizes = {"cpu": str(gpu["cpu"]), "memory": gpu["memory"], "shm-size": shm}
            for parameter in template["inputs"]["parameters"]:
                parameter["value"] = sizes.get(parameter["name"], parameter.get("value"))
                if parameter["value"] is None:
                    del parameter["value"]
    return committed


@pytest.mark.parametrize("profile", list(PROFILES))
def test_the_installed_template_is_the_committed_one(profile: str) -> None:
    values = profile_values(profile)
    chart_defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    expected = expected_template(merged(chart_defaults, values))
    installed = one(profile_objects(profile), "WorkflowTemplate", templates.TEMPLATE_NAME)
    assert installed["metadata"]["labels"].items() >= expected["metadata"]["labels"].items()
    installed["metadata"]["labels"] = expected["metadata"]["labels"]
    assert installed == expected
    assert {p["name"] for p in installed["spec"]["arguments"]["parameters"]} == {p.name for p in PARAMS}


def test_a_changed_template_shows_as_drift() -> None:
    """The comparison above can fail: a template edited after `make workflows` differs from the install."""
    values = profile_values("default")
    chart_defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    expected = expected_template(merged(chart_defaults, values))
    installed = one(profile_objects("default"), "WorkflowTemplate", templates.TEMPLATE_NAME)
    installed["metadata"]["labels"] = expected["metadata"]["labels"]
    installed["spec"]["templates"][2]["activeDeadlineSeconds"] = "1"
    assert installed != expected


def test_the_limits_are_the_committed_config_map_with_the_values_counts() -> None:
    committed = yaml.safe_load((argo_render.WORKFLOWS_DIR / f"{pods.LIMITS_CONFIGMAP}.yaml").read_text())
    installed = one(profile_objects("gpu"), "ConfigMap", pods.LIMITS_CONFIGMAP)
    assert set(installed["data"]) == set(committed["data"])
    assert installed["data"] == {"gpu-pods": "8", "cpu-pods": "64"}  # values-gpu.yaml


def test_the_settings_config_map_is_what_pods_read_first() -> None:
    settings = one(profile_objects("dev"), "ConfigMap", pods.SETTINGS_CONFIGMAP)["data"]
    assert settings["RPT_STORE"] == "s3://rpt-transfer/store"
    assert settings["AWS_ENDPOINT_URL"] == f"http://rpt-transfer-s3.{NAMESPACE}.svc:8333"
    assert settings["MLFLOW_TRACKING_URI"] == f"http://rpt-transfer-mlflow.{NAMESPACE}.svc:5000"
    given = one(profile_objects("default"), "ConfigMap", pods.SETTINGS_CONFIGMAP)["data"]
    assert given["AWS_ENDPOINT_URL"] == PROFILES["default"][1]["store"]["endpoint"]
    aws = merged(profile_values("default"), {"store": {"endpoint": ""}})
    assert "AWS_ENDPOINT_URL" not in one(objects(render(aws)), "ConfigMap", pods.SETTINGS_CONFIGMAP)["data"]
    for key in settings:
        assert not any(word in key for word in ("SECRET", "PASSWORD", "TOKEN", "ACCESS_KEY")), key


def pods_of(profile: str) -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    return [found for obj in profile_objects(profile) for found in pod_specs(obj)]


@pytest.mark.parametrize("profile", list(PROFILES))
def test_every_pod_meets_the_restricted_standard_but_the_score_pods_sandbox(profile: str) -> None:
    found = pods_of(profile)
    names = {where for where, _, _ in found}
    assert any("template score" in where for where in names) and any("mlflow" in where for where in names)
    sandboxed = {"template score": "container main", "Deployment rpt-transfer-reward": "container reward"}
    for where, pod, containers in found:
        problems = restricted_violations(where, pod, containers)
        if any(name in where for name in sandboxed):
            # exactly the sandbox's needs, each once, on the scoring container only
            needs = sorted(need for need in SCORE_SANDBOX_NEEDS for p in problems if need in p)
            assert len(problems) == len(SCORE_SANDBOX_NEEDS) and needs == sorted(SCORE_SANDBOX_NEEDS), (
                problems
            )
            container = next(c for name, c in sandboxed.items() if name in where)
            assert all(container in p for p in problems)
        else:
            assert problems == [], problems


def test_the_walk_sees_a_pod_that_breaks_the_standard() -> None:
    broken = copy.deepcopy(one(profile_objects("default"), "Deployment", "rpt-transfer-mlflow"))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    problems = [p for where, pod, cs in pod_specs(broken) for p in restricted_violations(where, pod, cs)]
    assert problems and "allowPrivilegeEscalation" in problems[0]


def test_score_pods_are_reached_by_nothing_and_reach_only_dns_store_mlflow_and_the_api_server() -> None:
    policy = one(profile_objects("default"), "NetworkPolicy", "rpt-transfer-score")["spec"]
    assert policy["podSelector"] == {"matchLabels": {pods.ROLE_LABEL: "score"}}
    assert policy["policyTypes"] == ["Ingress", "Egress"] and policy["ingress"] == []
    peers = [(rule["to"], sorted(p["port"] for p in rule["ports"])) for rule in policy["egress"]]
    dns, mlflow, *cidr_rules = peers
    assert dns[1] == [53, 53] and dns[0][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert mlflow[0][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "mlflow"
    assert sorted(rule[0][0]["ipBlock"]["cidr"] for rule in cidr_rules) == ["10.96.0.1/32", "203.0.113.0/24"]
    dev = one(profile_objects("dev"), "NetworkPolicy", "rpt-transfer-score")["spec"]["egress"]
    s3 = [rule for rule in dev if rule["ports"][0]["port"] == 8333]
    assert s3[0]["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "s3"


def test_score_pods_carry_the_label_the_policy_selects() -> None:
    template = one(profile_objects("default"), "WorkflowTemplate", templates.TEMPLATE_NAME)
    score = next(t for t in template["spec"]["templates"] if t["name"] == "score")
    assert score["metadata"]["labels"][pods.ROLE_LABEL] == "score"


def rules_of(found: list[dict[str, Any]], role: str) -> list[dict[str, Any]]:
    return one(found, "Role", role)["rules"]


def test_each_service_account_gets_only_what_its_role_does() -> None:
    found = profile_objects("everything")
    for obj in found:
        for rule in obj.get("rules", []):
            assert "*" not in rule["verbs"] and "*" not in rule["resources"], obj["metadata"]["name"]
            assert "secrets" not in rule["resources"], obj["metadata"]["name"]
    workflow = {
        (g, r): set(rule["verbs"])
        for rule in rules_of(found, "rpt-transfer-workflow")
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }
    assert workflow[("argoproj.io", "workflowtaskresults")] == {"create", "patch"}  # Argo's executor
    assert "create" in workflow[("ray.io", "rayjobs")]  # multi-node training (training.multiNode)
    single = {
        r for rule in rules_of(profile_objects("default"), "rpt-transfer-workflow") for r in rule["resources"]
    }
    assert "rayjobs" not in single  # without it, no rights on RayJobs
    assert ("argoproj.io", "workflows") not in workflow  # study pods never start Workflows
    template = one(found, "WorkflowTemplate", templates.TEMPLATE_NAME)
    assert template["spec"]["serviceAccountName"] == templates.SERVICE_ACCOUNT
    mlflow = one(found, "Deployment", "rpt-transfer-mlflow")["spec"]["template"]["spec"]
    assert mlflow["automountServiceAccountToken"] is False
    binding = one(found, "RoleBinding", "rpt-transfer-submitter")
    assert binding["subjects"] == PROFILES["everything"][1]["submitters"]


def mlflow_container(profile: str) -> tuple[dict[str, Any], dict[str, Any]]:
    spec = one(profile_objects(profile), "Deployment", "rpt-transfer-mlflow")["spec"]["template"]["spec"]
    return spec, spec["containers"][0]


def test_mlflow_proxies_artifacts_and_asks_for_a_login_with_values_from_secrets_only() -> None:
    _, main = mlflow_container("default")
    args = main["args"]
    assert "--serve-artifacts" in args and "--app-name=basic-auth" in args
    assert "--artifacts-destination=s3://rpt-transfer-studies/mlflow-artifacts" in args
    env = {e["name"]: e for e in main["env"]}
    assert env["MLFLOW_BACKEND_STORE_URI"]["valueFrom"]["secretKeyRef"] == {
        "name": "rpt-transfer-mlflow-db",
        "key": "uri",
    }
    assert env["MLFLOW_S3_ENDPOINT_URL"]["value"] == "https://s3.example.org"
    for name in ("MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY", "AWS_SECRET_ACCESS_KEY"):
        assert set(env[name]) == {"name", "valueFrom"}, name
    assert main["image"] == "ghcr.io/mlflow/mlflow:v3.18.0-full"


def test_an_external_mlflow_replaces_the_server() -> None:
    values = profile_values("default") | {
        "mlflow": {"enabled": False, "externalUri": "https://mlflow.example.org"}
    }
    values["networkPolicy"] = {**values["networkPolicy"], "mlflow": {"cidrs": ["198.51.100.7/32"]}}
    found = objects(render(values))
    assert not [o for o in found if o["metadata"]["name"] == "rpt-transfer-mlflow"]
    template = one(found, "WorkflowTemplate", templates.TEMPLATE_NAME)
    parameters = {p["name"]: p["value"] for p in template["spec"]["arguments"]["parameters"] if "value" in p}
    assert parameters["mlflow-uri"] == "https://mlflow.example.org"


def test_a_digest_pins_an_image() -> None:
    digest = "sha256:" + "a" * 64
    values = profile_values("default") | {
        "images": {"runner": {"repository": "r.example/runner", "tag": "0.1.0", "digest": digest}}
    }
    template = one(objects(render(values)), "WorkflowTemplate", templates.TEMPLATE_NAME)
    parameters = {p["name"]: p.get("value") for p in template["spec"]["arguments"]["parameters"]}
    assert parameters["runner-image"] == f"r.example/runner:0.1.0@{digest}"


BAD_VALUES = [
    ("no store URI", {}, "/store/uri"),
    ("not an S3 URI", {"store": {"uri": "file:///data"}}, "/store/uri"),
    (
        "a secret value inline",
        {"store": {"uri": "s3://rpt-transfer/store", "secretAccessKey": "abc"}},
        "secretAccessKey",
    ),
    ("a password inline", {"mlflow": {"auth": {"password": "hunter2"}}}, "password"),
    (
        "credentials in the endpoint",
        {"store": {"uri": "s3://rpt-transfer/store", "endpoint": "https://key:secret@s3.example"}},
        "/store/endpoint",
    ),
    ("a GPU profile without a GPU resource", {"gpu": {"resource": ""}}, "/gpu/resource"),
    ("a GPU resource that is no resource name", {"gpu": {"resource": "nvidia.com/gpu: 1"}}, "/gpu/resource"),
    ("an unknown sandbox minimum", {"sandbox": {"min": "off"}}, "/sandbox/min"),
    ("a claim that is no object name", {"training": {"sharedClaim": "My Claim"}}, "/training/sharedClaim"),
    ("a /dev/shm size that is no quantity", {"training": {"shmSize": "lots"}}, "/training/shmSize"),
    ("no scoring process", {"reward": {"workers": 0}}, "/reward/workers"),
    (
        "a reward service resource key the chart does not know",
        {"reward": {"resources": {"limits": {"memory": "1Gi", "gpu": 1}}}},
        "/reward/resources/limits",
    ),
    (
        "a Hub token Secret that is no object name",
        {"discovery": {"hfTokenSecret": "HF token"}},
        "/discovery/hfTokenSecret",
    ),
    ("a discovery config key the command does not know", {"discovery": {"config": {"base": []}}}, "'base'"),
    ("a discovery config with no base", {"discovery": {"config": {"bases": []}}}, "/discovery/config/bases"),
    (
        "a discovery base that is no Hub id",
        {"discovery": {"config": {"bases": [{"hub": "DeepSeek-R1"}]}}},
        "/discovery/config/bases/0/hub",
    ),
    (
        "a discovery relation the Hub does not know",
        {"discovery": {"config": {"relations": ["child"]}}},
        "/discovery/config/relations/0",
    ),
    (
        "a discovery study template that names models",
        {"discovery": {"config": {"study": {"models": {}}}}},
        "/discovery/config/study/models",
    ),
    (
        "a discover pod deadline under a minute",
        {"discovery": {"activeDeadlineSeconds": 5}},
        "/discovery/activeDeadlineSeconds",
    ),
    (
        "a malformed digest",
        {"images": {"runner": {"repository": "r", "tag": "1", "digest": "latest"}}},
        "/images/runner/digest",
    ),
]


@pytest.mark.parametrize(("what", "bad", "named"), BAD_VALUES, ids=[case[0] for case in BAD_VALUES])
def test_bad_values_fail_naming_the_value(what: str, bad: dict[str, Any], named: str) -> None:
    base = profile_values("gpu") if "GPU" in what else profile_values("default")
    values = merged(base, bad) if bad else {k: v for k, v in base.items() if k != "store"}
    with pytest.raises(helm.HelmError) as refused:
        render(values)
    assert named in str(refused.value)
    assert any(named in problem for problem in lint_problems(values))


REFUSED_AT_RENDER = [
    (
        "multi-node training without a shared volume",
        {"training": {"multiNode": True}},
        "training.sharedClaim",
    ),
    ("no API server range", {"networkPolicy": {"apiServer": {"cidrs": []}}}, "networkPolicy.apiServer.cidrs"),
    (
        "an external store without its ranges",
        {"networkPolicy": {"store": {"cidrs": []}}},
        "networkPolicy.store.cidrs",
    ),
    (
        "SQLite with two replicas",
        {"mlflow": {"replicas": 2, "backend": {"type": "sqlite"}}},
        "mlflow.replicas",
    ),
]


@pytest.mark.parametrize(
    ("what", "bad", "named"), REFUSED_AT_RENDER, ids=[case[0] for case in REFUSED_AT_RENDER]
)
def test_inconsistent_values_fail_with_one_line_naming_the_value(
    what: str, bad: dict[str, Any], named: str
) -> None:
    with pytest.raises(helm.HelmError) as refused:
        render(merged(profile_values("default"), bad))
    message = str(refused.value)
    assert named in message and "\n" not in message.strip()


def test_the_default_pod_sizes_are_the_templates_own() -> None:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())["podSizes"]
    assert {kind: pods.Size(**size) for kind, size in defaults.items()} == pods.SIZES


def test_pod_sizes_set_the_requests_of_the_pods_of_that_size() -> None:
    values = merged(profile_values("gpu"), {"podSizes": {"gpu": {"cpu": "30", "memory": "240Gi"}}})
    template = one(objects(render(values)), "WorkflowTemplate", templates.TEMPLATE_NAME)
    resized = {
        t["name"]: t["container"]["resources"]
        for t in template["spec"]["templates"]
        if "container" in t and t["metadata"]["labels"][pods.SIZE_LABEL] == "gpu"
    }
    assert set(resized) == {"train-gpu", "generate-gpu"}
    assert all(
        r == {"requests": {"cpu": "30", "memory": "240Gi"}, "limits": {"memory": "240Gi"}}
        for r in resized.values()
    )
    score = next(t for t in template["spec"]["templates"] if t["name"] == "score")
    assert score["container"]["resources"]["requests"] == {"cpu": "2", "memory": "8Gi"}


# ---- the reward service and the train pods that reach it ----

REWARD = "rpt-transfer-reward"


def test_the_reward_service_scores_in_the_sandbox_with_no_credentials_at_all() -> None:
    found = profile_objects("default")
    values = merged(yaml.safe_load((CHART / "values.yaml").read_text()), profile_values("default"))
    deployment = one(found, "Deployment", REWARD)
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    # no Secret, no token: nothing in the pod could give model-written code a credential
    assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == REWARD
    assert one(found, "ServiceAccount", REWARD)["automountServiceAccountToken"] is False
    assert "envFrom" not in container and all(set(e) == {"name", "value"} for e in container["env"])
    assert "volumes" not in pod and "volumeMounts" not in container
    # the score pods' sandbox settings, exactly (pods.py), and its minimum from sandbox.min
    assert container["securityContext"] == argo_render.to_dict(pods.sandbox_security())
    assert {"hostUsers": pod["hostUsers"]} == json.loads(pods.SANDBOX_POD_PATCH)
    assert pod["securityContext"] == argo_render.to_dict(pods.RESTRICTED_POD)
    assert container["env"] == [{"name": "RPT_SANDBOX_MIN", "value": "userns"}]
    assert container["image"] == "rpt-transfer/runner:0.1.0" and container["command"] == ["rpt-transfer"]
    params = parse_cli(container["args"])
    assert (params["host"], params["port"], params["workers"], params["sandbox_min"]) == (
        "0.0.0.0",
        8000,
        4,
        "userns",
    )
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert container["resources"] == values["reward"]["resources"] and deployment["spec"]["replicas"] == 1
    service = one(found, "Service", REWARD)["spec"]
    assert service["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["ports"] == [{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}]
    gpu = one(profile_objects("gpu"), "Deployment", REWARD)["spec"]
    assert gpu["replicas"] == 2 and "--workers=16" in gpu["template"]["spec"]["containers"][0]["args"]


def installed_rayjob(profile: str) -> dict[str, Any]:
    """The RayJob the installed template's train-ray-job would create, its parameters at their installed
    defaults, substituted as Argo substitutes (tests/argo/argo_expr.py)."""
    template = one(profile_objects(profile), "WorkflowTemplate", templates.TEMPLATE_NAME)
    params = {
        p["name"]: p.get("value", "s3://b/spec.yaml") for p in template["spec"]["arguments"]["parameters"]
    }
    job = next(t for t in template["spec"]["templates"] if t["name"] == "train-ray-job")
    given = {p["name"]: p["value"] for p in job["inputs"]["parameters"] if "value" in p}
    given |= {"plan": "s3://b/store/studies/s/plans/p.json", "part": "train/0", "gpus": "8", "nodes": "2"}
    given["gpu-resource"] = params["gpu-resource"]
    globals_ = {f"workflow.parameters.{k}": v for k, v in params.items()} | {"workflow.name": "s-x7k2p"}
    done = substitute_json(job, globals_, {f"inputs.parameters.{k}": v for k, v in given.items()})
    return yaml.safe_load(done["resource"]["manifest"])


def test_only_train_pods_reach_the_reward_service_and_it_reaches_nothing() -> None:
    found = profile_objects("default")
    policy = one(found, "NetworkPolicy", REWARD)["spec"]
    labels = one(found, "Deployment", REWARD)["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["policyTypes"] == ["Ingress", "Egress"] and policy["egress"] == []  # nothing out, not DNS
    admitted = {pods.ROLE_LABEL: "train"}
    assert policy["ingress"] == [
        {"from": [{"podSelector": {"matchLabels": admitted}}], "ports": [{"protocol": "TCP", "port": 8000}]}
    ]
    # the pods that send rollouts carry the label: train pods, and every Ray pod of a multi-node run
    template = one(found, "WorkflowTemplate", templates.TEMPLATE_NAME)
    by_name = {t["name"]: t for t in template["spec"]["templates"]}
    for name in ("train-gpu", "train-cpu", "train-ray-job"):
        assert by_name[name]["metadata"]["labels"].items() >= admitted.items(), name
    rayjob = installed_rayjob("default")
    cluster = rayjob["spec"]["rayClusterSpec"]
    for ray_pod in (
        cluster["headGroupSpec"]["template"],
        *(g["template"] for g in cluster["workerGroupSpecs"]),
    ):
        assert ray_pod["metadata"]["labels"].items() >= admitted.items()
    # and the others do not: a score pod (model-written code too) cannot reach it
    assert by_name["score"]["metadata"]["labels"][pods.ROLE_LABEL] == "score"


def test_train_pods_find_the_reward_service_in_the_settings() -> None:
    settings = one(profile_objects("default"), "ConfigMap", pods.SETTINGS_CONFIGMAP)["data"]
    assert settings["RPT_REWARD_URL"] == f"http://{REWARD}.{NAMESPACE}.svc:8000/get_reward"
    off = objects(render(merged(profile_values("default"), {"reward": {"enabled": False}})))
    assert not [o for o in off if o["metadata"]["name"] == REWARD]
    assert "RPT_REWARD_URL" not in one(off, "ConfigMap", pods.SETTINGS_CONFIGMAP)["data"]


def test_a_multi_node_run_gets_the_shared_claim_and_the_sizes_of_the_values() -> None:
    if reason := schemas_available():
        pytest.skip(reason)
    rayjob = installed_rayjob("everything")  # multiNode, sharedClaim, shmSize 32Gi, podSizes.gpu 30/240Gi
    assert rayjob_errors(rayjob) == []
    for where, pod, containers in pod_specs(rayjob):
        assert restricted_violations(where, pod, containers) == [], where
    cluster = rayjob["spec"]["rayClusterSpec"]
    for ray_pod in (
        cluster["headGroupSpec"]["template"],
        *(g["template"] for g in cluster["workerGroupSpecs"]),
    ):
        spec = ray_pod["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["train-work"]["persistentVolumeClaim"] == {"claimName": "rpt-transfer-train"}
        assert volumes["dshm"]["emptyDir"]["sizeLimit"] == "32Gi"
        assert spec["containers"][0]["resources"]["requests"] == {
            "cpu": "30",
            "memory": "240Gi",
            "nvidia.com/gpu": "8",
        }
    template = one(profile_objects("everything"), "WorkflowTemplate", templates.TEMPLATE_NAME)
    train_gpu = next(t for t in template["spec"]["templates"] if t["name"] == "train-gpu")
    assert train_gpu["volumes"][0]["emptyDir"]["sizeLimit"] == "32Gi"  # one-node runs too
    generate_gpu = next(t for t in template["spec"]["templates"] if t["name"] == "generate-gpu")
    assert generate_gpu["volumes"][0]["emptyDir"]["sizeLimit"] == pods.SHM_SIZE  # not a train pod
