"""A contract double, not a cluster: a loopback HTTP server speaking just enough of two APIs for our client.

- The Kubernetes API's custom resources `argoproj.io/v1alpha1` workflows and workflowtemplates:
  GET one, LIST (with `labelSelector`), POST (with `generateName`), PATCH (`application/merge-patch+json`).
- The Argo Server paths Hera's `WorkflowsService` calls for the same operations (`/api/v1/workflows/...`,
  `/api/v1/workflow-templates/...`, `PUT .../terminate` and `.../stop`).

Every request must carry `Authorization: Bearer <token>` (401 otherwise); `forbid(verb, resource)` makes one
operation answer 403 as RBAC would. Every created Workflow is validated against the vendored Argo JSON schema
(the `Workflow` definition) plus a walk that rejects keys the schema does not know (the schema itself allows
any): an invalid body is answered 422 and not stored. No controller runs: tests set `status` themselves
(`set_status`) to simulate progress. It listens on 127.0.0.1 only, on an ephemeral port, in a thread.
"""

from __future__ import annotations

import copy
import itertools
import json
import secrets
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from chart.k8s_checks import ARGO_SCHEMA, ARGO_SCHEMA_MISSING, unknown_keys, validator

SCHEMA_MISSING = ARGO_SCHEMA_MISSING
"""Why the double cannot validate bodies here, or None. Without the schema it still plays the API (RBAC,
dry runs, labels, status), so submit and status are tested on a bare clone; the test of its validation skips."""
DEFINITION = "io.argoproj.workflow.v1alpha1.{kind}"
K8S_PREFIX = "/apis/argoproj.io/v1alpha1/namespaces/"
TOKEN = "double-token"


@cache
def _schema() -> dict[str, Any]:
    return json.loads(ARGO_SCHEMA.read_text(encoding="utf-8"))


def schema_problems(body: dict[str, Any], kind: str = "Workflow") -> list[str]:
    """Every reason the Argo schema (and the unknown-key walk) refuses `body` as a `kind` (none without it)."""
    if SCHEMA_MISSING:
        return []
    name, schema = DEFINITION.format(kind=kind), _schema()
    problems = [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
        for error in validator(schema, name).iter_errors(body)
    ]
    problems += [f"{path}: unknown field" for path in unknown_keys(schema, body, schema["definitions"][name])]
    return problems


def minimal_template(parameters: tuple[str, ...] = ("study", "score-chunk")) -> dict[str, Any]:
    """A WorkflowTemplate `rpt-transfer-study` declaring the contract's parameters (for namespaces of tests)."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": "rpt-transfer-study"},
        "spec": {
            "entrypoint": "study",
            "arguments": {"parameters": [{"name": name} for name in parameters]},
            "templates": [{"name": "study", "steps": []}],
        },
    }


def _matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


@dataclass
class Seen:
    """One request the double answered."""

    method: str
    path: str
    body: Any
    status: int


class K8sDouble:
    """The server and its objects; start with `with K8sDouble() as double:`."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.templates: dict[tuple[str, str], dict[str, Any]] = {}
        self.workflows: dict[tuple[str, str], dict[str, Any]] = {}
        self.seen: list[Seen] = []
        self.forbidden: set[tuple[str, str]] = set()
        self.before_get: list[Any] = []
        """Callables `(double, namespace, name)` run before each GET of one Workflow: a scripted controller."""
        self.lock = threading.Lock()
        self._clock = itertools.count()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT"""
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> K8sDouble:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    # -- what tests arrange and look at ----------------------------------------------------------------

    def add_template(self, namespace: str, template: dict[str, Any] | None = None) -> None:
        """Install a WorkflowTemplate (default: `minimal_template()`) in a namespace."""
        body = copy.deepcopy(template or minimal_template())
        problems = schema_problems(body, "WorkflowTemplate")
        assert not problems, problems
        body["metadata"]["namespace"] = namespace
        self.templates[(namespace, body["metadata"]["name"])] = body

    def forbid(self, verb: str, resource: str) -> None:
        """Answer 403 to `verb` on `resource` (as a Role without that rule would)."""
        self.forbidden.add((verb, resource))

    def posts(self, dry: bool | None = None) -> list[Seen]:
        """Requests that tried to create something (whatever the answer); `dry`: only dry runs, or none."""
        posts = [seen for seen in self.seen if seen.method == "POST"]
        if dry is None:
            return posts
        return [seen for seen in posts if _is_dry(seen) == dry]

    def add_workflow(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Store a Workflow as if created (validated), returning it with its name and timestamps."""
        with self.lock:
            problems = schema_problems(body)
            assert not problems, problems
            return self._create(namespace, body)

    def set_status(self, namespace: str, name: str, phase: str, nodes: dict[str, Any] | None = None) -> None:
        """What the controller would write: phase, nodes, times, and the completed label once final."""
        with self.lock:
            workflow = self.workflows[(namespace, name)]
            status = workflow.setdefault("status", {})
            status.update(phase=phase, startedAt=status.get("startedAt") or self._now())
            if nodes is not None:
                status["nodes"] = copy.deepcopy(nodes)
            if phase in ("Succeeded", "Failed", "Error"):
                status["finishedAt"] = self._now()
                workflow["metadata"]["labels"]["workflows.argoproj.io/completed"] = "true"
            workflow["metadata"]["resourceVersion"] = str(next(self._clock) + 1000)

    def write_kubeconfig(self, path: Path, namespace: str | None = None, token: str | None = None) -> Path:
        """A kubeconfig pointing at the double with token auth (and the context's namespace, if given)."""
        context: dict[str, Any] = {"cluster": "double", "user": "tester"}
        if namespace:
            context["namespace"] = namespace
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "double", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": token or self.token}}],
            "contexts": [{"name": "double", "context": context}],
            "current-context": "double",
        }
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    # -- what the server does -------------------------------------------------------------------------

    def _now(self) -> str:
        return f"2026-12-06T20:{next(self._clock) % 60:02d}:00Z"

    def _create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        workflow = copy.deepcopy(body)
        meta = workflow.setdefault("metadata", {})
        name = meta.get("name") or meta["generateName"] + secrets.token_hex(3)[:5]
        meta.update(
            name=name,
            namespace=namespace,
            uid=secrets.token_hex(8),
            resourceVersion=str(next(self._clock) + 1000),
            creationTimestamp=f"2026-12-06T10:{len(self.workflows) // 60:02d}:{len(self.workflows) % 60:02d}Z",
        )
        meta.setdefault("labels", {})
        self.workflows[(namespace, name)] = workflow
        return workflow

    def handle(self, method: str, raw_path: str, headers: Any, body: Any) -> tuple[int, Any]:
        """(status, JSON answer) for one request."""
        if headers.get("Authorization") != f"Bearer {self.token}":
            return 401, _k8s_status(401, "Unauthorized", "Unauthorized")
        url = urlsplit(raw_path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        if url.path.startswith(K8S_PREFIX):
            return self._kubernetes(method, url.path[len(K8S_PREFIX) :].split("/"), query, headers, body)
        if url.path.startswith("/api/v1/"):
            return self._argo_server(method, url.path[len("/api/v1/") :].split("/"), query, body)
        return 404, _k8s_status(404, "NotFound", f"the double does not serve {url.path}")

    def _kubernetes(
        self, method: str, parts: list[str], query: dict, headers: Any, body: Any
    ) -> tuple[int, Any]:
        namespace, plural, name = parts[0], parts[1], (parts[2] if len(parts) > 2 else None)
        verb = {"GET": "get" if name else "list", "POST": "create", "PATCH": "patch"}.get(method, method)
        if (verb, plural) in self.forbidden:
            message = (
                f'{plural}.argoproj.io is forbidden: User "tester" cannot {verb} resource "{plural}" in API '
                f'group "argoproj.io" in the namespace "{namespace}"'
            )
            return 403, _k8s_status(403, "Forbidden", message)
        if verb == "patch" and headers.get("Content-Type") != "application/merge-patch+json":
            return 415, _k8s_status(415, "UnsupportedMediaType", "the double takes merge patches only")
        dry = query.get("dryRun") == "All"
        status, answer = self._operate(
            verb, plural, namespace, name, query.get("labelSelector", ""), body, dry
        )
        if status >= 400:
            reason = {404: "NotFound", 422: "Invalid"}.get(status, "BadRequest")
            return status, _k8s_status(status, reason, answer)
        return status, answer

    def _argo_server(self, method: str, parts: list[str], query: dict, body: Any) -> tuple[int, Any]:
        plural = {"workflows": "workflows", "workflow-templates": "workflowtemplates"}.get(parts[0], parts[0])
        namespace, name = parts[1], (parts[2] if len(parts) > 2 else None)
        action = parts[3] if len(parts) > 3 else None
        dry = False
        if method == "PUT" and action in ("terminate", "stop"):
            verb, body = "patch", {"spec": {"shutdown": action.capitalize()}}
        else:
            verb = {"GET": "get" if name else "list", "POST": "create"}.get(method, method)
            dry = verb == "create" and bool((body or {}).get("serverDryRun"))
            body = (body or {}).get("workflow") if verb == "create" else body
        if (verb, plural) in self.forbidden:
            return 403, {"code": 7, "message": f'User "tester" cannot {verb} resource "{plural}"'}
        selector = query.get("listOptions.labelSelector", "")
        status, answer = self._operate(verb, plural, namespace, name, selector, body, dry)
        if status >= 400:
            return status, {"code": {404: 5, 422: 3}.get(status, 2), "message": answer}
        return status, answer

    def _operate(
        self, verb: str, plural: str, namespace: str, name: str | None, selector: str, body: Any, dry: bool
    ) -> tuple[int, Any]:
        objects = self.templates if plural == "workflowtemplates" else self.workflows
        if verb == "get" and plural == "workflows":
            for hook in list(self.before_get):
                hook(self, namespace, name)
        with self.lock:
            if verb == "get":
                found = objects.get((namespace, name or ""))
                if found is None:
                    return 404, f'{plural}.argoproj.io "{name}" not found'
                return 200, copy.deepcopy(found)
            if verb == "list":
                items = [
                    copy.deepcopy(obj)
                    for (ns, _), obj in objects.items()
                    if ns == namespace and _matches(obj["metadata"].get("labels") or {}, selector)
                ]
                listing = {"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowList", "items": items}
                return 200, {**listing, "metadata": {"resourceVersion": str(next(self._clock) + 1000)}}
            if verb == "create" and plural == "workflows":
                problems = schema_problems(body) if isinstance(body, dict) else ["the body is not an object"]
                meta = (body or {}).get("metadata") or {}
                if not (meta.get("name") or meta.get("generateName")):
                    problems.append("metadata: name or generateName is required")
                if problems:
                    return 422, f"Workflow.argoproj.io is invalid: {'; '.join(problems)}"
                if dry:  # validated and authorised, not stored (a server-side dry run)
                    return 201, {
                        **copy.deepcopy(body),
                        "metadata": {**meta, "name": meta.get("generateName", "")},
                    }
                return 201, copy.deepcopy(self._create(namespace, body))
            if verb == "patch" and plural == "workflows":
                key = (namespace, name or "")
                if key not in objects:
                    return 404, f'workflows.argoproj.io "{name}" not found'
                objects[key] = _merge(objects[key], body)
                return 200, copy.deepcopy(objects[key])
        return 405, f"the double does not {verb} {plural}"


def _is_dry(seen: Seen) -> bool:
    return "dryRun=All" in seen.path or bool(isinstance(seen.body, dict) and seen.body.get("serverDryRun"))


def _k8s_status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _handler(double: K8sDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            status, answer = double.handle(self.command, self.path, self.headers, body)
            with double.lock:
                double.seen.append(Seen(self.command, self.path, body, status))
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = _serve

        def log_message(self, *_: object) -> None:
            pass

    return Handler


# -- Workflow status as the controller writes it (for tests to simulate progress) -------------------------


def pod_node(
    workflow: str, name: str, template: str, phase: str, part: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A Pod node, its id as Argo makes them (workflow name and a hash of the node name)."""
    node = {
        "id": f"{workflow}-{abs(hash(name)) % 10**10}",
        "name": name,
        "displayName": name.rsplit(".", 1)[-1],
        "type": "Pod",
        "templateName": template,
        "phase": phase,
        "startedAt": extra.pop("startedAt", "2026-12-06T20:00:00Z"),
    }
    if part is not None:
        node["inputs"] = {"parameters": [{"name": "part", "value": part}]}
    node.update(extra)
    return node


def retry_node(
    workflow: str, name: str, template: str, phase: str, attempts: list[dict[str, Any]]
) -> dict[str, Any]:
    """A Retry node over its attempts (pod nodes named `<name>(0)`, `<name>(1)`...)."""
    return {
        "id": f"{workflow}-{abs(hash(name)) % 10**10}",
        "name": name,
        "displayName": name.rsplit(".", 1)[-1],
        "type": "Retry",
        "templateName": template,
        "phase": phase,
        "children": [attempt["id"] for attempt in attempts],
    }


def nodes_of(*nodes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A `status.nodes` map."""
    return {node["id"]: node for node in nodes}


# -- fixtures and helpers the test modules share -----------------------------------------------------------

NAMESPACE = "rpt"
_CLUSTER_VARIABLES = ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "ARGO_SERVER", "ARGO_TOKEN", "ARGO_NAMESPACE")


@pytest.fixture(name="double")
def double_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[K8sDouble]:
    """A started double with the WorkflowTemplate in namespace `rpt`; no cluster variable of the host leaks in."""
    for name in _CLUSTER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", "/nonexistent-home")  # no ~/.kube/config of the host either
    with K8sDouble() as started:
        started.add_template(NAMESPACE)
        yield started


@pytest.fixture(name="kube")
def kube_fixture(double: K8sDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """KUBECONFIG pointing at the double (token auth; its context names no namespace)."""
    path = double.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


@pytest.fixture(name="study_file")
def study_file_fixture(s3_store_uri: str, tmp_path: Path) -> Path:
    """The tiny study (two tiny models, smoke benchmarks) on a fresh moto bucket, MLflow off."""
    from conftest import tiny_study, write_study

    return write_study(tmp_path / "mini.yaml", tiny_study(s3_store_uri, tracking_uri="none"))


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `rpt-transfer ARGS` in this process (as `main` does: user errors one line, exit 2)."""
    from rpt_transfer.cli import main

    capsys.readouterr()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["rpt-transfer", *args])
        try:
            main()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err
