"""What the study's pods share: environment, labels, retries, the GPU pod patch and the sandbox's settings.

Kept apart from the template layout (templates.py) so the tests can check each piece on its own: the retry
expression is evaluated, the GPU patch is parsed and validated piece by piece, the score pod's settings are
those docs/sandbox.md gives for the `userns` level.
"""

import json

from hera.workflows import models as m

from rpt_transfer.argo.params import wf
from rpt_transfer.errors import EXIT_TRANSIENT
from rpt_transfer.settings import SANDBOX_MIN_ENV, STORE_ENV, TRACKING_ENV

ROLE_LABEL = "rpt-transfer.io/role"
EGRESS_LABEL = "rpt-transfer.io/egress"
PART_OF = {"app.kubernetes.io/part-of": "rpt-transfer"}
MAIN = "main"
"""Argo's name for a container template's container: the GPU patch merges into it by this name."""
SHM_VOLUME, SHM_PATH = "dshm", "/dev/shm"

RETRY_EXIT_CODES = (EXIT_TRANSIENT, 137)
"""Exit codes worth a retry: 75 (`EXIT_TRANSIENT`: the store or a server did not answer), 137 (OOM kill)."""
NEVER_RETRY_EXIT_CODE = 2
"""`job run`'s user error (bad plan, part or spec): the same pod would fail the same way."""
RETRY_EXPRESSION = (
    f"asInt(lastRetry.exitCode) != {NEVER_RETRY_EXIT_CODE} && (lastRetry.status == 'Error'"
    " || (lastRetry.status == 'Failed' && asInt(lastRetry.exitCode) in"
    f" [{', '.join(str(code) for code in RETRY_EXIT_CODES)}]))"
)
"""Argo's retry condition (expr-lang): a pod error (status Error: evicted, deleted, node lost), or a failure
with a retryable exit code; never exit 2. Other failures (exit 1: a job failed) are not retried."""
BACKOFF = m.Backoff(duration="1m", factor="2", cap="30m", max_duration=wf("retry-max-duration"))


def labels(role: str, **more: str) -> m.Metadata:
    """A pod's labels: its role (the chart's NetworkPolicies select on it) and any more."""
    return m.Metadata(labels={ROLE_LABEL: role, **more})


def env(*extra: m.EnvVar) -> list[m.EnvVar]:
    """Where the store and MLflow are, as the cluster names them; empty values leave the plan's."""
    return [
        m.EnvVar(name=STORE_ENV, value=wf("store")),
        m.EnvVar(name=TRACKING_ENV, value=wf("mlflow-uri")),
        *extra,
    ]


SANDBOX_ENV = m.EnvVar(name=SANDBOX_MIN_ENV, value=wf("sandbox-min"))
CREDENTIALS = [m.EnvFromSource(secret_ref=m.SecretEnvSource(name=wf("credentials-secret"), optional=True))]


LIMITS_CONFIGMAP = "rpt-transfer-limits"
LIMITS = {"gpu-pods": "4"}
"""The ConfigMap's semaphore counts: GPU pods of all studies in the namespace at once (edit to the quota)."""


def retry_strategy() -> m.RetryStrategy:
    """Retries for what a retry fixes (RETRY_EXPRESSION), `retries` of them, with a growing wait."""
    return m.RetryStrategy(limit=wf("retries"), expression=RETRY_EXPRESSION, backoff=BACKOFF)


def gpu_semaphore() -> m.Synchronization:
    """At most N GPU pods at once: N at key `gpu-semaphore-key` of ConfigMap rpt-transfer-limits (v4 form)."""
    key = m.ConfigMapKeySelector(name=LIMITS_CONFIGMAP, key=wf("gpu-semaphore-key"))
    return m.Synchronization(semaphores=[m.SemaphoreRef(config_map_key_ref=key)])


_JSON_SLOTS = {"@node-selector@": wf("gpu-node-selector"), "@tolerations@": wf("gpu-tolerations")}


def gpu_pod_spec_patch() -> str:
    """The GPU pod's own patch: `gpus` GPUs, the GPU nodes (JSON parameters) and /dev/shm's size.

    A patch because Argo parses resource quantities and sizes when it reads a template (a `{{...}}` there
    is refused) and the node selector and tolerations come whole from JSON parameters; it is the
    template's own, so no Workflow ever has to override `podSpecPatch` or `volumes`.
    """
    gpus = "{{inputs.parameters.gpus}}"
    patch = {
        "containers": [
            {
                "name": MAIN,
                "resources": {"limits": {wf("gpu-resource"): gpus}, "requests": {wf("gpu-resource"): gpus}},
            }
        ],
        "nodeSelector": "@node-selector@",
        "tolerations": "@tolerations@",
        "volumes": [{"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": wf("shm-size")}}],
    }
    text = json.dumps(patch)
    for slot, parameter in _JSON_SLOTS.items():
        text = text.replace(json.dumps(slot), parameter)  # a JSON value, not a string
    return text


def shm() -> tuple[list[m.Volume], list[m.VolumeMount]]:
    """The GPU pods' /dev/shm: in memory (its size comes from the patch); the default 64 MB stalls NCCL."""
    volume = m.Volume(name=SHM_VOLUME, empty_dir=m.EmptyDirVolumeSource(medium="Memory"))
    return [volume], [m.VolumeMount(name=SHM_VOLUME, mount_path=SHM_PATH)]


SANDBOX_USER = 65534
"""The score pods' user (`nobody`): the `userns` level runs the scorer as a non-root user."""


def sandbox_security() -> m.SecurityContext:
    """The score container's settings for the sandbox's `userns` level (docs/sandbox.md's table)."""
    return m.SecurityContext(
        run_as_non_root=True,
        run_as_user=SANDBOX_USER,
        run_as_group=SANDBOX_USER,
        allow_privilege_escalation=False,
        capabilities=m.Capabilities(drop=["ALL"]),
        seccomp_profile=m.SeccompProfile(type="Unconfined"),
        app_armor_profile=m.AppArmorProfile(type="Unconfined"),
        proc_mount="Unmasked",
    )


SANDBOX_POD_PATCH = json.dumps({"hostUsers": False})
"""`procMount: Unmasked` needs the pod in its own user namespace; Argo templates have no `hostUsers` field."""
