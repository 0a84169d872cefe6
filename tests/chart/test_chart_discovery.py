"""The chart's scheduled discovery (templates/discovery.yaml): `rpt-transfer discover --submit` every day.

Rendered offline with discovery switched on (the "everything" profile) and checked against the parts it
drives: the CronWorkflow against Argo's schema, its config against the command's own loader and the study
spec, its argv against the real CLI, and its Role against the requests `submit_study` makes of the Kubernetes
API, played by tests/argo/k8s_double.py with every other operation forbidden.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from chart_render import (
    CHART,
    NAMESPACE,
    merged,
    objects,
    one,
    parse_cli,
    profile_objects,
    profile_values,
    render,
)
from k8s_checks import K8S_VERSIONS, object_errors, schemas_available

from argo.k8s_double import NAMESPACE as DOUBLE_NAMESPACE
from argo.k8s_double import (  # noqa: F401 - fixtures
    K8sDouble,
    double_fixture,
    kube_fixture,
    study_file_fixture,
)
from rpt_transfer import benchmarks
from rpt_transfer.argo import pods
from rpt_transfer.argo.client import TEMPLATE_NAME
from rpt_transfer.argo.submit import submit_study
from rpt_transfer.discovery.config import load_config
from rpt_transfer.errors import EXIT_TRANSIENT
from rpt_transfer.spec import parse_study

CRON, NAME = "rpt-transfer-discover", "rpt-transfer-discovery"
CONFIG_KEY = "discovery.yaml"
ON: dict[str, Any] = profile_values("everything")
assert ON["discovery"]["enabled"] is True


def chart_defaults() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def with_discovery(**discovery: Any) -> list[dict[str, Any]]:
    """The objects of the "everything" profile with more `discovery` values."""
    return objects(render(merged(ON, {"discovery": discovery})))


def pod_of(found: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The discover template of the CronWorkflow and its container."""
    (template,) = one(found, "CronWorkflow", CRON)["spec"]["workflowSpec"]["templates"]
    return template, template["container"]


def config_text(found: list[dict[str, Any]]) -> str:
    return one(found, "ConfigMap", NAME)["data"][CONFIG_KEY]


def test_discovery_is_off_by_default_and_all_there_when_switched_on() -> None:
    made = {(kind, NAME) for kind in ("ServiceAccount", "Role", "RoleBinding", "ConfigMap")} | {
        ("CronWorkflow", CRON)
    }
    on = {(o["kind"], o["metadata"]["name"]) for o in profile_objects("everything")}
    off = {(o["kind"], o["metadata"]["name"]) for o in profile_objects("default")}
    assert made <= on and not made & off
    assert chart_defaults()["discovery"]["enabled"] is False


@pytest.mark.parametrize("k8s", (K8S_VERSIONS[0], K8S_VERSIONS[-1]))
def test_the_discovery_objects_validate_with_every_option_set(k8s: str) -> None:
    if reason := schemas_available():
        pytest.skip(reason)
    found = with_discovery(
        schedules=["0 4 * * *", "30 16 * * 1-5"],
        timezone="Europe/Berlin",
        hfTokenSecret="rpt-transfer-hf",
        args=["--argo-server", "https://argo.example.org:2746"],
    )
    ours = [o for o in found if o["metadata"]["name"] in (NAME, CRON)]
    assert len(ours) == 5
    assert [error for obj in ours for error in object_errors(obj, k8s)] == []  # Argo's schema, unknown keys


def test_the_cron_workflow_is_argo_v4s_form() -> None:
    cron = one(profile_objects("everything"), "CronWorkflow", CRON)["spec"]
    assert "schedule" not in cron and cron["schedules"] == ["0 4 * * *"] and cron["timezone"] == "UTC"
    assert cron["concurrencyPolicy"] == "Forbid" and cron["startingDeadlineSeconds"] == 3600
    assert cron["workflowSpec"]["serviceAccountName"] == NAME
    assert cron["workflowSpec"]["archiveLogs"] is True  # the pod goes on success; its log of decisions stays
    unarchived = objects(render(merged(ON, {"artifactRepository": {"archiveLogs": False}})))
    assert "archiveLogs" not in one(unarchived, "CronWorkflow", CRON)["spec"]["workflowSpec"]


def test_the_pod_reads_the_config_map_at_the_path_it_is_given() -> None:
    found = profile_objects("everything")
    template, container = pod_of(found)
    assert container["command"] == ["rpt-transfer"]
    assert container["args"][:2] == ["discover", "--submit"]
    params = parse_cli(container["args"])  # the real `discover`: every flag exists
    assert params["submit"] is True
    config = Path(params["config"])
    (mount,) = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == config.parent]
    assert mount["readOnly"] is True and str(config) == "/etc/rpt-transfer/discovery/discovery.yaml"
    volume = next(v for v in template["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == NAME and config.name in one(found, "ConfigMap", NAME)["data"]


def test_extra_args_follow_and_parse_with_the_real_cli() -> None:
    _, container = pod_of(with_discovery(args=["--argo-server", "https://argo.example.org:2746"]))
    assert container["args"][-2:] == ["--argo-server", "https://argo.example.org:2746"]
    assert parse_cli(container["args"])["argo_server"] == "https://argo.example.org:2746"


def test_the_config_map_holds_the_values_config_as_it_is() -> None:
    default = chart_defaults()["discovery"]["config"]
    assert yaml.safe_load(config_text(profile_objects("everything"))) == default
    bases = [{"hub": "Qwen/Qwen3-8B", "revision": "b968826d9c46dd6066d109eabc6255188de91218"}]
    changed = with_discovery(config={"bases": bases, "max_params_b": None, "study": {"limit": 8}})
    expected = {k: v for k, v in default.items() if k != "max_params_b"}
    expected |= {"bases": bases, "study": {**default["study"], "limit": 8}}
    assert yaml.safe_load(config_text(changed)) == expected  # lists replace, maps merge, null drops


def test_the_default_config_loads_with_the_discover_commands_loader(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_KEY
    path.write_text(config_text(profile_objects("everything")), encoding="utf-8")
    config = load_config(path)  # strict: unknown keys, and the study template checked as a study
    assert [base.hub for base in config.bases] == [
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B",
        "Qwen/Qwen3-4B",
        "Qwen/Qwen2.5-7B-Instruct",
        "meta-llama/Llama-3.1-8B-Instruct",
    ]
    assert config.relations == ["finetune"] and config.max_params_b == 15
    assert config.template()["resources"]["backend"] == "vllm"


def test_the_charts_default_config_is_the_repositorys_discovery_config(tmp_path: Path) -> None:
    """The CronWorkflow and `rpt-transfer discover --config studies/discovery.yaml` follow the same bases at the
    same commits with the same study settings, so their studies share every base job."""
    path = tmp_path / CONFIG_KEY
    path.write_text(config_text(profile_objects("everything")), encoding="utf-8")
    repository = load_config(Path(__file__).parents[2] / "studies" / "discovery.yaml")
    assert load_config(path).model_dump() == repository.model_dump()


def test_the_default_study_plans_in_a_pod_without_local_benchmark_copies() -> None:
    """The pod has no RPT_BENCHMARK_DATA: every benchmark must load from the Hub (USACO cannot, so it is out);
    the rest is the paper's 16."""
    template = chart_defaults()["discovery"]["config"]["study"]
    study = parse_study(
        yaml.safe_dump(
            {
                **template,
                "study": "discovered-check",
                "kind": "observational",
                "models": {
                    "b": {"hub": "o/base", "revision": "main"},
                    "r": {"hub": "o/rpt", "revision": "main"},
                },
                "pairs": [{"name": "p", "rpt": "r", "base": "b", "domains": ["math"], "algorithm": "rl"}],
            }
        )
    )
    chosen = benchmarks.expand(study.benchmarks)
    assert all(bench.source.hub_datasets() for bench in chosen), [b.name for b in chosen]
    paper = {bench.name for bench in benchmarks.expand(["paper-16"])}
    assert paper - {bench.name for bench in chosen} == {"usaco"}


def test_the_hub_token_comes_from_the_named_secret_only_when_one_is_named() -> None:
    template, container = pod_of(profile_objects("everything"))
    env = {e["name"]: e for e in container["env"]}
    assert "HF_TOKEN" not in env and all("valueFrom" not in e for e in container["env"])
    assert env["HF_HUB_DISABLE_TELEMETRY"]["value"] == "1"
    # the Hub's cache on a volume of the pod's own, bounded
    cache = next(
        m for m in container["volumeMounts"] if env["HF_HOME"]["value"].startswith(m["mountPath"] + "/")
    )
    assert next(v for v in template["volumes"] if v["name"] == cache["name"])["emptyDir"]["sizeLimit"]
    _, named = pod_of(with_discovery(hfTokenSecret="rpt-transfer-hf"))
    secret_refs = [e for e in named["env"] if "valueFrom" in e]
    assert secret_refs == [
        {
            "name": "HF_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "rpt-transfer-hf", "key": "HF_TOKEN", "optional": True}},
        }
    ]
    # the store's and MLflow's addresses and credentials, as every study pod has them
    assert named["envFrom"] == [
        {"configMapRef": {"name": pods.SETTINGS_CONFIGMAP, "optional": True}},
        {"secretRef": {"name": "rpt-transfer-credentials", "optional": True}},
    ]


def granted(found: list[dict[str, Any]]) -> set[tuple[str, str, str, tuple[str, ...]]]:
    """(api group, resource, verb, resource names) of every rule of the discovery Role."""
    return {
        (group, resource, verb, tuple(rule.get("resourceNames", ())))
        for rule in one(found, "Role", NAME)["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_the_discovery_role_creates_workflows_and_nothing_more() -> None:
    found = profile_objects("everything")
    assert granted(found) == {
        ("argoproj.io", "workflows", "create", ()),  # the dry run and the Workflow
        ("argoproj.io", "workflows", "list", ()),  # a running Workflow of the study refuses a second
        ("argoproj.io", "workflowtemplates", "get", (TEMPLATE_NAME,)),  # the template is there
        ("argoproj.io", "workflowtaskresults", "create", ()),  # its own pod's Argo executor
        ("argoproj.io", "workflowtaskresults", "patch", ()),
    }
    binding = one(found, "RoleBinding", NAME)
    assert binding["roleRef"]["name"] == NAME
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]


def test_submitting_a_study_needs_exactly_the_roles_workflow_rights(
    double: K8sDouble, kube: Path, study_file: Path
) -> None:
    """What `discover --submit` does once it has a study (`submit_study`), against the API double with every
    operation on Workflows and WorkflowTemplates that the Role does not grant answered 403."""
    rights = {(verb, resource) for _, resource, verb, _ in granted(profile_objects("everything"))}
    for verb in ("get", "list", "create", "patch"):
        for resource in ("workflows", "workflowtemplates"):
            if (verb, resource) not in rights:
                double.forbid(verb, resource)
    said: list[str] = []
    submitted = submit_study(
        study_file,
        namespace=DOUBLE_NAMESPACE,
        argo_server=None,
        score_chunk=None,
        say=said.append,
        warn=said.append,
    )
    assert submitted.name in {name for _, name in double.workflows}
    asked = set()
    for seen in double.seen:
        assert seen.status < 400, (seen.method, seen.path)
        _, _, rest = urlsplit(seen.path).path.partition(f"/namespaces/{DOUBLE_NAMESPACE}/")
        resource, _, name = rest.partition("/")
        verb = {"GET": "get" if name else "list", "POST": "create", "PATCH": "patch"}[seen.method]
        asked.add((verb, resource))
        assert resource != "workflowtemplates" or name == TEMPLATE_NAME  # the Role names that one only
    assert asked == rights - {("create", "workflowtaskresults"), ("patch", "workflowtaskresults")}


def test_the_pod_retries_as_study_pods_do_and_its_tries_end_within_the_day() -> None:
    template, container = pod_of(profile_objects("everything"))
    retry = template["retryStrategy"]
    # exit 75 and evictions, never exit 2 nor a pod its deadline stopped (tests/argo/test_templates.py)
    assert retry["expression"] == pods.RETRY_EXPRESSION and str(EXIT_TRANSIENT) in pods.RETRY_EXPRESSION
    first_wait = int(retry["backoff"]["duration"].removesuffix("m")) * 60
    assert first_wait > 300  # the Hub's rate-limit window is 5 minutes
    deadline, tries = int(template["activeDeadlineSeconds"]), 1 + int(retry["limit"])
    assert deadline == chart_defaults()["discovery"]["activeDeadlineSeconds"]
    waits = sum(min(first_wait * 2**i, 1800) for i in range(tries - 1))
    assert tries * deadline + waits < 24 * 3600  # before the next daily run, which Forbid would skip
    small = chart_defaults()["podSizes"]["small"]
    assert container["resources"] == {
        "requests": {"cpu": small["cpu"], "memory": small["memory"]},
        "limits": {"memory": small["memory"]},
    }


def test_no_network_policy_selects_the_discover_pod() -> None:
    """It must reach the Hub on the internet; the chart has no default deny, and none of its policies match
    the pod's labels (docs/helm-chart.md says so)."""
    found = profile_objects("everything")
    template, _ = pod_of(found)
    labels = template["metadata"]["labels"]
    assert labels[pods.ROLE_LABEL] == "discover"
    policies = [o for o in found if o["kind"] == "NetworkPolicy"]
    assert policies
    for policy in policies:
        selector = policy["spec"]["podSelector"]
        assert selector.get("matchLabels") and "matchExpressions" not in selector, policy["metadata"]["name"]
        assert not selector["matchLabels"].items() <= labels.items(), policy["metadata"]["name"]
