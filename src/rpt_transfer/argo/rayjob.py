r"""The multi-node train step's KubeRay RayJob: the manifest of the `train-ray-job` resource template.

A study whose OpenRLHF run spans N > 1 nodes trains in a Ray cluster that KubeRay (v1.7, `ray.io/v1`)
makes for the one job and removes after it: a head and N-1 workers, each with G GPUs, on the trainer image
(Ray 2.55.0, OpenRLHF's pin). The head runs the same `rpt-transfer job run --plan PLAN --part train/I` the
train pods run, as the Ray job's entrypoint; OpenRLHF's actors spread over every node's GPUs. Every node
mounts the shared PersistentVolumeClaim `train-shared-claim` at the same path, its `RPT_TRAIN_WORKDIR`
(DeepSpeed writes each rank's checkpoint shards on the rank's own node).

**Values in the manifest.** Argo substitutes a resource template's manifest as text: a `{{...}}` tag there
would put a submitter's value raw into the YAML (escaped only for the template's JSON, see params.py), so
any value could add keys to the RayJob. Every value therefore enters through an expression tag
(`{{=...}}`, expr-lang, evaluated by Argo) that writes it as a JSON string: `toJson(value)` quotes and
escapes it, so it stays one YAML scalar whatever it holds, and each `{` of it is written `\u007b`, so no
`{{` of a value reaches Argo's second substitution pass (inputs are substituted after globals, in the same
text) to be evaluated there. Numbers go through `asInt`, which fails on anything but an integer. Argo's own
validation replaces each expression tag with a placeholder before it parses the manifest as YAML
(`SubstituteResourceManifestExpressions`), which is why the tags stand unquoted.

**Sizes.** The CPU, memory and /dev/shm of the Ray pods are the template's own inputs `cpu`, `memory` and
`shm-size` (pods.SIZES["gpu"], pods.SHM_SIZE), fixed in the template: no submitter sets them, and the chart
replaces them (`podSizes.gpu`, `training.shmSize`) where it installs the template.
"""

from typing import Any

import yaml

from rpt_transfer.argo import pods, render
from rpt_transfer.argo.params import NAMES

API_VERSION, KIND = "ray.io/v1", "RayJob"
RAY_VERSION = "2.55.0"
"""The Ray of the trainer image (images/trainer: OpenRLHF 0.11.2 pins ray[default]==2.55.0)."""
GENERATE_NAME = "rpt-train-"
"""The RayJob's name prefix (KubeRay refuses names over 47 characters); each attempt gets a new name."""
TTL_SECONDS = 300
"""Seconds KubeRay keeps the finished job's Ray cluster (for a look at its logs) before removing it."""
WORKER_GROUP = "gpu"
SUBMITTER = "ray-job-submitter"
"""KubeRay's name for the submitter Job's container (it fills in its command: `ray job submit ...`)."""
SUBMITTER_SIZE = pods.Size("500m", "1Gi")
"""The submitter's CPU and memory: it only submits the job and follows its log (KubeRay's default pod asks
for 500m and 200Mi, limited to 1 CPU and 1Gi, but sets no security context)."""
SUCCESS_CONDITION = "status.jobDeploymentStatus == Complete, status.jobStatus == SUCCEEDED"
"""Argo's success condition: every requirement holds (KubeRay marks a job that ended well Complete)."""
FAILURE_CONDITION = (
    "status.jobDeploymentStatus in (Failed, ValidationFailed), status.jobStatus in (FAILED, STOPPED)"
)
"""Argo's failure condition: ANY requirement that holds fails the step (the executor checks them one by one).
KubeRay sets `Failed` when the Ray job failed (reason AppFailed), its deadline passed or its cluster could
not start, and `ValidationFailed` for a spec it refuses; a stopped job ends `Complete` with `STOPPED`."""
INPUTS = ("plan", "part", "gpus", "nodes", "gpu-resource")
"""The step's inputs, as the study step gives them (`prepare`'s outputs and the train item)."""
SIZE_INPUTS = {"cpu": pods.SIZES["gpu"].cpu, "memory": pods.SIZES["gpu"].memory, "shm-size": pods.SHM_SIZE}
"""The Ray pods' sizes: inputs with fixed values, which the chart replaces (see the module docstring)."""


def param(name: str) -> str:
    """A workflow parameter in an expression; KeyError for a name the table does not have."""
    if name not in NAMES:
        raise KeyError(f"no workflow parameter {name!r}")
    return f"workflow.parameters['{name}']"


def given(name: str) -> str:
    """One of the template's inputs in an expression."""
    if name not in (*INPUTS, *SIZE_INPUTS):
        raise KeyError(f"no input {name!r} of train-ray-job")
    return f"inputs.parameters['{name}']"


def as_json(expression: str) -> str:
    r"""An expression tag that writes the value of `expression` as a JSON string, each `{` as `\u007b`."""
    return "{{=sprig.replace('{', '\\\\u007b', toJson(" + expression + "))}}"


def as_int(expression: str) -> str:
    """An expression tag that writes `expression` (an integer, else Argo fails the step) as a number."""
    return "{{=" + expression + "}}"


def shell_word(expression: str) -> str:
    r"""`expression` in single quotes for a POSIX shell, its own quotes written `'\''`."""
    return '"\'" + sprig.replace("\'", "\'\\\\\'\'", ' + expression + ') + "\'"'


ENTRYPOINT = (
    "'rpt-transfer job run --plan ' + "
    + shell_word(given("plan"))
    + " + ' --part ' + "
    + shell_word(given("part"))
)
"""The Ray job's entrypoint, as an expression: KubeRay puts it in the submitter's shell command (`ray job
submit ... -- ENTRYPOINT`), Ray joins the words again and the head runs them with a shell: the argv of the
train pods, `rpt-transfer job run --plan PLAN --part train/I`, each value quoted for the first shell."""


class _Tags:
    """Stand-ins for expression tags while the manifest is built as data and dumped as YAML."""

    def __init__(self) -> None:
        self.tags: dict[str, str] = {}

    def __call__(self, tag: str) -> str:
        stand_in = f"rpt-tag-{len(self.tags):03d}"
        self.tags[stand_in] = tag
        return stand_in

    def text(self, data: dict[str, Any]) -> str:
        text = yaml.safe_dump(data, sort_keys=False, width=10_000)
        for stand_in, tag in self.tags.items():  # fixed width: no stand-in is part of another
            assert stand_in in text, stand_in
            text = text.replace(stand_in, tag)
        return text


def manifest() -> str:
    """The RayJob's YAML text, with Argo expression tags where values go (see the module docstring)."""
    tag = _Tags()

    def string(expression: str) -> str:
        return tag(as_json(expression))

    gpu = string(given("gpu-resource"))
    labels = {**pods.PART_OF, pods.ROLE_LABEL: "train"}

    def placement() -> dict[str, Any]:
        """The GPU pods' node selector and toleration (pods.gpu_node_selector, pods.gpu_tolerations)."""
        return {
            "nodeSelector": {string(param("gpu-node-label")): string(param("gpu-node-label-value"))},
            "tolerations": [
                {"key": string(param("gpu-toleration-key")), "operator": "Exists", "effect": "NoSchedule"}
            ],
        }

    def ray_pod(container: str) -> dict[str, Any]:
        gpus = string(given("gpus"))
        resources = {
            "requests": {"cpu": string(given("cpu")), "memory": string(given("memory")), gpu: gpus},
            "limits": {"memory": string(given("memory")), gpu: string(given("gpus"))},
        }
        return {
            "metadata": {"labels": {**labels, pods.SIZE_LABEL: "gpu"}},
            "spec": {
                "securityContext": _restricted_pod(),
                **placement(),
                "containers": [
                    {
                        "name": container,
                        "image": string(param("trainer-image")),
                        "env": [
                            {"name": "RPT_STORE", "value": string(param("store"))},
                            {"name": "MLFLOW_TRACKING_URI", "value": string(param("mlflow-uri"))},
                            {"name": pods.TRAIN_WORK_ENV.name, "value": pods.TRAIN_WORK_PATH},
                        ],
                        "envFrom": [
                            {"configMapRef": {"name": pods.SETTINGS_CONFIGMAP, "optional": True}},
                            {"secretRef": {"name": string(param("credentials-secret")), "optional": True}},
                        ],
                        "resources": resources,
                        "securityContext": _restricted_container(),
                        "volumeMounts": [
                            {"name": pods.SHM_VOLUME, "mountPath": pods.SHM_PATH},
                            {"name": pods.TRAIN_WORK_VOLUME, "mountPath": pods.TRAIN_WORK_PATH},
                        ],
                    }
                ],
                "volumes": [
                    {
                        "name": pods.SHM_VOLUME,
                        "emptyDir": {"medium": "Memory", "sizeLimit": string(given("shm-size"))},
                    },
                    {
                        "name": pods.TRAIN_WORK_VOLUME,
                        "persistentVolumeClaim": {"claimName": string(param("train-shared-claim"))},
                    },
                ],
            },
        }

    workers = tag(as_int(f"asInt({given('nodes')}) - 1"))
    data = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "generateName": GENERATE_NAME,
            "labels": {**labels, "workflows.argoproj.io/workflow": tag(as_json("workflow.name"))},
        },
        "spec": {
            "entrypoint": tag(as_json(ENTRYPOINT)),
            "submissionMode": "K8sJobMode",
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": TTL_SECONDS,
            "activeDeadlineSeconds": tag(as_int(f"asInt({param('train-deadline')})")),
            "backoffLimit": 0,
            "submitterPodTemplate": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": _restricted_pod(),
                    **placement(),  # where the trainer image is pulled already (it asks for no GPU)
                    "containers": [
                        {
                            "name": SUBMITTER,
                            "image": string(param("trainer-image")),
                            "resources": {
                                "requests": {"cpu": SUBMITTER_SIZE.cpu, "memory": SUBMITTER_SIZE.memory},
                                "limits": {"memory": SUBMITTER_SIZE.memory},
                            },
                            "securityContext": _restricted_container(),
                        }
                    ],
                },
            },
            "rayClusterSpec": {
                "rayVersion": RAY_VERSION,
                "headGroupSpec": {
                    "rayStartParams": {"dashboard-host": "0.0.0.0", "num-gpus": string(given("gpus"))},
                    "template": ray_pod("ray-head"),
                },
                "workerGroupSpecs": [
                    {
                        "groupName": WORKER_GROUP,
                        "replicas": workers,
                        "minReplicas": workers,
                        "maxReplicas": workers,
                        "rayStartParams": {"num-gpus": string(given("gpus"))},
                        "template": ray_pod("ray-worker"),
                    }
                ],
            },
        },
    }
    return tag.text(data)


def _restricted_pod() -> dict[str, Any]:
    return render.to_dict(pods.RESTRICTED_POD)


def _restricted_container() -> dict[str, Any]:
    return render.to_dict(pods.restricted_container())
