"""Talking to Argo Workflows: the Kubernetes API (default) or an Argo Server, behind one small protocol.

The default is the Kubernetes API itself, through the official `kubernetes` client: Workflows and
WorkflowTemplates are custom resources, so creating, listing, reading and stopping them needs no Argo Server,
works with any kubeconfig (`KUBECONFIG`, else ~/.kube/config) and, inside a pod, with its service account.
The RBAC it needs in the namespace: `create`, `get`, `list`, `patch` on `workflows.argoproj.io` and `get` on
`workflowtemplates.argoproj.io`. Where only an Argo Server is reachable (`ARGO_SERVER` or `--argo-server`,
token `ARGO_TOKEN`), Hera's `WorkflowsService` does the same over its HTTP API.

Both clients return plain dicts (the resources' JSON) and turn every failure into one-line `RptError`s that
say what was refused and what would fix it. Both libraries are imported only when a client is made.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol

from rpt_transfer.errors import RptError
from rpt_transfer.hashing import short_hash

TEMPLATE_NAME = "rpt-transfer-study"
"""The WorkflowTemplate every submitted Workflow refers to (the chart or `workflows/` installs it)."""
STUDY_LABEL = "rpt-transfer.io/study"
"""Label naming the study of a submitted Workflow; `submit` and `status` find a study's Workflows by it."""
COMPLETED_LABEL = "workflows.argoproj.io/completed"
"""Label the Argo controller sets to "true" on a Workflow that has finished."""
POD_NAME_ANNOTATION = "workflows.argoproj.io/pod-name-format"
GROUP, VERSION = "argoproj.io", "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
ARGO_SERVER_ENV, ARGO_TOKEN_ENV, ARGO_NAMESPACE_ENV = "ARGO_SERVER", "ARGO_TOKEN", "ARGO_NAMESPACE"
FINISHED_PHASES = frozenset({"Succeeded", "Failed", "Error"})
TIMEOUT = (5.0, 30.0)
"""Seconds to connect and to read one answer: an unreachable cluster is one line, not a hang."""
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
RBAC = "create, get, list, patch on workflows.argoproj.io and get on workflowtemplates.argoproj.io"
Shutdown = Literal["Stop", "Terminate"]


class WorkflowClient(Protocol):
    """What `submit`, `status` and the Argo executor need from a cluster, in one namespace."""

    namespace: str
    where: str
    """Where the client talks to, for messages: "Kubernetes API at https://..." or "Argo Server at ..."."""

    def get_template(self, name: str = TEMPLATE_NAME) -> dict[str, Any]:
        """The WorkflowTemplate; RptError naming how to install it when the namespace lacks it."""
        ...

    def create_workflow(self, body: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        """Create a Workflow; returns it as created (with its generated name).

        `dry_run` asks the server to check it (schema, admission, RBAC) without creating anything.
        """
        ...

    def list_workflows(self, label_selector: str) -> list[dict[str, Any]]:
        """Workflows of the namespace that match a label selector (`key=value,...`)."""
        ...

    def get_workflow(self, name: str) -> dict[str, Any]:
        """One Workflow with its status."""
        ...

    def shutdown(self, name: str, how: Shutdown = "Terminate") -> dict[str, Any]:
        """Set `spec.shutdown`: Stop runs exit handlers, Terminate does not; running pods are killed."""
        ...


def is_finished(workflow: dict[str, Any]) -> bool:
    """A Workflow that will not run any more pods: a final phase, or the controller's completed label."""
    labels = workflow.get("metadata", {}).get("labels") or {}
    phase = (workflow.get("status") or {}).get("phase", "")
    return phase in FINISHED_PHASES or labels.get(COMPLETED_LABEL) == "true"


def newest(workflows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The most recently created Workflow (ISO timestamps sort as text; the name breaks ties)."""
    return max(
        workflows,
        key=lambda w: (w["metadata"].get("creationTimestamp") or "", w["metadata"].get("name", "")),
        default=None,
    )


def workflow_body(study: str, spec_uri: str, score_chunk: int | None = None) -> dict[str, Any]:
    """The Workflow `submit` creates: the study's label and spec URI on top of the installed template."""
    parameters = [{"name": "study", "value": spec_uri}]
    if score_chunk is not None:
        parameters.append({"name": "score-chunk", "value": str(score_chunk)})
    return {
        "apiVersion": API_VERSION,
        "kind": "Workflow",
        "metadata": {"generateName": f"{_dns_name(study)}-", "labels": {STUDY_LABEL: study_label(study)}},
        "spec": {"workflowTemplateRef": {"name": TEMPLATE_NAME}, "arguments": {"parameters": parameters}},
    }


def study_label(study: str) -> str:
    """The study's name as a label value, which must end with a letter or digit (a study name may not).

    A name that is not a valid label value as it stands gets a short hash of itself in place of its ragged
    end, so two studies never share a label and the same study always finds its own Workflows.
    """
    if study[-1].isalnum():
        return study
    return f"{study.rstrip('-_.')[:52]}-{short_hash(study)[:10]}"


def study_selector(study: str) -> str:
    """The label selector of a study's Workflows (what `submit` and `status` list)."""
    return f"{STUDY_LABEL}={study_label(study)}"


def _dns_name(study: str) -> str:
    """A study name as a Workflow name prefix: lowercase letters, digits and '-' (pod labels take 63)."""
    cleaned = "".join(c if c.isalnum() or c == "-" else "-" for c in study.lower())
    return cleaned[:50].strip("-") or "study"


def connect(namespace: str | None = None, argo_server: str | None = None) -> WorkflowClient:
    """The Argo Server client when a URL is given (or ARGO_SERVER is set), else the Kubernetes API client."""
    server = argo_server or os.environ.get(ARGO_SERVER_ENV)
    if server:
        return ArgoServerClient(server, os.environ.get(ARGO_TOKEN_ENV), namespace)
    return KubernetesClient(namespace)


def _refused(status: int, verb: str, resource: str, namespace: str, where: str, detail: str) -> RptError:
    """One line for an HTTP refusal of `verb` on `resource`, saying what would fix it."""
    doing = f"{verb} {resource} in namespace {namespace}"
    if status == 401:
        return RptError(
            f"{where} did not accept the credentials to {doing} (401 Unauthorized): the token is missing, "
            "expired or wrong; log in again or renew the kubeconfig's (or ARGO_TOKEN's) token"
        )
    if status == 403:
        return RptError(
            f"{where} forbids {doing} (403 Forbidden): the user or service account needs RBAC `{verb}` on "
            f"`{resource}.{GROUP}` in namespace {namespace} (submit and status need {RBAC})"
        )
    if status == 404 and resource == "workflowtemplates":
        return RptError(
            f"namespace {namespace} has no WorkflowTemplate {TEMPLATE_NAME} ({where}): install the chart, "
            f"or `kubectl apply -n {namespace} -f workflows/`"
        )
    if status == 404 and verb == "list":
        return RptError(
            f"{where} has no {resource}.{GROUP} resource (404): install Argo Workflows v4 in the cluster"
        )
    return RptError(f"{where} refused to {doing} ({status}): {detail}")


class KubernetesClient:
    """Workflows as custom resources through the Kubernetes API (kubeconfig or in-cluster service account)."""

    def __init__(self, namespace: str | None = None) -> None:
        """Load the kubeconfig (or the pod's service account); the namespace defaults to its context's."""
        try:
            from kubernetes import client
        except ImportError as err:  # pragma: no cover - the cluster extra is missing
            raise RptError(
                f"the Kubernetes client is not installed ({err}): pip install 'rpt-transfer[cluster]'"
            ) from None
        configuration = client.Configuration()
        configuration.retries = 1
        default_namespace, self.source = _load_configuration(configuration)
        self.namespace = namespace or default_namespace or "default"
        self.where = f"Kubernetes API at {configuration.host}"
        self.api = client.CustomObjectsApi(client.ApiClient(configuration))

    @contextmanager
    def _asking(self, verb: str, resource: str) -> Iterator[None]:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            yield
        except ApiException as err:
            detail = _status_message(err.body) or str(err.reason)
            raise _refused(err.status or 0, verb, resource, self.namespace, self.where, detail) from None
        except (HTTPError, OSError) as err:
            raise RptError(
                f"{self.where} cannot be reached to {verb} {resource} ({type(err).__name__}: "
                f"{_last_reason(err)}); check that the cluster is up and that {self.source} names it"
            ) from None

    def _call(self, verb: str, resource: str, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        with self._asking(verb, resource):
            result = getattr(self.api, method)(
                GROUP, VERSION, self.namespace, resource, *args, _request_timeout=TIMEOUT, **kwargs
            )
        return dict(result)

    def get_template(self, name: str = TEMPLATE_NAME) -> dict[str, Any]:
        """The WorkflowTemplate; RptError naming how to install it when the namespace lacks it."""
        return self._call("get", "workflowtemplates", "get_namespaced_custom_object", name)

    def create_workflow(self, body: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        """Create a Workflow (or only check it: a server-side dry run); returns it as created."""
        dry = {"dry_run": "All"} if dry_run else {}
        return self._call("create", "workflows", "create_namespaced_custom_object", body, **dry)

    def list_workflows(self, label_selector: str) -> list[dict[str, Any]]:
        """Workflows of the namespace that match a label selector."""
        found = self._call(
            "list", "workflows", "list_namespaced_custom_object", label_selector=label_selector
        )
        return list(found.get("items") or [])

    def get_workflow(self, name: str) -> dict[str, Any]:
        """One Workflow with its status."""
        return self._call("get", "workflows", "get_namespaced_custom_object", name)

    def shutdown(self, name: str, how: Shutdown = "Terminate") -> dict[str, Any]:
        """Merge-patch `spec.shutdown`, as `argo stop` / `argo terminate` do."""
        patch = {"spec": {"shutdown": how}}
        return self._call("patch", "workflows", "patch_namespaced_custom_object", name, patch)


def _load_configuration(configuration: Any) -> tuple[str | None, str]:
    """Fill `configuration` from the kubeconfig, else the pod's service account; (namespace, source)."""
    from kubernetes import config

    files = os.environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())
    if any(Path(path).expanduser().is_file() for path in files.split(os.pathsep) if path):
        try:
            config.load_kube_config(config_file=files, client_configuration=configuration)
            _, active = config.list_kube_config_contexts(config_file=files)
        except (config.ConfigException, OSError, ValueError) as err:
            raise RptError(f"kubeconfig {files}: {err}") from None
        return (active or {}).get("context", {}).get("namespace"), f"kubeconfig {files}"
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException as err:
            raise RptError(f"in-cluster Kubernetes configuration: {err}") from None
        namespace = (
            SERVICE_ACCOUNT_NAMESPACE.read_text().strip() if SERVICE_ACCOUNT_NAMESPACE.is_file() else None
        )
        return namespace, "the pod's service account"
    named = f"KUBECONFIG={files}" if os.environ.get("KUBECONFIG") else f"KUBECONFIG is unset and {files}"
    raise RptError(
        f"no Kubernetes configuration: {named} does not exist, and this is not a pod with a service account "
        "(KUBERNETES_SERVICE_HOST is unset); point KUBECONFIG at the cluster's kubeconfig, or give "
        f"--argo-server URL (or {ARGO_SERVER_ENV}) to go through an Argo Server"
    )


def _status_message(body: str | bytes | None) -> str:
    """The `message` of a Kubernetes Status (or Argo Server error) body, else the body's first line."""
    import json

    if not body:
        return ""
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    try:
        message = json.loads(text).get("message", "")
    except (ValueError, AttributeError):
        message = ""
    return str(message or text.strip().splitlines()[0])[:500]


def _last_reason(err: BaseException) -> str:
    """The innermost reason urllib3 gives (MaxRetryError wraps the connection error)."""
    reason = getattr(err, "reason", None)
    return str(reason or err).splitlines()[0][:300]


class ArgoServerClient:
    """The same operations through an Argo Server's HTTP API, with Hera's `WorkflowsService`."""

    def __init__(self, url: str, token: str | None, namespace: str | None = None) -> None:
        """A session on `url` (http:// or https://), authenticated by `token` when given."""
        try:
            import requests
            from hera.workflows.service import WorkflowsService
        except ImportError as err:  # pragma: no cover - the cluster extra is missing
            raise RptError(f"Hera is not installed ({err}): pip install 'rpt-transfer[cluster]'") from None
        if not url.startswith(("http://", "https://")):
            raise RptError(f"--argo-server {url!r}: give the Argo Server's URL, https://host:2746")

        class _Session(requests.Session):
            def request(self, method: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
                kwargs.setdefault("timeout", TIMEOUT)
                return super().request(method, *args, **kwargs)

        insecure = os.environ.get("ARGO_INSECURE_SKIP_VERIFY", "").lower() in ("1", "true", "yes")
        self.namespace = namespace or os.environ.get(ARGO_NAMESPACE_ENV) or "default"
        self.where = f"Argo Server at {url}"
        self.service = WorkflowsService(
            host=url.rstrip("/") + "/",
            token=token or None,
            namespace=self.namespace,
            verify_ssl=not insecure,
            session=_Session(),
        )

    @contextmanager
    def _asking(self, verb: str, resource: str) -> Iterator[None]:
        import requests
        from hera.exceptions import HeraException

        try:
            yield
        except HeraException as err:
            status = getattr(err, "status_code", 0)
            detail = str(err).partition("message: ")[2].strip("`") or str(err)
            raise _refused(status, verb, resource, self.namespace, self.where, detail) from None
        except requests.RequestException as err:
            raise RptError(
                f"{self.where} cannot be reached to {verb} {resource} ({type(err).__name__}); check the URL "
                f"given by --argo-server or {ARGO_SERVER_ENV}"
            ) from None

    def get_template(self, name: str = TEMPLATE_NAME) -> dict[str, Any]:
        """The WorkflowTemplate; RptError naming how to install it when the namespace lacks it."""
        with self._asking("get", "workflowtemplates"):
            return _plain(self.service.get_workflow_template(name, namespace=self.namespace))

    def create_workflow(self, body: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        """Create a Workflow (POST /api/v1/workflows/{namespace}), or only check it (`serverDryRun`)."""
        from hera.workflows.models import Workflow, WorkflowCreateRequest
        from pydantic import ValidationError

        try:
            workflow = Workflow.model_validate(body)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise RptError(f"the Workflow to create is not valid ({where}: {first['msg']})") from None
        dropped = _missing_keys(body, _plain(workflow))
        if dropped:  # Hera's model ignores keys it does not know: sending without them would change the run
            raise RptError(f"the Workflow to create has fields Argo does not know: {', '.join(dropped)}")
        request = WorkflowCreateRequest(
            workflow=workflow, namespace=self.namespace, server_dry_run=dry_run or None
        )
        with self._asking("create", "workflows"):
            return _plain(self.service.create_workflow(request, namespace=self.namespace))

    def list_workflows(self, label_selector: str) -> list[dict[str, Any]]:
        """Workflows of the namespace that match a label selector."""
        with self._asking("list", "workflows"):
            found = self.service.list_workflows(namespace=self.namespace, label_selector=label_selector)
        return [_plain(item) for item in found.items or []]

    def get_workflow(self, name: str) -> dict[str, Any]:
        """One Workflow with its status."""
        with self._asking("get", "workflows"):
            return _plain(self.service.get_workflow(name, namespace=self.namespace))

    def shutdown(self, name: str, how: Shutdown = "Terminate") -> dict[str, Any]:
        """The server's stop or terminate call, which sets `spec.shutdown`."""
        from hera.workflows.models import WorkflowStopRequest, WorkflowTerminateRequest

        with self._asking("patch", "workflows"):
            if how == "Stop":
                request = WorkflowStopRequest(name=name, namespace=self.namespace)
                return _plain(self.service.stop_workflow(name, request, namespace=self.namespace))
            terminate = WorkflowTerminateRequest(name=name, namespace=self.namespace)
            return _plain(self.service.terminate_workflow(name, terminate, namespace=self.namespace))


def _missing_keys(sent: Any, kept: Any, where: str = "") -> list[str]:
    """Paths of keys in `sent` that `kept` lacks (what a model dropped)."""
    if isinstance(sent, dict) and isinstance(kept, dict):
        return [
            path
            for key, value in sent.items()
            for path in (
                [f"{where}{key}"] if key not in kept else _missing_keys(value, kept[key], f"{where}{key}.")
            )
        ]
    if isinstance(sent, list) and isinstance(kept, list):
        return [path for a, b in zip(sent, kept, strict=False) for path in _missing_keys(a, b, where)]
    return []


def _plain(model: Any) -> dict[str, Any]:
    """A Hera model as the resource's JSON (camelCase keys, unset fields left out)."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)
