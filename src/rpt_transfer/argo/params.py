"""The WorkflowTemplate's parameters: one table, read by the templates, the docs and the size checks.

Every value is a string (Argo parameters are strings): numbers and durations included.
A Workflow made from the template overrides only these (`spec.arguments.parameters`), which Argo v4.1's
strict template referencing allows; nothing a user needs is left to `podSpecPatch` or `volumes`.

A submitter chooses every value, so each one lands only where Argo escapes it for where it lands: a string
field of the template (JSON-escaped as the template's JSON), never the text of a `podSpecPatch`, where the
same escaping leaves it raw (see pods.SIZES). The multi-node RayJob's manifest is text too: values reach it
only through expression tags that write them as JSON strings (rayjob.py).
"""

from typing import NamedTuple

from rpt_transfer import __version__


class Param(NamedTuple):
    """One workflow parameter."""

    name: str
    """Its name in `{{workflow.parameters.NAME}}`."""
    default: str | None
    """Its value unless the Workflow gives one; None: the Workflow must give it."""
    what: str
    """What it sets, for docs/argo-templates.md."""


PARAMS: tuple[Param, ...] = (
    Param("study", None, "the study spec's URI (`s3://...`, `file://...`); `prepare` reads it"),
    Param("score-chunk", "4", "score jobs per score pod (`prepare --score-chunk`)"),
    Param("store", "", "the pods' `RPT_STORE`: the store as the cluster names it; empty: the plan's"),
    Param("mlflow-uri", "", "the pods' `MLFLOW_TRACKING_URI`; empty: the plan's; `none`: tracking off"),
    Param("credentials-secret", "rpt-transfer-credentials", "Secret given to every pod as environment"),
    Param(
        "runner-image", f"rpt-transfer/runner:{__version__}", "image of prepare, pretrain, score, aggregate"
    ),
    Param("evaluator-image", f"rpt-transfer/evaluator:{__version__}", "image of the generate pods (vLLM)"),
    Param("trainer-image", f"rpt-transfer/trainer:{__version__}", "image of the train pods"),
    Param(
        "gpu-resource",
        "nvidia.com/gpu",
        "extended resource GPU pods request (`prepare` refuses anything but a resource name)",
    ),
    Param("gpu-node-label", "nvidia.com/gpu.present", "the node label GPU pods select (nodeSelector key)"),
    Param("gpu-node-label-value", "true", "its value (nodeSelector value)"),
    Param(
        "gpu-toleration-key",
        "nvidia.com/gpu",
        "taint key GPU pods tolerate (`Exists`, `NoSchedule`); empty: every taint",
    ),
    Param("gpu-semaphore-key", "gpu-pods", "key in ConfigMap rpt-transfer-limits: GPU pods at once"),
    Param(
        "cpu-semaphore-key",
        "cpu-pods",
        "key in ConfigMap rpt-transfer-limits: score, pretrain, train-cpu, generate-cpu pods at once",
    ),
    Param("sandbox-min", "userns", "score pods' `RPT_SANDBOX_MIN` (docs/sandbox.md)"),
    Param(
        "train-shared-claim",
        "",
        "ReadWriteMany PersistentVolumeClaim every node of a multi-node run (train-ray) mounts as its "
        "`RPT_TRAIN_WORKDIR`; empty: multi-node training stops at train-ray-check",
    ),
    Param("retries", "3", "retries of a pod that failed for a reason a retry fixes"),
    Param("retry-max-duration", "48h", "no retry starts later than this after a step's first attempt"),
    Param("prepare-deadline", "3600", "seconds a prepare pod may run"),
    Param("pretrain-deadline", "21600", "seconds the pretrain pod may run"),
    Param("train-deadline", "172800", "seconds a train pod, or a multi-node run's RayJob, may run"),
    Param("generate-deadline", "86400", "seconds a generate pod (one model group) may run"),
    Param("score-deadline", "14400", "seconds a score pod (one chunk) may run"),
    Param("aggregate-deadline", "7200", "seconds the aggregate pod may run"),
)
"""Workflow parameters, in the order the template lists them."""

NAMES = frozenset(param.name for param in PARAMS)


def wf(name: str) -> str:
    """`{{workflow.parameters.NAME}}`; KeyError for a name the table does not have."""
    if name not in NAMES:
        raise KeyError(f"no workflow parameter {name!r}; the table (argo/params.py) has {sorted(NAMES)}")
    return "{{workflow.parameters." + name + "}}"


def defaults(**values: str) -> dict[str, str]:
    """Each parameter's value as a Workflow with `values` would have it (sample values for checks)."""
    merged = {param.name: param.default for param in PARAMS} | values
    missing = [name for name, value in merged.items() if value is None]
    if missing:
        raise KeyError(f"no value for workflow parameter(s) {missing}")
    return {name: str(value) for name, value in merged.items()}


def markdown_table() -> str:
    """The parameters as the table in docs/argo-templates.md (a test holds the page to it)."""
    rows = ["| parameter | default | what it sets |", "|---|---|---|"]
    for param in PARAMS:
        default = "(required)" if param.default is None else f"`{param.default}`" if param.default else '`""`'
        rows.append(f"| `{param.name}` | {default} | {param.what} |")
    return "\n".join(rows) + "\n"
