"""The generated Argo objects: valid for Argo v4.1, committed as generated, and runnable by the project's CLI.

Schema checks read the vendored Argo schema in ../shared/data/schemas (skipped, saying so, without it). It
has no `additionalProperties: false`, so an unknown key is looked for by walking each object against the
schema's `properties`, and the keys Argo v4 removed are looked for by name.
"""

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import typer
from kubernetes.client import V1ConfigMap

from chart.k8s_checks import ARGO_SCHEMA, ARGO_SCHEMA_MISSING, unknown_keys, validator
from conftest import REPO
from rpt_transfer import cli
from rpt_transfer.argo import pods, render, templates
from rpt_transfer.argo.params import PARAMS, defaults, markdown_table

KINDS = {
    "WorkflowTemplate": "io.argoproj.workflow.v1alpha1.WorkflowTemplate",
    "Workflow": "io.argoproj.workflow.v1alpha1.Workflow",
}
ARGO_OBJECTS = [path for path, build in templates.OBJECTS.items() if build is not templates.limits_config_map]
PLACEHOLDER = re.compile(r"\{\{([^{}]+)\}\}")
SAMPLES = {
    "workflow.name": "paper-observational-x7k2p",
    "workflow.status": "Succeeded",
    "inputs.parameters.plan": "s3://rpt-transfer/studies/paper/plans/3f9a1c2e0b7d4a65.json",
    "inputs.parameters.part": "generate/0",
    "inputs.parameters.gpus": "1",
    "inputs.parameters.gpu-resource": "nvidia.com/gpu",
}
"""Sample values of the placeholders a pod's command and patch hold, besides the workflow parameters."""
DEFAULTS = defaults(study="s3://rpt-transfer/specs/paper.yaml")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    if ARGO_SCHEMA_MISSING:
        pytest.skip(ARGO_SCHEMA_MISSING)
    return json.loads(ARGO_SCHEMA.read_text())


def built(path: str) -> dict[str, Any]:
    return render.to_dict(templates.OBJECTS[path]())


def template_spec() -> dict[str, Any]:
    return built(f"{templates.TEMPLATE_NAME}.yaml")["spec"]


def leaf_templates() -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in template_spec()["templates"] if "container" in t}


def fill(text: str, **more: str) -> str:
    values = {f"workflow.parameters.{k}": v for k, v in DEFAULTS.items()}
    values |= SAMPLES | more

    def value(match: re.Match) -> str:
        assert match[1] in values, f"no sample value for {{{{{match[1]}}}}}"
        return values[match[1]]

    return PLACEHOLDER.sub(value, text)


def key_paths(value: Any, path: str = "") -> list[str]:
    if isinstance(value, dict):
        return [
            p for key, item in value.items() for p in (f"{path}.{key}", *key_paths(item, f"{path}.{key}"))
        ]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in key_paths(item, f"{path}[{index}]")]
    return []


@pytest.mark.parametrize("path", ARGO_OBJECTS)
def test_each_object_validates_against_its_kinds_schema(schema: dict[str, Any], path: str) -> None:
    obj = built(path)
    errors = sorted(validator(schema, KINDS[obj["kind"]]).iter_errors(obj), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


@pytest.mark.parametrize("path", ARGO_OBJECTS)
def test_each_object_has_no_key_its_schema_does_not_name(schema: dict[str, Any], path: str) -> None:
    obj = built(path)
    assert unknown_keys(schema, obj, schema["definitions"][KINDS[obj["kind"]]]) == []


def test_the_unknown_key_check_finds_a_misspelt_or_removed_key(schema: dict[str, Any]) -> None:
    obj = built(f"{templates.TEMPLATE_NAME}.yaml")
    obj["spec"]["templates"][4]["retryStrategy"]["backof"] = {}
    obj["spec"]["templates"][4]["synchronization"]["semaphore"] = {"configMapKeyRef": {"key": "gpu-pods"}}
    found = unknown_keys(schema, obj, schema["definitions"][KINDS["WorkflowTemplate"]])
    assert found == [
        ".spec.templates[4].retryStrategy.backof",
        ".spec.templates[4].synchronization.semaphore",
    ]


def test_the_limits_config_map_is_a_config_map(schema: dict[str, Any]) -> None:
    obj = templates.limits_config_map()
    assert set(obj) <= set(V1ConfigMap.attribute_map.values()) and (obj["apiVersion"], obj["kind"]) == (
        "v1",
        "ConfigMap",
    )
    meta = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    assert list(validator(schema, meta).iter_errors(obj["metadata"])) == []
    assert unknown_keys(schema, obj["metadata"], schema["definitions"][meta]) == []
    assert obj["data"] and all(isinstance(v, str) and v.isdigit() for v in obj["data"].values())
    assert obj["metadata"]["name"] == pods.LIMITS_CONFIGMAP
    assert set(obj["data"]) == {DEFAULTS["gpu-semaphore-key"], DEFAULTS["cpu-semaphore-key"]}


@pytest.mark.parametrize("path", list(templates.OBJECTS))
def test_no_key_argo_v4_removed(path: str) -> None:
    obj = built(path)
    keys = key_paths(obj)
    assert not [k for k in keys if k.endswith((".synchronization.semaphore", ".synchronization.mutex"))]
    assert not [k for k in keys if k.endswith(".podPriority")]
    if obj["kind"] == "CronWorkflow":
        assert "schedule" not in obj["spec"]


@pytest.mark.parametrize("path", list(templates.OBJECTS))
def test_committed_yaml_is_what_the_code_generates(path: str) -> None:
    file, text = render.WORKFLOWS_DIR / path, render.rendered(templates.OBJECTS)[path]
    if os.environ.get("RPT_REGENERATE"):
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)
    assert file.is_file() and file.read_text() == text, (
        f"workflows/{path} is stale: run `make workflows` (or RPT_REGENERATE=1 pytest tests/argo) and commit it"
    )


def test_check_names_a_stale_file_and_write_mends_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roots = ["--root", str(tmp_path / "workflows"), "--chart-root", str(tmp_path / "chart")]
    assert templates.main(["--write", *roots]) == 0
    assert templates.main(["--check", *roots]) == 0
    for edited in (
        tmp_path / "workflows" / "examples" / "study.yaml",
        tmp_path / "chart" / "rpt-transfer-study.yaml",
    ):
        edited.write_text("edited by hand\n")
        capsys.readouterr()
        assert templates.main(["--check", *roots]) == 1
        assert f"stale: {edited}" in capsys.readouterr().err
        assert templates.main(["--write", *roots]) == 0
        assert capsys.readouterr().out.strip() == f"wrote {edited}"


def test_the_charts_copy_is_the_committed_template() -> None:
    chart_copy = render.CHART_FILES_DIR / f"{templates.TEMPLATE_NAME}.yaml"
    assert chart_copy.read_text() == (render.WORKFLOWS_DIR / f"{templates.TEMPLATE_NAME}.yaml").read_text(), (
        f"{chart_copy} is stale: run `make workflows` and commit it"
    )


def parse(argv: list[str]) -> Any:
    """Parse `rpt-transfer ARGV` as the CLI would, without running it: a wrong option name fails here.

    Typer may bundle its own copy of click, so the command's own classes are used, never `click`'s.
    """
    command = typer.main.get_command(cli.app)
    context = command.context_class(command, info_name="rpt-transfer")
    name, args = "rpt-transfer", list(argv)
    while hasattr(command, "resolve_command"):  # a group: the next word names a subcommand
        name, found, args = command.resolve_command(context, args)
        assert found is not None, argv
        command, context = found, found.context_class(found, info_name=name, parent=context)
    return command.make_context(name, args, parent=context.parent)


CHECK = "train-ray-check"
"""The one container that runs no `rpt-transfer`: a shell test of one parameter (test_train_ray.py)."""


@pytest.mark.parametrize("name", sorted(set(leaf_templates()) - {CHECK}))
def test_each_pod_command_parses_with_the_projects_cli(name: str) -> None:
    container = leaf_templates()[name]["container"]
    assert container["command"] == ["rpt-transfer"]
    argv = [fill(arg) for arg in container["args"]]
    context = parse(argv)
    assert context.params, argv
    if name == "prepare":
        assert context.params["score_chunk"] == 4 and str(context.params["outputs"]) == templates.OUTPUTS_DIR
        assert context.params["gpu_resource"] == "nvidia.com/gpu"
    elif name == "exit-handler":
        for status in ("Succeeded", "Failed", "Error"):
            parse([fill(arg, **{"workflow.status": status}) for arg in container["args"]])
    else:
        assert argv[:2] == ["job", "run"] and context.params["part"] in ("generate/0", "aggregate")


def test_the_parse_check_refuses_a_wrong_option() -> None:
    with pytest.raises(cli.USAGE_ERRORS, match="No such option"):
        parse(["job", "run", "--plan", "p", "--parts", "generate/0"])


def test_the_contracts_steps_in_order() -> None:
    spec = template_spec()
    by_name = {t["name"]: t for t in spec["templates"]}
    assert spec["entrypoint"] == "study" and spec["onExit"] == "exit-handler"
    stages = [[step["name"] for step in group] for group in by_name["study"]["steps"]]
    assert stages == [
        ["prepare"],
        ["pretrain"],
        ["train-gpu", "train-cpu", "train-ray"],
        ["models"],
        ["aggregate"],
    ]
    train = {step["name"]: step for step in by_name["study"]["steps"][2]}
    assert {name: step["when"] for name, step in train.items()} == {
        "train-gpu": "{{item.nodes}} == 1 && {{item.gpus}} > 0",
        "train-cpu": "{{item.nodes}} == 1 && {{item.gpus}} == 0",
        "train-ray": "{{item.nodes}} > 1",
    }  # exactly one holds for any item of 1 or more nodes
    assert [[step["template"] for step in group] for group in by_name["train-ray"]["steps"]] == [
        ["train-ray-check"],
        ["train-ray-job"],
    ]
    outputs = by_name["prepare"]["outputs"]["parameters"]
    assert {p["name"]: p["valueFrom"]["path"] for p in outputs} == {
        "plan": "/tmp/outputs/plan",
        "pretrain": "/tmp/outputs/pretrain.json",
        "train": "/tmp/outputs/train.json",
        "models": "/tmp/outputs/models.json",
        "gpu-resource": "/tmp/outputs/gpu-resource",  # checked by prepare, then given to the GPU pods
    }
    gpu_pods = [
        by_name["study"]["steps"][2][0],
        by_name["study"]["steps"][2][2],
        by_name["study"]["steps"][3][0],
    ]
    for step in gpu_pods:  # train-gpu, train-ray and models (to generate-gpu): never the raw parameter
        given = {p["name"]: p["value"] for p in step["arguments"]["parameters"]}
        assert given["gpu-resource"] == "{{steps.prepare.outputs.parameters.gpu-resource}}"
    assert "--gpu-resource" in by_name["prepare"]["container"]["args"]
    models = by_name["study"]["steps"][3][0]
    assert (
        models["template"] == "model" and models["withParam"] == "{{steps.prepare.outputs.parameters.models}}"
    )
    generate, score = by_name["model"]["steps"]
    assert [(s["template"], s["when"]) for s in generate] == [
        ("generate-gpu", "{{inputs.parameters.gpus}} > 0"),
        ("generate-cpu", "{{inputs.parameters.gpus}} == 0"),
    ]
    assert score[0]["template"] == "score" and score[0]["withParam"] == "{{inputs.parameters.score}}"
    assert by_name["exit-handler"]["container"]["args"] == [
        "track", "close", "{{workflow.parameters.study}}", "--status", "{{workflow.status}}",
        "--workflow", "{{workflow.name}}",
    ]  # fmt: skip
    assert spec["serviceAccountName"] == "rpt-transfer-workflow"
    assert spec["workflowMetadata"]["labels"] == {"app.kubernetes.io/part-of": "rpt-transfer"}
    assert spec["podGC"] == {"strategy": "OnPodSuccess", "deleteDelayDuration": "10m"}
    assert set(spec["ttlStrategy"]) == {"secondsAfterSuccess", "secondsAfterFailure"}


def test_every_parameter_is_declared_and_used() -> None:
    spec = template_spec()
    declared = [p["name"] for p in spec["arguments"]["parameters"]]
    assert declared == [p.name for p in PARAMS] and len(set(declared)) == len(declared)
    text = json.dumps(spec["templates"])
    used = set(re.findall(r"\{\{workflow\.parameters\.([a-z-]+)\}\}", text))
    assert used == set(declared)
    assert all(value is not None for name, value in ((p.name, p.default) for p in PARAMS) if name != "study")


def test_every_pod_has_its_role_credentials_addresses_deadline_and_retries() -> None:
    for name, template in leaf_templates().items():
        container = template["container"]
        assert template["metadata"]["labels"][pods.ROLE_LABEL], name
        if name == CHECK:  # reads one parameter: no credentials, no store (test_train_ray.py)
            assert (
                "envFrom" not in container
                and template["retryStrategy"]["expression"] == pods.RETRY_EXPRESSION
            )
            continue
        assert container["envFrom"] == [
            {"configMapRef": {"name": "rpt-transfer-settings", "optional": True}},
            {"secretRef": {"name": "{{workflow.parameters.credentials-secret}}", "optional": True}},
        ], name
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False and security["capabilities"] == {"drop": ["ALL"]}
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["RPT_STORE"] == "{{workflow.parameters.store}}"
        assert env["MLFLOW_TRACKING_URI"] == "{{workflow.parameters.mlflow-uri}}"
        deadline = template["activeDeadlineSeconds"]
        assert (
            deadline == "900"
            if name == "exit-handler"
            else re.fullmatch(r"\{\{workflow\.parameters\.[a-z]+-deadline\}\}", deadline)
        )
        retry = template["retryStrategy"]
        assert (
            retry["limit"] == "{{workflow.parameters.retries}}"
            and retry["expression"] == pods.RETRY_EXPRESSION
        )
        assert all(isinstance(v, str) for v in retry["backoff"].values())
        assert "retryPolicy" not in retry  # with only an expression Argo's policy is Always: Error and Failed


@pytest.mark.parametrize("name", ["generate-gpu", "train-gpu"])
def test_gpu_pods_get_gpus_gpu_nodes_shm_and_the_semaphore(schema: dict[str, Any], name: str) -> None:
    template = leaf_templates()[name]
    patch = json.loads(fill(template["podSpecPatch"]))
    assert set(patch) == {"containers"}  # the schema has no PodSpec
    # a patch's container is partial (no image): its resources are validated whole, its keys checked
    assert (
        unknown_keys(
            schema, patch["containers"], {"items": schema["definitions"]["io.k8s.api.core.v1.Container"]}
        )
        == []
    )
    (main,) = patch["containers"]
    definition = "io.k8s.api.core.v1.ResourceRequirements"
    assert not list(validator(schema, definition).iter_errors(main["resources"]))
    assert main == {
        "name": "main",
        "resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"nvidia.com/gpu": "1"}},
    }
    assert template["nodeSelector"] == {
        "{{workflow.parameters.gpu-node-label}}": "{{workflow.parameters.gpu-node-label-value}}"
    }
    assert template["tolerations"] == [
        {"key": "{{workflow.parameters.gpu-toleration-key}}", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert (
        DEFAULTS["gpu-node-label"] == "nvidia.com/gpu.present" and DEFAULTS["gpu-node-label-value"] == "true"
    )
    assert DEFAULTS["gpu-toleration-key"] == "nvidia.com/gpu"
    shm = {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}}
    mounts = [{"name": "dshm", "mountPath": "/dev/shm"}]
    env = {e["name"]: e["value"] for e in template["container"]["env"]}
    if name == "train-gpu":  # OpenRLHF's working folder on the node's disk, RPT_TRAIN_WORKDIR
        assert template["volumes"] == [shm, {"name": "train-work", "emptyDir": {}}]
        assert template["container"]["volumeMounts"] == [
            *mounts,
            {"name": "train-work", "mountPath": "/train-work"},
        ]
        assert env["RPT_TRAIN_WORKDIR"] == "/train-work"
    else:
        assert template["volumes"] == [shm] and template["container"]["volumeMounts"] == mounts
        assert "RPT_TRAIN_WORKDIR" not in env
    image = "evaluator" if name == "generate-gpu" else "trainer"
    assert template["container"]["image"] == f"{{{{workflow.parameters.{image}-image}}}}"
    ref = {"name": "rpt-transfer-limits", "key": "{{workflow.parameters.gpu-semaphore-key}}"}
    assert template["synchronization"] == {"semaphores": [{"configMapKeyRef": ref}]}


def quantity(text: str) -> float:
    """A Kubernetes quantity of the forms the templates use (`500m`, `4`, `16Gi`), in units or bytes."""
    units = {"m": 1e-3, "Mi": 2**20, "Gi": 2**30, "": 1}
    number, unit = re.fullmatch(r"(\d+)(m|Mi|Gi|)", text).groups()  # type: ignore[union-attr]
    return int(number) * units[unit]


EXPECTED_SIZES = {
    "prepare": "small", "aggregate": "small", "exit-handler": "small", "score": "score",
    "pretrain": "cpu", "train-cpu": "cpu", "generate-cpu": "cpu", "train-gpu": "gpu", "generate-gpu": "gpu",
    "train-ray-check": "small",
}  # fmt: skip


def test_every_pod_requests_cpu_and_memory_and_limits_its_memory(schema: dict[str, Any]) -> None:
    assert set(leaf_templates()) == set(EXPECTED_SIZES)
    for name, template in leaf_templates().items():
        resources = template["container"]["resources"]
        size = pods.SIZES[EXPECTED_SIZES[name]]
        assert resources == {
            "requests": {"cpu": size.cpu, "memory": size.memory},
            "limits": {"memory": size.memory},
        }, name
        definition = "io.k8s.api.core.v1.ResourceRequirements"
        assert not list(validator(schema, definition).iter_errors(resources)), name
        assert "{{" not in json.dumps(resources)  # Argo refuses a placeholder in a quantity
    # /dev/shm is memory the GPU pod's cgroup is charged for: its limit must leave room beside it
    assert quantity(pods.SIZES["gpu"].memory) > quantity(pods.SHM_SIZE) + quantity(pods.SIZES["cpu"].memory)


@pytest.mark.parametrize("name", ["score", "pretrain", "train-cpu", "generate-cpu"])
def test_cpu_pods_hold_the_cpu_semaphore(name: str) -> None:
    ref = {"name": "rpt-transfer-limits", "key": "{{workflow.parameters.cpu-semaphore-key}}"}
    assert leaf_templates()[name]["synchronization"] == {"semaphores": [{"configMapKeyRef": ref}]}
    assert pods.LIMITS[DEFAULTS["cpu-semaphore-key"]] == "32"


def test_small_pods_hold_no_semaphore() -> None:
    for name in ("prepare", "aggregate", "exit-handler", CHECK):
        assert "synchronization" not in leaf_templates()[name], name


HOSTILE = 'x"}, "hostPID": true, "nodeName": "n1", "y": {"z": "'
"""A value that, left raw inside a JSON string of a patch, closes it and adds keys to the pod spec."""


def argo_substitute(template: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """Substitute as Argo's common.SubstituteParams does: the template marshaled to JSON, each `{{name}}`
    replaced by its value JSON-escaped (strconv.Quote without its quotes), the text unmarshaled again."""

    def value(match: re.Match) -> str:
        return json.dumps(values[match[1]])[1:-1] if match[1] in values else match[0]

    return json.loads(PLACEHOLDER.sub(value, json.dumps(template)))


def test_argo_substitution_leaves_a_value_raw_in_a_patch_so_no_parameter_goes_there() -> None:
    # why: Argo escapes a value for the template's JSON only, so inside a podSpecPatch's text it is raw,
    # inside a JSON string of the patch or not; the patch this template had is rewritten by it
    old = {"podSpecPatch": json.dumps({"nodeSelector": {"label": "{{workflow.parameters.value}}"}})}
    patched = json.loads(argo_substitute(old, {"workflow.parameters.value": HOSTILE})["podSpecPatch"])
    assert patched["hostPID"] is True and patched["nodeName"] == "n1"
    # so no workflow parameter appears in any patch: only the GPU count, an integer `prepare` writes, and
    # the GPU resource name as `prepare --gpu-resource` checked and wrote it (test_fanout: hostile names)
    for name, template in leaf_templates().items():
        placeholders = set(PLACEHOLDER.findall(template.get("podSpecPatch", "")))
        assert placeholders <= {"inputs.parameters.gpus", "inputs.parameters.gpu-resource"}, (
            name,
            placeholders,
        )


@pytest.mark.parametrize("name", sorted(leaf_templates()))
def test_a_hostile_value_of_any_parameter_changes_no_key_of_the_pod(name: str) -> None:
    template = leaf_templates()[name]
    samples = {f"workflow.parameters.{k}": v for k, v in DEFAULTS.items()} | SAMPLES
    hostile = {key: HOSTILE for key in samples if key.startswith("workflow.parameters.")} | SAMPLES
    normal, attacked = argo_substitute(template, samples), argo_substitute(template, hostile)

    def shape(tree: dict[str, Any]) -> list[str]:  # nodeSelector's key is a parameter: checked below
        return key_paths({key: value for key, value in tree.items() if key != "nodeSelector"})

    assert shape(attacked) == shape(normal)  # every value stays inside a string
    if "podSpecPatch" in template:
        assert json.loads(attacked["podSpecPatch"]) == json.loads(normal["podSpecPatch"])
    if "nodeSelector" in template:
        assert attacked["nodeSelector"] == {HOSTILE: HOSTILE}
        assert attacked["tolerations"] == [{"key": HOSTILE, "operator": "Exists", "effect": "NoSchedule"}]


def test_only_gpu_pods_ask_for_gpus() -> None:
    for name, template in leaf_templates().items():
        if name == "prepare":  # it only checks the GPU resource name (`--gpu-resource`) for the GPU pods
            template = {**template, "container": {**template["container"], "args": []}, "outputs": {}}
        asks = "gpu" in json.dumps({k: v for k, v in template.items() if k != "metadata"})
        assert asks == name.endswith("-gpu"), name


def test_score_pods_run_the_sandbox_at_its_userns_level() -> None:
    template = leaf_templates()["score"]
    container = template["container"]
    assert template["metadata"]["labels"] == {
        "rpt-transfer.io/role": "score",
        "rpt-transfer.io/egress": "store-and-mlflow",
        "rpt-transfer.io/size": "score",
    }
    assert container["image"] == "{{workflow.parameters.runner-image}}"
    assert {"name": "RPT_SANDBOX_MIN", "value": "{{workflow.parameters.sandbox-min}}"} in container["env"]
    assert DEFAULTS["sandbox-min"] == "userns"
    # docs/sandbox.md, "Which pod settings give which level", the `userns` row
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "appArmorProfile": {"type": "Unconfined"},
        "capabilities": {"drop": ["ALL"]},
        "procMount": "Unmasked",
        "runAsGroup": 65534,
        "runAsNonRoot": True,
        "runAsUser": 65534,
        "seccompProfile": {"type": "Unconfined"},
    }
    assert json.loads(template["podSpecPatch"]) == {"hostUsers": False}


def test_the_example_workflow_needs_no_override_strict_referencing_blocks() -> None:
    example = built("examples/study.yaml")
    assert example["spec"] == {
        "workflowTemplateRef": {"name": "rpt-transfer-study"},
        "arguments": {"parameters": [{"name": "study", "value": templates.EXAMPLE_STUDY}]},
    }
    keys = key_paths(example)
    assert not [k for k in keys if k.endswith((".podSpecPatch", ".volumes", ".templates"))]


TOKEN = re.compile(
    r"\s*(?:(?P<op>&&|\|\||==|!=|!|[()\[\],])"
    r"|(?P<name>lastRetry\.(?:status|exitCode|message)|asInt|in|contains|not)(?![\w.])"
    r"|(?P<int>-?\d+)|(?P<str>'[^'\\]*'))"
)
NAMES = {
    "&&": "and", "||": "or", "!": "not", "not": "not", "asInt": "int",
    "lastRetry.status": "status", "lastRetry.exitCode": "exit_code", "lastRetry.message": "message",
}  # fmt: skip


def expr_to_python(expression: str) -> str:
    """Translate the expr-lang subset the retry expression uses; any other token fails the test.

    As expr-lang defines them: `a contains b` is true when string `a` holds `b` (Python `b in a`; here both
    operands must be single tokens, so no precedence is involved); `!` and `not` negate the operand that
    follows, binding tighter than any binary operator, where Python's `not` binds looser than comparisons:
    a `(` must follow them, so both read the same. `x in [...]` is membership in a list, as in Python.
    """
    tokens, at = [], 0
    while at < len(expression.rstrip()):
        match = TOKEN.match(expression, at)
        assert match is not None and match.end() > at, f"not in the translated subset: {expression[at:]!r}"
        at = match.end()
        tokens.append(match[0].strip())
    out: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token in ("!", "not"):
            assert tokens[index + 1 : index + 2] == ["("], f"{token} must be followed by ( here: {expression}"
        if token == "contains":
            left, right = out.pop(), tokens[index + 1]
            assert left not in (")", "]") and right not in ("(", "["), (
                f"contains takes single-token operands: {expression}"
            )
            out += ["(", NAMES.get(right, right), "in", left, ")"]
            index += 2
            continue
        out.append(NAMES.get(token, token))
        index += 1
    return " ".join(out)


def test_the_translation_reads_contains_and_not_as_expr_lang_does() -> None:
    def run(expression: str, **names: str) -> bool:
        return eval(expr_to_python(expression), {"__builtins__": {"int": int}}, names)

    assert run("lastRetry.message contains 'dead'", message="a deadline") is True
    assert run("!(lastRetry.message contains 'dead')", message="a deadline") is False
    assert run("not (lastRetry.status == 'Error')", status="Failed") is True
    assert run("asInt(lastRetry.exitCode) in [-1, 75]", exit_code="-1") is True
    with pytest.raises(AssertionError, match="must be followed by"):
        expr_to_python("!lastRetry.message contains 'x'")  # expr-lang: (!message) contains 'x', an error
    with pytest.raises(AssertionError, match="not in the translated subset"):
        expr_to_python("lastRetry.duration > 5")


EVICTED = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi."


@pytest.mark.parametrize(
    ("status", "exit_code", "message", "retried"),
    [
        ("Failed", "-1", EVICTED, True),  # evicted before its container started: Argo says Failed, -1
        ("Failed", "-1", "Pod was rejected: Node didn't have enough resource: cpu", True),  # admission
        ("Failed", "137", f"{pods.DEADLINE_MESSAGE}.", False),  # killed at its deadline: 137 too, not retried
        ("Failed", "-1", pods.DEADLINE_MESSAGE, False),  # deadline before the container ran
        ("Error", "-1", pods.DEADLINE_MESSAGE, False),
        ("Failed", "2", "", False),  # a user error: never retried
        ("Error", "2", "", False),
        ("Failed", "1", "", False),  # a job failed: a retry would fail the same way
        ("Failed", "1", EVICTED, False),
        ("Failed", "75", "", True),  # store or server connection trouble
        ("Failed", "137", "OOMKilled (exit code 137)", True),  # OOM-killed
        ("Failed", "137", "", True),
        ("Error", "-1", "pod deleted", True),  # deleted, node lost: Argo's Error
        ("Error", "1", "", True),
    ],
)
def test_the_retry_expression(status: str, exit_code: str, message: str, retried: bool) -> None:
    python = expr_to_python(pods.RETRY_EXPRESSION)
    names = {"status": status, "exit_code": exit_code, "message": message}
    assert eval(python, {"__builtins__": {"int": int}}, names) is retried


def test_the_docs_list_every_parameter_with_its_default() -> None:
    page = (REPO / "docs" / "argo-templates.md").read_text()
    assert markdown_table() in page, "docs/argo-templates.md: paste rpt_transfer.argo.params.markdown_table()"
