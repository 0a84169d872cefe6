"""A small interpreter of the Argo Workflows features our templates use, for tests that run them for real.

It loads a WorkflowTemplate as written (YAML), takes a submission's parameters, and runs it the way the Argo
v4 controller would: every container step becomes a real subprocess of the container's `command + args`,
in the order Argo runs them. Its reading of Argo's semantics (the controller and executor sources, and
docs/variables.md, walk-through/loops.md, exit-handlers.md):

- Workflow parameters: the template's `spec.arguments.parameters` merged with the submission's (by name);
  a parameter that ends without a `value` is refused as Argo's validation refuses it ("value or valueFrom
  is required"; a workflow argument's `default` does not count); `enum` is checked. A submitted name the
  template does not declare is refused too: a guard against typos in tests, stricter than Argo may be.
- Template inputs: the caller's argument, else the input's `value`, else its `default`, else an error
  ("inputs.parameters.X was not supplied").
- Simple tags `{{name}}` (white-space around the name allowed) are substituted as plain text: in a step's
  `arguments`, `when` and `withParam` with the calling template's inputs, earlier steps' outputs, the
  loop item and the globals; in a container or resource template with its inputs and the globals.
  Expression tags (`{{=...}}`) are evaluated by argo_expr.py (the subset of expr-lang it implements; its
  result written as Go's `%v`); one that fails to evaluate errors the node. Names: `workflow.parameters.X`, `workflow.name`, `workflow.namespace`,
  `workflow.uid`, `workflow.outputs.parameters.X` (set by `globalName`), `workflow.status` and
  `workflow.failures` (exit handler only), `inputs.parameters.X`, `item`, `item.KEY`,
  `steps.NAME.outputs.parameters.X`, `steps.NAME.status`, `steps.NAME.exitCode`, `pod.name`.
- Loop items (`withParam`: a JSON array, the text as the step wrote it; `withItems`): a string item is its
  text; a number or bool its JSON text; a map `{{item}}` is its JSON with keys sorted (Go marshals a map),
  compact; `{{item.KEY}}` of a string is the string (JSON-escaped inside, as Argo's Item.String does), of
  anything else its compact JSON; a list item is its compact JSON. An empty list skips the step. The
  output of a looped step, `steps.NAME.outputs.parameters.X`, is the JSON list of each item's value.
- `when`: evaluated after substitution with the subset of govaluate that Argo's `shouldExecute` uses:
  numbers, quoted strings, bare words (Argo turns govaluate variables into strings), `true`/`false`,
  `== != > < >= <=`, `&& || !` and parentheses. Ordering needs two numbers or two strings (else the node
  errors, as govaluate's type check fails). Anything else (arithmetic, `=~`, functions, ternaries) raises
  `Unsupported`, so a template cannot rely on a semantics this file does not have.
- Steps run group after group; the steps of one group, and the items of one loop, run in Argo in
  parallel: here they run **one after another**, in the group's order and the loop's item order (Argo's
  order of node creation). As in Argo, every child of a group runs even when a sibling fails; then the
  group fails (unless the step has `continueOn` for that phase), and no later group runs. A step
  references only the outputs of earlier groups.
- A container node succeeds on exit code 0 and fails on any other. Output parameters are read from
  `valueFrom.path` after the container exits (one trailing newline trimmed, Argo's executor does so);
  a missing file takes `valueFrom.default`, else the node errors. `globalName` publishes the value as
  `workflow.outputs.parameters.NAME`. The outputs of a skipped step do not resolve (the referring node
  errors), as Argo v4.0.7+ does without a default.
- `retryStrategy` is recorded, never acted on: a failed pod is not retried here (say so when a test would
  need it). `activeDeadlineSeconds` of a container template is enforced as the subprocess's timeout (the
  pod is killed and the node fails).
- A `resource` template (`action: create` of a KubeRay RayJob, `ray.io/v1`, the only kind implemented) is
  run as the cluster would run it, on this machine: the manifest, substituted, must parse as YAML (and
  validate against KubeRay's schema, when ../shared/data has it); the RayJob is recorded in
  `WorkflowRun.resources` with a name from its `generateName`; its **entrypoint runs as a pod of the head**
  (the head group's first container: its image recorded, its `env`/`envFrom` built as for any pod, plus
  `RAY_ADDRESS`, which a Ray job's driver gets: no Ray runs here). The entrypoint's words are split as the
  submitter's bash splits them (KubeRay writes it into `ray job submit ... -- ENTRYPOINT`), joined again as
  Ray's CLI joins them (`subprocess.list2cmdline`) and split again as the head's shell does. Its
  `persistentVolumeClaim` volumes are one folder per claim name, shared by every pod and run of the
  interpreter (a ReadWriteMany volume), its `emptyDir`s per pod. The workers run nothing (their processes
  would be Ray's). The process's exit sets the RayJob's status as KubeRay 1.7 does for a finished job
  (`jobDeploymentStatus` Complete and `jobStatus` SUCCEEDED on exit 0; Failed and FAILED otherwise; Failed
  with `reason: DeadlineExceeded` past `activeDeadlineSeconds`), and the template's `successCondition`
  (every requirement) and `failureCondition` (any requirement) are evaluated on it as Argo's executor
  does (label-selector requirements on JSON paths: `==`, `=`, `!=`, `in`, `notin`, existence): failure
  fails the node, success succeeds it, neither errors it (Argo would wait until the deadline).
- `onExit` runs after the entrypoint, with `workflow.status` = Succeeded, Failed or Error. The workflow's
  phase is the entrypoint's; a failed exit handler turns a Succeeded workflow into Failed.

The pod environment is built as Kubernetes builds it, and from nothing else: `envFrom` (secretRef and
configMapRef, with `prefix` and `optional`) first, then `env` (`value`, with `$(VAR)` references expanded as
Kubernetes does; `valueFrom.secretKeyRef`/`configMapKeyRef`, with `optional`), from the `secrets` and
`config_maps` dicts the test passes, standing for the cluster's objects. The only variables a pod gets
beyond its template's are the basics a container image has: PATH (the commands' folder, then
/usr/bin:/bin), HOME (a fresh folder per pod; for a container with a non-root `runAsUser`, a folder that
does not exist, as nobody's home in an image, and a pod that creates it gets a `notes` line),
HOSTNAME (the pod's name), LANG. A variable the template
forgets is missing, as in a pod. A required secret or key that is missing keeps the pod from starting:
the node errors.

Deviations, because this is one machine and not a cluster:

- The container's executable is looked up in `commands` (e.g. `rpt-transfer` -> the venv's console
  script, `python` -> this Python); a command not in it raises, since what an image holds is unknown.
  The image itself is recorded, not used.
- Absolute container paths shared by pods on this machine (`/tmp/outputs` by default, plus the mount path
  of every `emptyDir` volume except /dev/shm) are rewritten onto a fresh folder per pod, in `args`,
  `command`, env values and `valueFrom.path`, when the string is that path, starts with it plus "/", or
  is `--flag=` followed by such a path. A pod's working folder is a fresh folder too.
- Fields that only place, size or restrict a pod (resources, nodeSelector, tolerations, affinity,
  securityContext, labels, volumes for /dev/shm, synchronization, podGC, ttlStrategy, ...) are recorded in
  `WorkflowRun.ignored`, not enforced. Any field not known to be such raises `Unsupported`: a dag, script,
  suspend template, a resource template of another action or kind, `withSequence`, `templateRef`, lifecycle hooks, memoize, sidecars, artifacts,
  ... so that nothing is silently skipped.
"""

from __future__ import annotations

import json
import re
import secrets as _random
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import argo_expr
import yaml

SUCCEEDED, FAILED, ERROR, SKIPPED = "Succeeded", "Failed", "Error", "Skipped"
DEFAULT_PATH_PREFIXES = ("/tmp/outputs",)
TAIL = 4000


class Unsupported(Exception):
    """The template uses a field or form this interpreter does not implement (so it cannot be trusted)."""


class Invalid(Exception):
    """Argo itself would refuse this workflow (validation at submit time)."""


@dataclass
class PodRun:
    """One container run: what was started, with what, and how it ended."""

    node: str
    template: str
    pod_name: str
    image: str | None
    argv: list[str]
    """As started here (executable mapped, paths rewritten)."""
    container_argv: list[str]
    """As the container would start it (after substitution and `$(VAR)` expansion)."""
    env: dict[str, str]
    exit_code: int | None
    phase: str
    message: str
    stdout: str
    stderr: str
    seconds: float
    outputs: dict[str, str] = field(default_factory=dict)
    retry_strategy: dict | None = None
    labels: dict[str, str] = field(default_factory=dict)
    pod_dir: Path | None = None
    notes: list[str] = field(default_factory=list)
    """What would differ in a cluster, seen here (e.g. a non-root pod that wrote under its HOME)."""

    @property
    def env_keys(self) -> list[str]:
        return sorted(self.env)


@dataclass
class Node:
    """One step node's result (a container run, a nested steps template, or a loop of them)."""

    name: str
    template: str | None
    phase: str
    message: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    exit_code: int | None = None


@dataclass
class WorkflowRun:
    """What a submission did."""

    name: str
    parameters: dict[str, str]
    status: str = ""
    message: str = ""
    pods: list[PodRun] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    """Global outputs (`globalName`)."""
    ignored: list[str] = field(default_factory=list)
    """Fields recorded and not enforced (placement, limits, GC, ...), as `template.path`."""
    resources: list[dict] = field(default_factory=list)
    """Objects the resource templates created, as created (name from generateName), with the `status` the
    interpreter gave them."""
    exit_status_seen: str | None = None
    """The `workflow.status` the exit handler ran with."""

    def pods_of(self, template: str) -> list[PodRun]:
        return [pod for pod in self.pods if pod.template == template]


class _Unresolved(Exception):
    def __init__(self, tag: str, why: str = "") -> None:
        super().__init__(f"failed to resolve {{{{{tag}}}}}" + (f": {why}" if why else ""))
        self.tag = tag


# ---------------------------------------------------------------------------------------------- fields
# Known fields: handled (acted on), or recorded (no effect on what the process does on this machine).
_WF_SPEC_HANDLED = {"entrypoint", "arguments", "templates", "onExit", "volumes"}
_WF_SPEC_RECORDED = {
    "podGC", "ttlStrategy", "serviceAccountName", "workflowMetadata", "podMetadata", "parallelism",
    "synchronization", "securityContext", "nodeSelector", "tolerations", "affinity", "archiveLogs",
    "artifactRepositoryRef", "priority", "podPriorityClassName", "podDisruptionBudget", "volumeClaimGC",
    "imagePullSecrets", "metrics", "activeDeadlineSeconds", "automountServiceAccountToken", "executor",
    "schedulerName", "hostNetwork", "dnsPolicy", "dnsConfig", "retryStrategy", "templateDefaults",
    "podSpecPatch", "shutdown", "volumeClaimTemplates", "hostAliases", "artifactGC", "workflowTemplateRef",
}  # fmt: skip
# spec-level retryStrategy/templateDefaults/podSpecPatch/volumeClaimTemplates change behaviour: see _check_spec
_TEMPLATE_HANDLED = {
    "name", "inputs", "outputs", "container", "steps", "resource", "activeDeadlineSeconds", "volumes",
}  # fmt: skip
_TEMPLATE_RECORDED = {
    "metadata", "retryStrategy", "nodeSelector", "tolerations", "affinity", "securityContext",
    "synchronization", "serviceAccountName", "automountServiceAccountToken", "priorityClassName",
    "schedulerName", "parallelism", "failFast", "archiveLocation", "metrics", "hostAliases", "executor",
    "podResources", "resourceClaims", "pendingTimeout", "timeout", "podSpecPatch", "priority",
}  # fmt: skip
_CONTAINER_HANDLED = {"name", "image", "command", "args", "env", "envFrom", "volumeMounts", "workingDir"}
_CONTAINER_RECORDED = {
    "resources", "securityContext", "imagePullPolicy", "ports", "livenessProbe", "readinessProbe",
    "startupProbe", "terminationMessagePath", "terminationMessagePolicy", "resizePolicy",
}  # fmt: skip
_STEP_HANDLED = {"name", "template", "arguments", "when", "withParam", "withItems", "continueOn"}
_IO_PARAM_HANDLED = {"name", "value", "default", "enum", "description", "globalName", "valueFrom"}


def _check_keys(where: str, obj: dict, handled: set, recorded: set, ignored: list[str]) -> None:
    if not isinstance(obj, dict):
        raise Invalid(f"{where} is not a mapping: {obj!r}")
    for key in obj:
        if key in handled:
            continue
        if key in recorded:
            ignored.append(f"{where}.{key}")
            continue
        raise Unsupported(f"{where}.{key}: not implemented by tests/argo/argo_runner.py")


# ---------------------------------------------------------------------------------------------- loading
def load_workflow_template(path: str | Path, name: str | None = None) -> dict:
    """The WorkflowTemplate in `path` (a YAML file, possibly of several documents, or a folder of them)."""
    path = Path(path)
    files = sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml")) if path.is_dir() else [path]
    found = []
    for file in files:
        for doc in yaml.safe_load_all(file.read_text(encoding="utf-8")):
            is_template = isinstance(doc, dict) and doc.get("kind") == "WorkflowTemplate"
            if is_template and (name is None or doc.get("metadata", {}).get("name") == name):
                found.append(doc)
    if len(found) != 1:
        raise Invalid(
            f"expected one WorkflowTemplate{f' named {name!r}' if name else ''} in {path}, got {len(found)}"
        )
    return found[0]


# ---------------------------------------------------------------------------------------------- JSON, Go's way
class _Num(str):
    """A JSON number kept as its literal text (Go's json.RawMessage keeps it so)."""


def _parse_json(text: str) -> Any:
    return json.loads(text, parse_int=_Num, parse_float=_Num, parse_constant=_bad_constant)


def _bad_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


def _go_str(value: str) -> str:
    """A JSON string as Go's encoder writes it, HTML characters put back as argo's jsonutil.Fix does."""
    return json.dumps(value, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _compact(value: Any, sort_keys: bool = False) -> str:
    """Compact JSON of a parsed value: literal numbers, keys in their order (Go keeps a raw message's)."""
    if isinstance(value, _Num):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):  # from YAML (withItems): Go marshals a float64 without a needless ".0"
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, str):
        return _go_str(value)
    if isinstance(value, list):
        return "[" + ",".join(_compact(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value) if sort_keys else list(value)
        return "{" + ",".join(f"{_go_str(k)}:{_compact(value[k])}" for k in keys) + "}"
    raise Invalid(f"not a JSON value: {value!r}")


def item_scope(item: Any) -> dict[str, str]:
    """`item` and `item.KEY` as Argo's steps expansion sets them (see the module docstring)."""
    if isinstance(item, str) and not isinstance(item, _Num):
        return {"item": item}
    if isinstance(item, dict):
        scope = {}
        for key, value in item.items():
            text = _compact(value)
            if isinstance(value, str) and not isinstance(value, _Num):
                text = text[1:-1]  # Item.String() chops the quotes of a string, escapes stay
            scope[f"item.{key}"] = text
        scope["item"] = _compact(item, sort_keys=True)
        return scope
    return {"item": _compact(item)}


def _item_label(index: int, item: Any) -> str:
    if isinstance(item, dict):
        parts = sorted(f"{k}:{item_scope(item)[f'item.{k}']}" for k in item)
        return f"({index}:{','.join(parts)})"
    return f"({index}:{item_scope(item)['item']})"


# ---------------------------------------------------------------------------------------------- substitution
_TAG = re.compile(r"\{\{(.*?)\}\}", re.S)


def substitute(text: str, scope: dict[str, str], *, allow: tuple[str, ...] = ()) -> str:
    """Replace every simple tag; `allow`: prefixes of tags left as they are (resolved at a later level)."""

    def one(match: re.Match) -> str:
        inner = match.group(1)
        if inner.startswith("="):
            try:
                return argo_expr.go_text(argo_expr.evaluate(inner[1:], scope))
            except argo_expr.Unsupported as err:
                raise Unsupported(f"expression tag {match.group(0)!r}: {err}") from err
            except argo_expr.ExprError as err:
                raise _Unresolved(inner, str(err)) from err
        name = inner.strip()
        if name in scope:
            return scope[name]
        if any(name == p or name.startswith(p + ".") for p in allow):
            return match.group(0)
        raise _Unresolved(name)

    return _TAG.sub(one, text)


def _subst_tree(value: Any, scope: dict[str, str], allow: tuple[str, ...] = ()) -> Any:
    if isinstance(value, str):
        return substitute(value, scope, allow=allow)
    if isinstance(value, list):
        return [_subst_tree(v, scope, allow) for v in value]
    if isinstance(value, dict):
        return {k: _subst_tree(v, scope, allow) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------------------------- when
_WHEN_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?(?![\w.]))|(?P<str>'[^']*'|\"[^\"]*\")|(?P<op>==|!=|>=|<=|&&|\|\||[<>!()])"
    r"|(?P<word>[A-Za-z_][\w.]*))"
)


class WhenError(Exception):
    """govaluate would fail to evaluate this (a type error): Argo errors the node."""


def evaluate_when(expr: str) -> bool:
    """Evaluate an already substituted `when` as Argo's shouldExecute (govaluate, variables as strings)."""
    tokens: list[tuple[str, Any]] = []
    pos, text = 0, expr.strip()
    while pos < len(text):
        match = _WHEN_TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise Unsupported(
                f"'when' expression {expr!r}: cannot read {text[pos:]!r} (not implemented here)"
            )
        pos = match.end()
        if match.group("num") is not None:
            tokens.append(("val", float(match.group("num"))))
        elif match.group("str") is not None:
            tokens.append(("val", match.group("str")[1:-1]))
        elif match.group("op") is not None:
            tokens.append(("op", match.group("op")))
        else:
            word = match.group("word")
            if word in ("true", "false"):
                tokens.append(("val", word == "true"))
            elif text[pos:].lstrip().startswith("("):
                raise Unsupported(f"'when' expression {expr!r}: function {word}() is not implemented")
            else:
                tokens.append(("val", word))  # a govaluate variable: Argo turns it into a string
    parser = _WhenParser(tokens, expr)
    result = parser.parse_or()
    if parser.pos != len(tokens):
        raise Unsupported(f"'when' expression {expr!r}: unexpected {tokens[parser.pos][1]!r}")
    if not isinstance(result, bool):
        raise WhenError(f"Expected boolean evaluation for '{expr}'. Got {result!r}")
    return result


class _WhenParser:
    def __init__(self, tokens: list[tuple[str, Any]], expr: str) -> None:
        self.tokens, self.pos, self.expr = tokens, 0, expr

    def _peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take_op(self, *ops: str) -> str | None:
        tok = self._peek()
        if tok and tok[0] == "op" and tok[1] in ops:
            self.pos += 1
            return tok[1]
        return None

    def parse_or(self) -> Any:
        left = self.parse_and()
        while self._take_op("||"):
            left = self._bool(left) | self._bool(self.parse_and())
        return left

    def parse_and(self) -> Any:
        left = self.parse_cmp()
        while self._take_op("&&"):
            left = self._bool(left) & self._bool(self.parse_cmp())
        return left

    def parse_cmp(self) -> Any:
        left = self.parse_unary()
        op = self._take_op("==", "!=", ">", "<", ">=", "<=")
        if not op:
            return left
        right = self.parse_unary()
        if op == "==":
            return type(left) is type(right) and left == right
        if op == "!=":
            return not (type(left) is type(right) and left == right)
        if not (
            (isinstance(left, str) and isinstance(right, str))
            or (type(left) is float and type(right) is float)
        ):
            raise WhenError(f"'{self.expr}': {left!r} {op} {right!r} compares a number with a string")
        return {">": left > right, "<": left < right, ">=": left >= right, "<=": left <= right}[op]

    def parse_unary(self) -> Any:
        if self._take_op("!"):
            return not self._bool(self.parse_unary())
        if self._take_op("("):
            value = self.parse_or()
            if not self._take_op(")"):
                raise Unsupported(f"'when' expression {self.expr!r}: unbalanced parentheses")
            return value
        tok = self._peek()
        if tok is None or tok[0] != "val":
            raise Unsupported(f"'when' expression {self.expr!r}: expected a value, got {tok!r}")
        self.pos += 1
        return tok[1]

    def _bool(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise WhenError(f"'{self.expr}': {value!r} is not a boolean")
        return value


# ---------------------------------------------------------------------------------------------- runner
_K8S_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def k8s_expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: defined names are replaced, `$$` is `$`, others stay as written."""

    def one(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _K8S_REF.sub(one, text)


class _PodStartError(Exception):
    pass


class ArgoRunner:
    """Runs one WorkflowTemplate's workflows on this machine (see the module docstring).

    `commands`: container executable -> path here. `secrets` / `config_maps`: name -> {key: value}, the
    cluster's objects. `workdir`: where per-pod folders go. `path_prefixes`: container paths given a
    per-pod folder (beyond emptyDir mounts). `namespace`: `{{workflow.namespace}}`.
    """

    def __init__(
        self,
        template: dict | str | Path,
        *,
        commands: dict[str, str],
        workdir: Path,
        secrets: dict[str, dict[str, str]] | None = None,
        config_maps: dict[str, dict[str, str]] | None = None,
        path_prefixes: tuple[str, ...] = DEFAULT_PATH_PREFIXES,
        namespace: str = "default",
        stream: bool = False,
    ) -> None:
        self.doc = template if isinstance(template, dict) else load_workflow_template(template)
        if self.doc.get("kind") != "WorkflowTemplate":
            raise Invalid(f"not a WorkflowTemplate: kind {self.doc.get('kind')!r}")
        self.spec = self.doc.get("spec") or {}
        self.commands = dict(commands)
        self.secrets = secrets or {}
        self.config_maps = config_maps or {}
        self.workdir = Path(workdir)
        self.path_prefixes = path_prefixes
        self.namespace = namespace
        self.stream = stream
        self.templates: dict[str, dict] = {}
        for tmpl in self.spec.get("templates") or []:
            if tmpl.get("name") in self.templates:
                raise Invalid(f"duplicate template name {tmpl.get('name')!r}")
            self.templates[tmpl.get("name")] = tmpl

    # ------------------------------------------------------------------ workflow
    def submit(self, parameters: dict[str, str] | None = None, name: str | None = None) -> WorkflowRun:
        """Run a Workflow made from this template with these `-p` parameters, to its end (exit handler too)."""
        parameters = dict(parameters or {})
        ignored: list[str] = []
        _check_keys("spec", self.spec, _WF_SPEC_HANDLED, _WF_SPEC_RECORDED, ignored)
        for key in (
            "retryStrategy",
            "templateDefaults",
            "podSpecPatch",
            "volumeClaimTemplates",
            "workflowTemplateRef",
            "shutdown",
        ):
            if key in self.spec:  # recorded above for the message's sake, but they change behaviour
                raise Unsupported(f"spec.{key}: not implemented by tests/argo/argo_runner.py")
        generate = (self.doc.get("metadata") or {}).get("name", "workflow")
        run = WorkflowRun(
            name=name or f"{generate}-{_random.token_hex(3)[:5]}", parameters={}, ignored=ignored
        )
        declared = (self.spec.get("arguments") or {}).get("parameters") or []
        for key in self.spec.get("arguments") or {}:
            if key != "parameters":
                raise Unsupported(f"spec.arguments.{key}: not implemented")
        names = [p.get("name") for p in declared]
        for unknown in sorted(set(parameters) - set(names)):
            raise Invalid(f"parameter {unknown!r} is not declared by the template (declared: {names})")
        for param in declared:
            _check_keys(
                f"spec.arguments.parameters[{param.get('name')}]",
                param,
                {"name", "value", "enum", "description", "default", "valueFrom"},
                set(),
                ignored,
            )
            if "valueFrom" in param:
                raise Unsupported(f"spec.arguments.parameters[{param['name']}].valueFrom: not implemented")
            value = parameters.get(param["name"], param.get("value"))
            if value is None:
                raise Invalid(
                    f"spec.arguments.{param['name']}.value or spec.arguments.{param['name']}.valueFrom is required"
                    + (
                        " (a workflow argument's `default` is not a value in Argo)"
                        if "default" in param
                        else ""
                    )
                )
            value = _as_param_string(value)
            if "enum" in param and value not in [_as_param_string(e) for e in param["enum"]]:
                raise Invalid(f"spec.arguments.{param['name']}.value should be present in its enum list")
            run.parameters[param["name"]] = value
        self._run = run
        self._pod_count = 0
        self.globals: dict[str, str] = {
            "workflow.name": run.name,
            "workflow.namespace": self.namespace,
            "workflow.uid": _random.token_hex(16),
            "workflow.mainEntrypoint": self.spec.get("entrypoint", ""),
            **{f"workflow.parameters.{k}": v for k, v in run.parameters.items()},
        }
        entry = self.spec.get("entrypoint")
        if not entry:
            raise Invalid("spec.entrypoint is required")
        main = self._execute(entry, {}, run.name)
        run.status = main.phase if main.phase != SKIPPED else SUCCEEDED
        run.message = main.message
        on_exit = self.spec.get("onExit")
        if on_exit:
            failures = [
                {"displayName": n.name, "message": n.message, "templateName": n.template or "", "phase": n.phase,
                 "podName": "", "finishedAt": ""}
                for n in run.nodes if n.phase in (FAILED, ERROR)
            ]  # fmt: skip
            self.globals["workflow.status"] = run.status
            self.globals["workflow.failures"] = json.dumps(failures, separators=(",", ":"))
            run.exit_status_seen = run.status
            handler = self._execute(on_exit, {}, f"{run.name}.onExit")
            if run.status == SUCCEEDED and handler.phase in (FAILED, ERROR):
                run.status, run.message = FAILED, handler.message
        return run

    # ------------------------------------------------------------------ templates
    def _template(self, name: str) -> dict:
        if name not in self.templates:
            raise Invalid(f"template {name!r} not found")
        return self.templates[name]

    def _inputs(self, tmpl: dict, args: dict[str, str]) -> dict[str, str]:
        inputs = tmpl.get("inputs") or {}
        for key in inputs:
            if key != "parameters":
                raise Unsupported(f"templates.{tmpl['name']}.inputs.{key}: not implemented")
        values: dict[str, str] = {}
        for param in inputs.get("parameters") or []:
            _check_keys(
                f"templates.{tmpl['name']}.inputs.parameters[{param.get('name')}]",
                param,
                _IO_PARAM_HANDLED - {"globalName", "valueFrom"},
                set(),
                [],
            )
            name = param["name"]
            if name in args:
                value = args[name]
            elif param.get("value") is not None:
                value = _as_param_string(param["value"])
            elif param.get("default") is not None:
                value = _as_param_string(param["default"])
            else:
                raise _Unresolved(f"inputs.parameters.{name}", f"inputs.parameters.{name} was not supplied")
            if "enum" in param and value not in [_as_param_string(e) for e in param["enum"]]:
                raise _Unresolved(f"inputs.parameters.{name}", f"value {value!r} not in its enum")
            values[name] = value
        for extra in set(args) - set(values):
            raise Invalid(f"templates.{tmpl['name']}: argument {extra!r} is not an input of the template")
        return values

    def _execute(self, name: str, args: dict[str, str], node_name: str) -> Node:
        tmpl = self._template(name)
        ignored = self._run.ignored
        _check_keys(f"templates.{name}", tmpl, _TEMPLATE_HANDLED, _TEMPLATE_RECORDED, ignored)
        kinds = [k for k in ("container", "steps", "resource") if k in tmpl]
        if len(kinds) != 1:
            raise Unsupported(
                f"templates.{name}: exactly one of container, steps or resource is implemented, got {kinds}"
            )
        try:
            inputs = self._inputs(tmpl, args)
        except _Unresolved as err:
            return self._node(Node(node_name, name, ERROR, str(err)))
        if "steps" in tmpl:
            if tmpl.get("outputs"):
                raise Unsupported(
                    f"templates.{name}.outputs: outputs of a steps template are not implemented"
                )
            return self._steps(tmpl, inputs, node_name)
        if "resource" in tmpl:
            return self._resource(tmpl, inputs, node_name)
        return self._container(tmpl, inputs, node_name)

    def _node(self, node: Node) -> Node:
        self._run.nodes.append(node)
        return node

    # ------------------------------------------------------------------ steps
    def _steps(self, tmpl: dict, inputs: dict[str, str], node_name: str) -> Node:
        done: dict[str, Node] = {}
        for index, group in enumerate(tmpl["steps"]):
            if not isinstance(group, list):
                raise Invalid(f"templates.{tmpl['name']}.steps[{index}] must be a list of steps")
            results = []
            for step in group:
                _check_keys(
                    f"templates.{tmpl['name']}.steps[{index}][{step.get('name')}]",
                    step,
                    _STEP_HANDLED,
                    set(),
                    self._run.ignored,
                )
                if step.get("name") in done or step.get("name") in [s.get("name") for s, _ in results]:
                    raise Invalid(f"templates.{tmpl['name']}: duplicate step name {step.get('name')!r}")
                results.append(
                    (step, self._step(step, tmpl, inputs, done, f"{node_name}[{index}].{step['name']}"))
                )
            for step, result in results:
                done[step["name"]] = result
            for step, result in results:
                if result.phase in (FAILED, ERROR) and not _continues(step, result.phase):
                    message = f"child '{result.name}' failed"
                    self._node(Node(f"{node_name}[{index}]", None, FAILED, message))
                    return self._node(Node(node_name, tmpl["name"], FAILED, message))
        return self._node(Node(node_name, tmpl["name"], SUCCEEDED))

    def _step_scope(self, inputs: dict[str, str], done: dict[str, Node]) -> dict[str, str]:
        scope = dict(self.globals)
        scope.update({f"inputs.parameters.{k}": v for k, v in inputs.items()})
        for step_name, node in done.items():
            scope[f"steps.{step_name}.status"] = node.phase
            if node.exit_code is not None:
                scope[f"steps.{step_name}.exitCode"] = str(node.exit_code)
            if node.phase != SKIPPED:
                for key, value in node.outputs.items():
                    scope[f"steps.{step_name}.outputs.parameters.{key}"] = value
        return scope

    def _step(
        self, step: dict, tmpl: dict, inputs: dict[str, str], done: dict[str, Node], node_name: str
    ) -> Node:
        scope = self._step_scope(inputs, done)
        if "template" not in step or "{{" in str(step["template"]):
            raise Unsupported(f"step {step.get('name')!r}: a literal `template` name is required here")
        body = {k: v for k, v in step.items() if k not in ("withParam", "withItems")}
        for key in step.get("arguments") or {}:
            if key != "parameters":
                raise Unsupported(f"step {step['name']}.arguments.{key}: not implemented")
        for param in (step.get("arguments") or {}).get("parameters") or []:
            _check_keys(
                f"step {step['name']}.arguments.parameters[{param.get('name')}]",
                param,
                {"name", "value", "description"},
                set(),
                [],
            )
        items: list[Any] | None = None
        try:
            if "withParam" in step and "withItems" in step:
                raise Invalid(f"step {step['name']}: only one of withParam and withItems")
            if "withParam" in step:
                text = substitute(str(step["withParam"]), scope)
                try:
                    items = _parse_json(text)
                except ValueError as err:
                    raise _Unresolved(
                        "withParam", f"withParam value could not be parsed as a JSON list: {text!r}: {err}"
                    ) from err
                if not isinstance(items, list):
                    raise _Unresolved("withParam", f"withParam value is not a JSON list: {text!r}")
            elif "withItems" in step:
                items = _subst_tree(step["withItems"], scope)
        except _Unresolved as err:
            return self._node(Node(node_name, step["template"], ERROR, str(err)))
        if items is None:
            return self._run_child(body, scope, node_name)
        if not items:
            return self._node(Node(node_name, step["template"], SKIPPED, "expanded to an empty list"))
        children = [
            self._run_child(body, {**scope, **item_scope(item)}, f"{node_name}{_item_label(i, item)}")
            for i, item in enumerate(items)
        ]
        failed = [c for c in children if c.phase in (FAILED, ERROR) and not _continues(step, c.phase)]
        keys = sorted({k for c in children for k in c.outputs})
        outputs = {
            k: json.dumps(
                [c.outputs.get(k, "") for c in children if k in c.outputs],
                separators=(",", ":"),
                ensure_ascii=False,
            )
            for k in keys
        }
        phase = (ERROR if all(c.phase == ERROR for c in failed) else FAILED) if failed else SUCCEEDED
        message = f"child '{failed[0].name}' failed" if failed else ""
        return self._node(Node(node_name, step["template"], phase, message, outputs))

    def _run_child(self, body: dict, scope: dict[str, str], node_name: str) -> Node:
        try:
            resolved = _subst_tree(body, scope)
            when = resolved.get("when")
            if when is not None and str(when).strip():
                try:
                    go = evaluate_when(str(when))
                except WhenError as err:
                    return self._node(
                        Node(node_name, body["template"], ERROR, f"Invalid 'when' expression: {err}")
                    )
                if not go:
                    return self._node(
                        Node(node_name, body["template"], SKIPPED, f"when '{when}' evaluated false")
                    )
        except _Unresolved as err:
            return self._node(Node(node_name, body["template"], ERROR, str(err)))
        args = {
            p["name"]: _as_param_string(p.get("value", ""))
            for p in ((resolved.get("arguments") or {}).get("parameters") or [])
        }
        for p in (resolved.get("arguments") or {}).get("parameters") or []:
            if "value" not in p:
                raise Unsupported(f"argument {p['name']!r} without a value (valueFrom) is not implemented")
        result = self._execute(body["template"], args, node_name)
        return result

    # ------------------------------------------------------------------ containers
    def _pod_paths(self, tmpl: dict, container: dict) -> list[str]:
        prefixes = list(self.path_prefixes)
        volumes = {v.get("name"): v for v in (self.spec.get("volumes") or []) + (tmpl.get("volumes") or [])}
        for mount in container.get("volumeMounts") or []:
            volume = volumes.get(mount.get("name"))
            if volume is None:
                raise Invalid(f"templates.{tmpl['name']}: volumeMount {mount.get('name')!r} names no volume")
            kinds = set(volume) - {"name"}
            if kinds != {"emptyDir"}:
                raise Unsupported(
                    f"volume {volume.get('name')!r} of kind {sorted(kinds)}: only emptyDir is implemented"
                )
            if mount.get("mountPath") == "/dev/shm":
                self._run.ignored.append(f"templates.{tmpl['name']}.volumeMounts[/dev/shm]")
                continue
            prefixes.append(mount["mountPath"].rstrip("/"))
        return sorted(set(prefixes), key=len, reverse=True)

    def _env(self, container: dict, tmpl_name: str, pod_name: str, home: Path) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            _check_keys(
                f"templates.{tmpl_name}.container.envFrom[]",
                source,
                {"secretRef", "configMapRef", "prefix"},
                set(),
                [],
            )
            for kind, store in (("secretRef", self.secrets), ("configMapRef", self.config_maps)):
                if kind in source:
                    ref = source[kind]
                    if ref.get("name") not in store:
                        if ref.get("optional"):
                            continue
                        raise _PodStartError(
                            f"{kind} {ref.get('name')!r} not found (CreateContainerConfigError)"
                        )
                    for key, value in store[ref["name"]].items():
                        name = source.get("prefix", "") + key
                        if _ENV_NAME.match(name):  # Kubernetes skips keys that are not valid names
                            env[name] = value
        for var in container.get("env") or []:
            _check_keys(
                f"templates.{tmpl_name}.container.env[{var.get('name')}]",
                var,
                {"name", "value", "valueFrom"},
                set(),
                [],
            )
            if "valueFrom" in var:
                ref_from = var["valueFrom"]
                ((kind, ref),) = ref_from.items()
                if kind == "secretKeyRef":
                    store = self.secrets
                elif kind == "configMapKeyRef":
                    store = self.config_maps
                elif kind == "fieldRef" and ref.get("fieldPath") in ("metadata.name", "metadata.namespace"):
                    env[var["name"]] = pod_name if ref["fieldPath"] == "metadata.name" else self.namespace
                    continue
                else:
                    raise Unsupported(
                        f"templates.{tmpl_name}.container.env[{var['name']}].valueFrom.{kind}: not implemented"
                    )
                obj = store.get(ref.get("name"))
                if obj is None or ref.get("key") not in obj:
                    if ref.get("optional"):
                        continue
                    raise _PodStartError(
                        f"{kind} {ref.get('name')}/{ref.get('key')} not found (CreateContainerConfigError)"
                    )
                env[var["name"]] = obj[ref["key"]]
            else:
                env[var["name"]] = k8s_expand(str(var.get("value", "")), env)
        base = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "HOSTNAME": pod_name,
            "LANG": "C.UTF-8",
        }
        return {**base, **env}

    @staticmethod
    def _map_path(text: str, prefixes: list[str], root: Path) -> str:
        """`text` with a pod path (whole, or after `--flag=`) moved under this pod's `root`."""
        head, value = "", text
        if text.startswith("--") and "=" in text:
            head, value = text.split("=", 1)
            head += "="
        for prefix in prefixes:
            if value == prefix or value.startswith(prefix + "/"):
                return f"{head}{root}{value}"
        return text

    def _check_outputs(self, name: str, outputs_spec: dict) -> None:
        for key in outputs_spec:
            if key != "parameters":
                raise Unsupported(f"templates.{name}.outputs.{key}: not implemented")
        for param in outputs_spec.get("parameters") or []:
            where = f"templates.{name}.outputs.parameters[{param.get('name')}]"
            _check_keys(where, param, {"name", "valueFrom", "globalName", "description"}, set(), [])
            source = param.get("valueFrom") or {}
            if "path" not in source or set(source) - {"path", "default"}:
                raise Unsupported(f"{where}: only valueFrom.path (with default) is implemented")

    def _read_outputs(
        self, name: str, outputs_spec: dict, prefixes: list[str], root: Path
    ) -> tuple[dict, str]:
        """The output parameters' values, and an error message ("" if none) for a missing file."""
        outputs: dict[str, str] = {}
        for param in outputs_spec.get("parameters") or []:
            source = param["valueFrom"]
            mapped = self._map_path(source["path"], prefixes, root)
            if mapped == source["path"]:
                raise Unsupported(
                    f"templates.{name}: output path {source['path']!r} is under no pod path {prefixes}"
                )
            path = Path(mapped)
            if path.is_file():
                outputs[param["name"]] = path.read_text(encoding="utf-8").removesuffix("\n")
            elif "default" in source:
                outputs[param["name"]] = _as_param_string(source["default"])
            else:
                return outputs, f"output parameter {param['name']}: {source['path']} not found"
        return outputs, ""

    def _publish(self, outputs_spec: dict, outputs: dict[str, str]) -> None:
        """`globalName`: the value becomes `workflow.outputs.parameters.NAME`."""
        for param in outputs_spec.get("parameters") or []:
            if param.get("globalName"):
                self.globals[f"workflow.outputs.parameters.{param['globalName']}"] = outputs[param["name"]]
                self._run.outputs[param["globalName"]] = outputs[param["name"]]

    def _container(self, tmpl: dict, inputs: dict[str, str], node_name: str) -> Node:
        name = tmpl["name"]
        self._pod_count += 1
        pod_name = f"{self._run.name}-{name}-{self._pod_count}"
        scope = {
            **self.globals,
            "pod.name": pod_name,
            **{f"inputs.parameters.{k}": v for k, v in inputs.items()},
        }
        try:
            resolved = _subst_tree(tmpl, scope, allow=("lastRetry", "retries"))  # retries: not run here
        except _Unresolved as err:
            return self._node(Node(node_name, name, ERROR, str(err)))
        container = resolved["container"]
        ignored = self._run.ignored
        _check_keys(
            f"templates.{name}.container", container, _CONTAINER_HANDLED, _CONTAINER_RECORDED, ignored
        )
        outputs_spec = resolved.get("outputs") or {}
        self._check_outputs(name, outputs_spec)
        _check_pod_spec_patch(name, resolved.get("podSpecPatch"))
        if not container.get("command"):
            raise Unsupported(f"templates.{name}: a container without `command` (the image's entrypoint)")
        pod_dir = self.workdir / f"pod-{self._pod_count:03d}-{name}"
        root, home, work = pod_dir / "root", pod_dir / "home", pod_dir / "work"
        user = (container.get("securityContext") or {}).get("runAsUser")
        non_root = user not in (None, 0, "0")
        if non_root:  # an image's passwd gives such a uid (nobody) no writable home: HOME must stay unwritten
            home = pod_dir / "nonexistent-home"
        prefixes = self._pod_paths(tmpl, container)
        for folder in (*(() if non_root else (home,)), work, *(root / p.lstrip("/") for p in prefixes)):
            folder.mkdir(parents=True, exist_ok=True)  # emptyDirs, or the image's folders
        try:
            env = self._env(container, name, pod_name, home)
        except _PodStartError as err:
            return self._node(Node(node_name, name, ERROR, str(err)))
        container_argv = [
            k8s_expand(str(a), env) for a in [*container["command"], *(container.get("args") or [])]
        ]
        exe = container_argv[0]
        if exe not in self.commands:
            raise Unsupported(f"templates.{name}: command {exe!r} is not mapped to an executable (commands=)")
        env = {k: self._map_path(v, prefixes, root) for k, v in env.items()}
        env["PATH"] = f"{Path(self.commands[exe]).parent}:{env['PATH']}"
        argv = [self.commands[exe], *(self._map_path(a, prefixes, root) for a in container_argv[1:])]
        cwd = work
        if container.get("workingDir"):
            cwd = Path(self._map_path(container["workingDir"], prefixes, root))
            if str(cwd) == container["workingDir"]:
                raise Unsupported(f"templates.{name}: workingDir {container['workingDir']!r} is no pod path")
        deadline = resolved.get("activeDeadlineSeconds")
        timeout = float(deadline) if deadline not in (None, "") else None
        started = time.monotonic()
        try:
            proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
            exit_code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
            phase = SUCCEEDED if exit_code == 0 else FAILED
            message = "" if exit_code == 0 else f"Error (exit code {exit_code})"
        except subprocess.TimeoutExpired as err:
            exit_code, phase, stdout, stderr = None, FAILED, _text(err.stdout), _text(err.stderr)
            message = f"Pod was active on the node longer than the specified deadline ({timeout:g} s)"
        seconds = time.monotonic() - started
        notes = []
        if non_root and home.exists():
            notes.append(f"wrote under HOME ({home}), which uid {user} of runAsUser cannot write in a pod")
        outputs, missing = self._read_outputs(name, outputs_spec, prefixes, root)
        if missing and phase == SUCCEEDED:
            phase, message = ERROR, missing
        if phase == SUCCEEDED:
            self._publish(outputs_spec, outputs)
        pod = PodRun(
            node=node_name, template=name, pod_name=pod_name, image=container.get("image"), argv=argv,
            container_argv=container_argv, env=env, exit_code=exit_code, phase=phase, message=message,
            stdout=stdout[-TAIL:], stderr=stderr[-TAIL:], seconds=seconds, outputs=outputs,
            retry_strategy=resolved.get("retryStrategy"),
            labels=dict((resolved.get("metadata") or {}).get("labels") or {}), pod_dir=pod_dir, notes=notes,
        )  # fmt: skip
        self._run.pods.append(pod)
        if self.stream:
            print(f"[argo_runner] {name} {phase} {seconds:.1f}s {' '.join(container_argv[1:])}", flush=True)
        return self._node(Node(node_name, name, phase, message, outputs, exit_code))

    # ------------------------------------------------------------------ resources
    def _resource(self, tmpl: dict, inputs: dict[str, str], node_name: str) -> Node:
        name = tmpl["name"]
        scope = {**self.globals, **{f"inputs.parameters.{k}": v for k, v in inputs.items()}}
        try:
            resolved = _subst_tree(tmpl, scope, allow=("lastRetry", "retries"))
        except _Unresolved as err:
            return self._node(Node(node_name, name, ERROR, str(err)))
        resource = resolved["resource"]
        _check_keys(
            f"templates.{name}.resource",
            resource,
            {"action", "manifest", "successCondition", "failureCondition", "setOwnerReference"},
            set(),
            self._run.ignored,
        )
        if resource.get("action") != "create":
            raise Unsupported(f"templates.{name}.resource.action {resource.get('action')!r}: only create")
        if resolved.get("outputs"):
            raise Unsupported(f"templates.{name}.outputs: outputs of a resource template are not implemented")
        try:
            obj = yaml.safe_load(resource.get("manifest") or "")
        except yaml.YAMLError as err:
            message = f"resource manifest is not valid YAML after substitution: {_line(str(err))}"
            return self._node(Node(node_name, name, ERROR, message))
        if not isinstance(obj, dict) or (obj.get("apiVersion"), obj.get("kind")) != ("ray.io/v1", "RayJob"):
            kind = (obj or {}).get("kind") if isinstance(obj, dict) else obj
            raise Unsupported(f"templates.{name}: a resource of kind {kind!r}; only ray.io/v1 RayJob")
        problems = _rayjob_problems(obj)
        if problems:
            return self._node(Node(node_name, name, ERROR, f"RayJob refused: {problems[0]}"))
        meta = obj.setdefault("metadata", {})
        meta.setdefault("name", f"{meta.get('generateName', '')}{_random.token_hex(3)[:5]}")
        meta["namespace"] = self.namespace
        self._run.resources.append(obj)
        spec = obj.get("spec") or {}
        for key in ("clusterSelector", "suspend"):
            if spec.get(key):
                raise Unsupported(f"templates.{name}: RayJob spec.{key}")
        head = spec["rayClusterSpec"]["headGroupSpec"]["template"]
        status = self._run_head(name, node_name, obj, head, resolved)
        obj["status"] = status
        failure = _requirements(resource.get("failureCondition", ""))
        success = _requirements(resource.get("successCondition", ""))
        for requirement in failure:  # Argo's executor: any failure requirement that holds fails the step
            if _requirement_holds(requirement, obj):
                message = f"failure condition '{requirement[3]}' evaluated true"
                return self._node(Node(node_name, name, FAILED, message))
        if all(_requirement_holds(requirement, obj) for requirement in success):
            return self._node(Node(node_name, name, SUCCEEDED))
        message = "neither the success nor the failure condition matched: Argo would wait until the deadline"
        return self._node(Node(node_name, name, ERROR, message))

    def _run_head(self, name: str, node_name: str, obj: dict, head: dict, resolved: dict) -> dict:
        """Run the RayJob's entrypoint as the head's process; the status KubeRay would give the RayJob."""
        self._pod_count += 1
        pod_name = f"{obj['metadata']['name']}-head"
        pod_spec = head.get("spec") or {}
        container = (pod_spec.get("containers") or [{}])[0]
        pod_dir = self.workdir / f"pod-{self._pod_count:03d}-{name}"
        root, home, work = pod_dir / "root", pod_dir / "home", pod_dir / "work"
        folders: dict[str, Path] = {}
        volumes = {v.get("name"): v for v in pod_spec.get("volumes") or []}
        for mount in container.get("volumeMounts") or []:
            volume = volumes.get(mount.get("name")) or {}
            if mount.get("mountPath") == "/dev/shm":
                continue
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"].get("claimName") or ""
                if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", claim):
                    raise Invalid(f"templates.{name}: RayJob claimName {claim!r} is no object name")
                folders[mount["mountPath"].rstrip("/")] = self.workdir / "claims" / claim
            elif set(volume) - {"name"} == {"emptyDir"}:
                folders[mount["mountPath"].rstrip("/")] = root / mount["mountPath"].lstrip("/")
            else:
                raise Unsupported(f"templates.{name}: RayJob volume {volume!r}: only emptyDir and PVC")
        for folder in (home, work, *folders.values()):
            folder.mkdir(parents=True, exist_ok=True)
        try:
            env = self._env(container, name, pod_name, home)
        except _PodStartError as err:
            return {"jobDeploymentStatus": "Failed", "reason": "SubmissionFailed", "message": str(err)}
        env["RAY_ADDRESS"] = f"{obj['metadata']['name']}-head-svc.{self.namespace}.svc:6379"

        def mapped(text: str) -> str:
            for prefix in sorted(folders, key=len, reverse=True):
                if text == prefix or text.startswith(prefix + "/"):
                    return str(folders[prefix]) + text[len(prefix) :]
            return text

        submitted = shlex.split(obj["spec"]["entrypoint"])  # the submitter's bash
        container_argv = shlex.split(subprocess.list2cmdline(submitted))  # Ray joins them; the head's shell
        exe = container_argv[0]
        if exe not in self.commands:
            raise Unsupported(
                f"templates.{name}: entrypoint {exe!r} is not mapped to an executable (commands=)"
            )
        env = {k: mapped(v) for k, v in env.items()}
        env["PATH"] = f"{Path(self.commands[exe]).parent}:{env['PATH']}"
        argv = [self.commands[exe], *(mapped(a) for a in container_argv[1:])]
        deadlines = [obj["spec"].get("activeDeadlineSeconds"), resolved.get("activeDeadlineSeconds")]
        timeout = min((float(d) for d in deadlines if d not in (None, "")), default=None)
        started = time.monotonic()
        try:
            proc = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
            exit_code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
            status = {
                "jobDeploymentStatus": "Complete" if exit_code == 0 else "Failed",
                "jobStatus": "SUCCEEDED" if exit_code == 0 else "FAILED",
                **({} if exit_code == 0 else {"reason": "AppFailed"}),
                "message": "Job finished successfully." if exit_code == 0 else f"exit code {exit_code}",
            }
            phase = SUCCEEDED if exit_code == 0 else FAILED
        except subprocess.TimeoutExpired as err:
            exit_code, stdout, stderr = None, _text(err.stdout), _text(err.stderr)
            status = {"jobDeploymentStatus": "Failed", "jobStatus": "RUNNING", "reason": "DeadlineExceeded"}
            phase = FAILED
        seconds = time.monotonic() - started
        pod = PodRun(
            node=node_name, template=name, pod_name=pod_name, image=container.get("image"), argv=argv,
            container_argv=container_argv, env=env, exit_code=exit_code, phase=phase,
            message=status.get("message", status.get("reason", "")), stdout=stdout[-TAIL:], stderr=stderr[-TAIL:],
            seconds=seconds, retry_strategy=resolved.get("retryStrategy"),
            labels=dict((head.get("metadata") or {}).get("labels") or {}), pod_dir=pod_dir,
        )  # fmt: skip
        self._run.pods.append(pod)
        if self.stream:
            print(
                f"[argo_runner] {name} (RayJob head) {phase} {seconds:.1f}s {' '.join(container_argv)}",
                flush=True,
            )
        return status


_COMPARE = re.compile(r"([\w.-]+)\s*(==|!=|=)\s*(\S*)")
_SET = re.compile(r"([\w.-]+)\s+(in|notin)\s+\((.*)\)")
_KEY = re.compile(r"(!?)\s*([\w.-]+)")


def _requirements(condition: str) -> list[tuple[str, str, list[str], str]]:
    """Argo's success/failure condition: label-selector requirements over JSON paths, comma-separated
    (commas inside `in (...)` belong to the value list): (path, operator, values, its text)."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(condition + ","):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            if condition[start:index].strip():
                parts.append(condition[start:index].strip())
            start = index + 1
    found = []
    for text in parts:
        if match := _SET.fullmatch(text):
            found.append((match[1], match[2], [v.strip() for v in match[3].split(",") if v.strip()], text))
        elif match := _COMPARE.fullmatch(text):
            found.append((match[1], match[2], [match[3]], text))
        elif match := _KEY.fullmatch(text):
            found.append((match[2], "!" if match[1] else "exists", [], text))
        else:
            raise Unsupported(f"condition {text!r}: not a label-selector requirement")
    return found


def _requirement_holds(requirement: tuple[str, str, list[str], str], obj: dict) -> bool:
    """labels.Requirement.Matches over the object's JSON (gjson path lookup; a number or bool as its text)."""
    path, op, values, _ = requirement
    here: Any = obj
    for part in path.split("."):
        here = here.get(part) if isinstance(here, dict) else None
    present = here is not None
    text = here if isinstance(here, str) else _compact(here) if present else ""
    if op in ("==", "=", "in"):
        return present and text in values
    if op in ("!=", "notin"):
        return not present or text not in values
    return present if op == "exists" else not present


def _rayjob_problems(obj: dict) -> list[str]:
    """KubeRay's schema's complaints about a RayJob (none when ../shared/data is absent)."""
    from chart.k8s_checks import rayjob_errors, schemas_available

    return [] if schemas_available() else rayjob_errors(obj)


def _line(text: str) -> str:
    return " ".join(text.split())[:300]


_PATCH_CONTAINER_SAFE = {"name", "resources", "securityContext", "imagePullPolicy"}


def _check_pod_spec_patch(name: str, patch: Any) -> None:
    """A podSpecPatch may place and size a pod (recorded); one that changes what the container runs is refused."""
    if patch in (None, ""):
        return
    try:
        body = yaml.safe_load(patch) if isinstance(patch, str) else patch
    except yaml.YAMLError as err:
        raise Invalid(f"templates.{name}.podSpecPatch is not JSON/YAML after substitution: {err}") from err
    if not isinstance(body, dict):
        raise Invalid(f"templates.{name}.podSpecPatch is not a mapping: {body!r}")
    for key in ("initContainers", "ephemeralContainers"):
        if key in body:
            raise Unsupported(f"templates.{name}.podSpecPatch.{key}: not implemented")
    for container in body.get("containers") or []:
        extra = set(container) - _PATCH_CONTAINER_SAFE
        if extra:
            raise Unsupported(f"templates.{name}.podSpecPatch changes the container's {sorted(extra)}")


def _continues(step: dict, phase: str) -> bool:
    cont = step.get("continueOn") or {}
    return bool(cont.get("failed")) if phase == FAILED else bool(cont.get("error"))


def _as_param_string(value: Any) -> str:
    """A parameter's value is a string in Argo (AnyString): YAML numbers and bools as their text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _compact(value)
    raise Invalid(f"a parameter value must be a string, number or bool, got {value!r}")


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", "replace")


def remove_pod_dirs(run: WorkflowRun) -> None:
    """Delete the per-pod folders of a run (they hold caches of checkpoints)."""
    for pod in run.pods:
        if pod.pod_dir is not None:
            shutil.rmtree(pod.pod_dir, ignore_errors=True)


__all__ = [
    "ERROR", "FAILED", "SKIPPED", "SUCCEEDED", "ArgoRunner", "Invalid", "Node", "PodRun", "Unsupported",
    "WorkflowRun", "evaluate_when", "item_scope", "k8s_expand", "load_workflow_template", "remove_pod_dirs",
    "substitute",
]  # fmt: skip
