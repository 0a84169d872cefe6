"""What the study's pods share: environment, labels, retries, the GPU pod patch and the sandbox's settings.

Kept apart from the template layout (templates.py) so the tests can check each piece on its own: the retry
expression is evaluated, the GPU patch is parsed and validated piece by piece, the score pod's settings are
those docs/sandbox.md gives for the `userns` level.
"""

import json
from typing import NamedTuple

from hera.workflows import models as m

from rpt_transfer.argo.params import wf
from rpt_transfer.errors import EXIT_TRANSIENT
from rpt_transfer.settings import SANDBOX_MIN_ENV, STORE_ENV, TRACKING_ENV, TRAIN_WORKDIR_ENV

ROLE_LABEL = "rpt-transfer.io/role"
EGRESS_LABEL = "rpt-transfer.io/egress"
SIZE_LABEL = "rpt-transfer.io/size"
"""A pod's kind of SIZES: the chart finds by it the pods whose requests its `podSizes` values set."""
PART_OF = {"app.kubernetes.io/part-of": "rpt-transfer"}
MAIN = "main"
"""Argo's name for a container template's container: the GPU patch merges into it by this name."""
SHM_VOLUME, SHM_PATH = "dshm", "/dev/shm"
TRAIN_WORK_VOLUME, TRAIN_WORK_PATH = "train-work", "/train-work"
"""The train job's working folder (`RPT_TRAIN_WORKDIR`: OpenRLHF's checkpoints and exported data): an emptyDir
of the train-gpu pod, a shared PersistentVolumeClaim mounted at the same path on every node of a RayJob."""

RETRY_EXIT_CODES = (-1, EXIT_TRANSIENT, 137)
"""Exit codes of a `Failed` pod worth a retry: -1 (Argo's code when the main container never ran: evicted
under node pressure, refused at admission, its node shut down), 75 (`EXIT_TRANSIENT`: the store or a server
did not answer), 137 (OOM kill; also any kill by signal, which the emissary reports as 137)."""
NEVER_RETRY_EXIT_CODE = 2
"""`job run`'s user error (bad plan, part or spec): the same pod would fail the same way."""
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
"""The pod's status message when `activeDeadlineSeconds` killed it (kubelet's, which Argo copies): a retry
would run out of time the same way, so it is never retried, whatever its exit code (137 there)."""
RETRY_EXPRESSION = (
    f"asInt(lastRetry.exitCode) != {NEVER_RETRY_EXIT_CODE}"
    f" && !(lastRetry.message contains '{DEADLINE_MESSAGE}')"
    " && (lastRetry.status == 'Error' || (lastRetry.status == 'Failed' && asInt(lastRetry.exitCode) in"
    f" [{', '.join(str(code) for code in RETRY_EXIT_CODES)}]))"
)
"""Argo's retry condition (expr-lang): never exit 2, never a pod its deadline killed; else a pod error
(status Error), or a failure (status Failed: Argo gives a pod with a status message, such as an eviction,
this status, operator.go inferFailedReason) with a retryable exit code. Exit 1 (a job failed) is not
retried."""
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
SETTINGS_CONFIGMAP = "rpt-transfer-settings"
"""The chart's settings (the S3 endpoint and region, the addresses and images it installed with), given to
every pod as environment; optional, so the templates also run where only workflows/ was applied."""
ENV_FROM = [
    m.EnvFromSource(config_map_ref=m.ConfigMapEnvSource(name=SETTINGS_CONFIGMAP, optional=True)),
    m.EnvFromSource(secret_ref=m.SecretEnvSource(name=wf("credentials-secret"), optional=True)),
]
"""Settings first, then the credentials Secret, whose keys win where both name one (Kubernetes: the last
source of a duplicate key wins); `env` entries win over both."""

RESTRICTED_POD = m.PodSecurityContext(
    run_as_non_root=True, seccomp_profile=m.SeccompProfile(type="RuntimeDefault")
)
"""Every pod's security context (the workflow's `securityContext`), Kubernetes' `restricted` Pod Security
Standard; the score pods replace it with the sandbox's (sandbox_security), the one documented exception."""


def restricted_container() -> m.SecurityContext:
    """A container's part of the `restricted` standard: no privilege escalation, every capability dropped."""
    return m.SecurityContext(allow_privilege_escalation=False, capabilities=m.Capabilities(drop=["ALL"]))


LIMITS_CONFIGMAP = "rpt-transfer-limits"
LIMITS = {"gpu-pods": "4", "cpu-pods": "32"}
"""The ConfigMap's semaphore counts, for all studies in the namespace at once (edit them to the quota):
`gpu-pods`, GPU pods (not GPUs); `cpu-pods`, pods of score, pretrain, train-cpu and generate-cpu."""


def retry_strategy() -> m.RetryStrategy:
    """Retries for what a retry fixes (RETRY_EXPRESSION), `retries` of them, with a growing wait."""
    return m.RetryStrategy(limit=wf("retries"), expression=RETRY_EXPRESSION, backoff=BACKOFF)


def semaphore(key_parameter: str) -> m.Synchronization:
    """At most N such pods at once: N at the key that parameter names in ConfigMap rpt-transfer-limits.

    v4's list form (`semaphores`); Argo takes the permit for the step's Retry node, so a pod waiting out
    its retry backoff still holds it.
    """
    key = m.ConfigMapKeySelector(name=LIMITS_CONFIGMAP, key=wf(key_parameter))
    return m.Synchronization(semaphores=[m.SemaphoreRef(config_map_key_ref=key)])


class Size(NamedTuple):
    """A pod's CPU and memory: requested, and memory also its limit (a pod over it is OOM-killed, 137)."""

    cpu: str
    memory: str


SIZES = {
    "small": Size("500m", "2Gi"),
    "score": Size("2", "8Gi"),
    "cpu": Size("4", "16Gi"),
    "gpu": Size("8", "96Gi"),
}
"""Each pod kind's size: `small` (prepare, aggregate, exit-handler), `score`, `cpu` (pretrain, train-cpu,
generate-cpu), `gpu` (train-gpu, generate-gpu; /dev/shm's SHM_SIZE counts against its memory).

Literal quantities on the container, not workflow parameters: a parameter reaches a pod's spec only
through `podSpecPatch` (Argo refuses a `{{...}}` in a quantity), and Argo substitutes a value there
JSON-escaped for the template's own JSON, which leaves it raw in the patch's text, inside a JSON string
or not (common.SubstituteParams): any such value could rewrite the pod spec. A cluster changes them where
it installs the template: the chart's `podSizes` values replace them, on the pods whose SIZE_LABEL names the
kind."""

GPU_RESOURCE = "{{inputs.parameters.gpu-resource}}"
"""The extended resource a GPU pod asks for (requests and limits), in its patch: the `gpu-resource`
parameter as `prepare` checked and wrote it (a Kubernetes resource name, or the workflow stops there)."""
SHM_SIZE = "16Gi"
"""Size of the GPU pods' in-memory /dev/shm (NCCL, vLLM workers); below SIZES["gpu"].memory."""


def resources(kind: str) -> m.ResourceRequirements:
    """The container's requests and memory limit for a pod of `kind` (SIZES)."""
    size = SIZES[kind]
    return m.ResourceRequirements(
        requests={"cpu": size.cpu, "memory": size.memory}, limits={"memory": size.memory}
    )


def gpu_node_selector() -> dict[str, str]:
    """The GPU pods' nodeSelector: one label, its key and value parameters; a template field, not a patch."""
    return {wf("gpu-node-label"): wf("gpu-node-label-value")}


def gpu_tolerations() -> list[m.Toleration]:
    """Tolerate the GPU taint: key from `gpu-toleration-key`, any value, effect NoSchedule.

    An empty key with `Exists` tolerates every taint, as Kubernetes defines it.
    """
    return [m.Toleration(key=wf("gpu-toleration-key"), operator="Exists", effect="NoSchedule")]


def gpu_pod_spec_patch() -> str:
    """The GPU pod's own patch: `gpus` GPUs, merged into the container `main` (requests and limits).

    A patch because the count is an input (`{{inputs.parameters.gpus}}`, an integer `prepare` writes) and
    Argo refuses a `{{...}}` in a resource quantity. No raw workflow parameter goes into it (see SIZES): the
    resource name too comes from `prepare`'s outputs, after `prepare --gpu-resource` checked it.
    """
    gpus = "{{inputs.parameters.gpus}}"
    patch = {
        "containers": [
            {"name": MAIN, "resources": {"limits": {GPU_RESOURCE: gpus}, "requests": {GPU_RESOURCE: gpus}}}
        ]
    }
    return json.dumps(patch)


def shm() -> tuple[list[m.Volume], list[m.VolumeMount]]:
    """The GPU pods' /dev/shm: in memory, SHM_SIZE; the default 64 MB stalls NCCL."""
    volume = m.Volume(name=SHM_VOLUME, empty_dir=m.EmptyDirVolumeSource(medium="Memory", size_limit=SHM_SIZE))
    return [volume], [m.VolumeMount(name=SHM_VOLUME, mount_path=SHM_PATH)]


TRAIN_WORK_ENV = m.EnvVar(name=TRAIN_WORKDIR_ENV, value=TRAIN_WORK_PATH)


def train_work() -> tuple[list[m.Volume], list[m.VolumeMount]]:
    """The train-gpu pod's working folder at TRAIN_WORK_PATH: an emptyDir on the node's disk.

    No size limit: checkpoints of a large model take hundreds of GB; the node's ephemeral storage bounds it.
    """
    volume = m.Volume(name=TRAIN_WORK_VOLUME, empty_dir=m.EmptyDirVolumeSource())
    return [volume], [m.VolumeMount(name=TRAIN_WORK_VOLUME, mount_path=TRAIN_WORK_PATH)]


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
"""`procMount: Unmasked` needs the pod in its own user namespace; Argo templates have no `hostUsers` field.
It holds no `{{...}}`: nothing a submitter gives reaches it."""
