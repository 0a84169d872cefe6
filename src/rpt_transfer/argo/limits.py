"""How big a study is to Argo, against Argo's limits: `check` says the first one a study would pass.

Argo keeps a whole Workflow (spec, the WorkflowTemplate's spec it copies, and a status node for every step,
retry and pod) in one Kubernetes object. The sizes here are computed, not guessed: the prepare outputs are
`rpt_transfer.fanout.plan_parts` as `prepare --outputs` writes them, and the status is built node by node
the way Argo names and fills its nodes, by walking the generated WorkflowTemplate with those outputs, every
pod using all its retries (the worst case), and measured as JSON.
"""

import json
import re
import zlib
from typing import Any, NamedTuple

from rpt_transfer.argo import render, templates
from rpt_transfer.argo.params import defaults
from rpt_transfer.fanout import DEFAULT_SCORE_CHUNK, plan_parts
from rpt_transfer.plan import Plan

RESULT_CAP_BYTES = 256 * 1024
"""Argo keeps the last 256 kB of a step's stdout as `outputs.result` (docs: variables, outputs.result).
The templates read no `result`; each `prepare` output parameter is held under the same bound."""
ARGUMENT_CAP_BYTES = 128 * 1024
"""An argument over 128 KB reaches the container as `@/tmp/argo_arg_N.txt` (Argo's executor), which
`rpt-transfer` would not read: every argument must stay under it."""
OBJECT_CAP_BYTES = 1024 * 1024
"""A Workflow object must stay under about 1 MB, etcd's object size (Argo docs: offloading large
workflows; node status offload needs SQL persistence, which this project does not install)."""
MAX_TEMPLATES = 200
MAX_STEPS = 200
MAX_PARAMETERS = 500
"""Argo v4's CRDs cap lists for their CEL validation: 200 templates per object, 200 tasks per DAG (held here
for the steps of one steps template too), 500 parameters per list (argo-workflows PRs 15028, 15242)."""
MANAGED_FIELDS_ALLOWANCE = 16 * 1024
"""Bytes allowed for what the estimate does not build: `metadata.managedFields` and annotations."""

_WORKFLOW_NAME_SUFFIX = "x7k2p"  # generateName's five random characters
_TIME = "2026-12-06T20:00:00Z"
_HOST = "ip-10-120-133-201.eu-west-1.compute.internal"
_PLACEHOLDER = re.compile(r"\{\{([^{}]+)\}\}")
_EMPTY = "(empty withParam)"  # a scope key no placeholder can name
_WHEN = re.compile(r"^\s*(-?\d+)\s*(>|==)\s*(-?\d+)\s*$")


class Sizes(NamedTuple):
    """A study's sizes as Argo sees them."""

    outputs: dict[str, int]
    """Bytes of each `prepare --outputs` file (the output parameters and `withParam` lists)."""
    pods: int
    """Pods when each succeeds at its first attempt."""
    nodes: int
    """Status nodes when every pod uses all its retries."""
    status_bytes: int
    """Estimated bytes of the Workflow object (JSON) when every pod uses all its retries."""
    templates: int
    """Templates in the WorkflowTemplate."""
    steps: int
    """Most steps in one steps template."""
    parameters: int
    """Longest parameter list in the WorkflowTemplate."""
    argument_bytes: int
    """Longest container argument of any pod, parameters filled in."""


def template_counts(spec: dict[str, Any]) -> tuple[int, int, int]:
    """A WorkflowSpec's (templates, most steps in one template, longest parameter list)."""
    lists = [spec.get("arguments", {}).get("parameters", [])]
    most_steps = 0
    for template in spec["templates"]:
        lists += [template.get(io, {}).get("parameters", []) for io in ("inputs", "outputs")]
        steps = [step for group in template.get("steps", []) for step in group]
        most_steps = max(most_steps, len(steps))
        lists += [step.get("arguments", {}).get("parameters", []) for step in steps]
    return len(spec["templates"]), most_steps, max(len(params) for params in lists)


def study_sizes(plan: Plan, score_chunk: int = DEFAULT_SCORE_CHUNK, retries: int | None = None) -> Sizes:
    """The sizes of `plan` run with the generated WorkflowTemplate: default parameters unless given."""
    parts = plan_parts(plan, score_chunk)
    plan_uri = f"{plan.store.rstrip('/')}/{plan.key}"
    study = f"{plan.store.rstrip('/')}/{plan.spec or f'studies/{plan.study}/specs/0.yaml'}"
    given = {"score-chunk": str(score_chunk)} | ({} if retries is None else {"retries": str(retries)})
    params = defaults(study=study, **given)
    files = {"plan": plan_uri, **{f"{name}.json": json.dumps(value) for name, value in parts.items()}}
    files["gpu-resource"] = params["gpu-resource"]
    outputs = {"plan": plan_uri, **{name: json.dumps(value) for name, value in parts.items()}}
    outputs["gpu-resource"] = params["gpu-resource"]
    spec = render.to_dict(templates.workflow_template())["spec"]
    walk = _Walk(spec, params, outputs, f"{plan.study}-{_WORKFLOW_NAME_SUFFIX}", int(params["retries"]) + 1)
    walk.workflow()
    counts = template_counts(spec)
    return Sizes(
        outputs={name: len(text.encode()) for name, text in files.items()},
        pods=walk.pods // walk.attempts,
        nodes=len(walk.nodes),
        status_bytes=len(json.dumps(walk.object(spec, study)).encode()) + MANAGED_FIELDS_ALLOWANCE,
        templates=counts[0],
        steps=counts[1],
        parameters=counts[2],
        argument_bytes=walk.longest_argument,
    )


def first_exceeded(sizes: Sizes) -> str | None:
    """The first Argo limit the sizes pass, as one line (what, how much, the limit, what to do); else None."""
    for name, size in sizes.outputs.items():
        if size > RESULT_CAP_BYTES:
            return (
                f"prepare's output {name} would be {size:,} bytes, over Argo's {RESULT_CAP_BYTES:,}-byte "
                "bound on a step's output; split the study"
            )
    checks = (
        (sizes.argument_bytes, ARGUMENT_CAP_BYTES, "a pod's longest argument", "bytes"),
        (sizes.templates, MAX_TEMPLATES, "the WorkflowTemplate's templates", "templates"),
        (sizes.steps, MAX_STEPS, "the steps of one steps template", "steps"),
        (sizes.parameters, MAX_PARAMETERS, "the longest parameter list", "parameters"),
    )
    for size, cap, what, unit in checks:
        if size > cap:
            return f"{what}: {size:,} {unit}, over Argo's limit of {cap:,}"
    if sizes.status_bytes > OBJECT_CAP_BYTES:
        return (
            f"the Workflow object would reach about {sizes.status_bytes:,} bytes ({sizes.nodes:,} status "
            f"nodes for {sizes.pods:,} pods, every retry used), over Argo's {OBJECT_CAP_BYTES:,}; "
            "raise --score-chunk or split the study"
        )
    return None


def check(plan: Plan, score_chunk: int = DEFAULT_SCORE_CHUNK, retries: int | None = None) -> str | None:
    """Why Argo could not run `plan` with these templates, in one line; None when it fits every limit.

    `score_chunk` and `retries` are the Workflow's parameters (None: the template's default retries).
    """
    return first_exceeded(study_sizes(plan, score_chunk, retries))


def _item_text(item: Any) -> str:
    """An item as Argo substitutes it for `{{item}}`, `{{item.KEY}}`: strings bare, the rest compact JSON."""
    return item if isinstance(item, str) else json.dumps(item, separators=(",", ":"), sort_keys=True)


def _name_text(item: Any) -> str:
    """An item as Argo writes it in an expanded step's name: a map as sorted `key:value` pairs."""
    if isinstance(item, dict):
        return ",".join(sorted(f"{key}:{_item_text(value)}" for key, value in item.items()))
    return _item_text(item)


class _Walk:
    """The status nodes Argo would record for one run of the WorkflowTemplate, all steps succeeding."""

    def __init__(
        self, spec: dict[str, Any], params: dict[str, str], outputs: dict[str, str], name: str, attempts: int
    ):
        self.templates = {template["name"]: template for template in spec["templates"]}
        self.spec, self.outputs, self.name, self.attempts = spec, outputs, name, attempts
        self.globals = {f"workflow.parameters.{key}": value for key, value in params.items()}
        self.globals |= {"workflow.name": name, "workflow.status": "Succeeded"}
        self.nodes: dict[str, dict[str, Any]] = {}
        self.pods = self.longest_argument = 0

    def workflow(self) -> None:
        """Walk the entrypoint, then the exit handler."""
        self.run(self.spec["entrypoint"], self.name, self.name, {}, None)
        self.run(self.spec["onExit"], f"{self.name}.onExit", f"{self.name}.onExit", {}, None)

    def object(self, spec: dict[str, Any], study: str) -> dict[str, Any]:
        """The Workflow object as the API server stores it once the run is over."""
        example = render.to_dict(templates.example_workflow())
        example["spec"]["arguments"]["parameters"][0]["value"] = study
        labels = {"workflows.argoproj.io/completed": "true", "workflows.argoproj.io/phase": "Succeeded"}
        pod_ids = [node["id"] for node in self.nodes.values() if node["type"] == "Pod"]
        return {
            **example,
            "metadata": {
                **example["metadata"],
                "name": self.name,
                "namespace": "rpt-transfer",
                "uid": "3f9a1c2e-0b7d-4a65-9e07-8476c3245165",
                "resourceVersion": "123456789",
                "generation": 4321,
                "creationTimestamp": _TIME,
                "labels": {**example["metadata"]["labels"], **labels, "rpt-transfer.io/study": self.name},
            },
            "status": {
                "phase": "Succeeded",
                "startedAt": _TIME,
                "finishedAt": _TIME,
                "progress": f"{len(pod_ids)}/{len(pod_ids)}",
                "estimatedDuration": 123456,
                "nodes": self.nodes,
                "storedWorkflowTemplateSpec": spec,
                "conditions": [
                    {"status": "False", "type": "PodRunning"},
                    {"status": "True", "type": "Completed"},
                ],
                "resourcesDuration": {"cpu": 1234567, "memory": 12345678, "nvidia.com/gpu": 123456},
                "taskResultsCompletionStatus": dict.fromkeys(pod_ids, True),
            },
        }

    def fill(self, text: str, scope: dict[str, str]) -> str:
        """Argo's `{{...}}` substitution; a name it does not know is left as it is."""
        return _PLACEHOLDER.sub(lambda match: scope.get(match[1].strip(), match[0]), text)

    def node(
        self, name: str, display: str, kind: str, template: str | None, boundary: str | None, **more: Any
    ) -> str:
        node_id = self._id(name)
        self.nodes[node_id] = {
            "id": node_id,
            "name": name,
            "displayName": display,
            "type": kind,
            **({"templateName": template, "templateScope": "local/"} if template else {}),
            "phase": "Skipped" if kind == "Skipped" else "Succeeded",
            **({"boundaryID": boundary} if boundary else {}),
            "startedAt": _TIME,
            "finishedAt": _TIME,
            **more,
        }
        return node_id

    def run(
        self, name: str, node_name: str, display: str, inputs: dict[str, str], boundary: str | None
    ) -> list[str]:
        """Add the nodes of template `name` run with `inputs`; returns its outbound node ids."""
        template = self.templates[name]
        given = (
            {"inputs": {"parameters": [{"name": k, "value": v} for k, v in inputs.items()]}} if inputs else {}
        )
        if "steps" in template:
            return self.steps(template, node_name, display, inputs, boundary, given)
        return self.pod(template, node_name, display, inputs, boundary, given)

    def steps(
        self, template: dict, node_name: str, display: str, inputs: dict, boundary: str | None, given: dict
    ):
        """A steps node, a StepGroup node per group, and each group's (expanded) steps."""
        scope = {**self.globals, **{f"inputs.parameters.{k}": v for k, v in inputs.items()}}
        steps_id = self.node(node_name, display, "Steps", template["name"], boundary, **given, children=[])
        previous, outbound = [steps_id], []
        for index, group in enumerate(template["steps"]):
            group_name = f"{node_name}[{index}]"
            group_id = self.node(group_name, f"[{index}]", "StepGroup", None, steps_id, children=[])
            for parent in previous:
                self.nodes[parent].setdefault("children", []).append(group_id)
            previous, outbound = [], []
            for step in group:
                for suffix, here in self.expand(step, scope):
                    child = f"{group_name}.{step['name']}{suffix}"
                    outbound += self.step(step, child, f"{step['name']}{suffix}", here, steps_id)
                    self.nodes[group_id]["children"].append(self._id(child))
                    previous.append(self._id(child))
                    for output in self.nodes[self._id(child)].get("outputs", {}).get("parameters", []):
                        scope[f"steps.{step['name']}.outputs.parameters.{output['name']}"] = output["value"]
        self.nodes[steps_id]["outboundNodes"] = outbound
        return outbound

    def expand(self, step: dict, scope: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
        """A step's (name suffix, scope) per item of its `withParam`; one, unsuffixed, without one."""
        if "withParam" not in step:
            return [("", scope)]
        items = json.loads(self.fill(step["withParam"], scope))
        if not items:  # Argo records an empty fan-out as one skipped node
            return [("", {**scope, _EMPTY: "true"})]
        expanded = []
        for number, item in enumerate(items):
            here = {**scope, "item": _item_text(item)}
            if isinstance(item, dict):
                here |= {f"item.{key}": _item_text(value) for key, value in item.items()}
            expanded.append((f"({number}:{_name_text(item)})", here))
        return expanded

    def step(self, step: dict, name: str, display: str, scope: dict[str, str], boundary: str) -> list[str]:
        """One (expanded) step: skipped, or its template run with its arguments; its outbound node ids."""
        when = self.fill(step.get("when", ""), scope)
        if _EMPTY in scope or (when and not _true(when)):
            message = "Skipped, empty params" if _EMPTY in scope else f"when '{when}' evaluated false"
            return [self.node(name, display, "Skipped", step["template"], boundary, message=message)]
        arguments = step.get("arguments", {}).get("parameters", [])
        args = {p["name"]: self.fill(p["value"], scope) for p in arguments}
        return self.run(step["template"], name, display, args, boundary)

    def pod(
        self, template: dict, node_name: str, display: str, inputs: dict, boundary: str | None, given: dict
    ):
        scope = {**self.globals, **{f"inputs.parameters.{k}": v for k, v in inputs.items()}}
        for arg in template.get("container", {}).get("args", []):  # a resource template runs Argo's own
            self.longest_argument = max(self.longest_argument, len(self.fill(arg, scope).encode()))
        outputs: dict[str, Any] = {"exitCode": "0"}
        declared = template.get("outputs", {}).get("parameters", [])
        if declared:
            outputs["parameters"] = [{**p, "value": self.outputs[p["name"]]} for p in declared]
        retry = self.node(node_name, display, "Retry", template["name"], boundary, **given, outputs=outputs)
        usage = {"cpu": 12345, "memory": 123456}
        if "gpu" in template.get("podSpecPatch", "") or "resource" in template:  # a RayJob: GPUs too
            usage["nvidia.com/gpu"] = 12345
        attempts = []
        for attempt in range(self.attempts):
            self.pods += 1
            attempts.append(
                self.node(
                    f"{node_name}({attempt})",
                    f"{display}({attempt})",
                    "Pod",
                    template["name"],
                    boundary,
                    **given,
                    outputs=outputs,
                    progress="1/1",
                    resourcesDuration=usage,
                    hostNodeName=_HOST,
                    nodeFlag={"retried": True},
                )
            )
        self.nodes[retry]["children"] = attempts
        return attempts[-1:]

    def _id(self, name: str) -> str:
        return f"{self.name}-{zlib.crc32(name.encode()):010d}"


def _true(when: str) -> bool:
    """The `when` conditions the templates use (`N > 0`, `N == 1 && M > 0`); any other is an error here."""
    results = []
    for condition in when.split("&&"):
        match = _WHEN.match(condition)
        if match is None:
            raise ValueError(f"limits.py evaluates only `N > M`, `N == M` and their `&&`, not {when!r}")
        left, op, right = int(match[1]), match[2], int(match[3])
        results.append(left > right if op == ">" else left == right)
    return all(results)
