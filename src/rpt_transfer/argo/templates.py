"""A study's Argo objects from one source: WorkflowTemplate `rpt-transfer-study`, its limits, an example.

`python -m rpt_transfer.argo.templates --write` (`make workflows`) writes them to workflows/; `--check`
exits 1 naming a file that differs from what this module builds. The tests hold the committed files to it.

The study runs as steps: `prepare` (plans, writes the fan-out lists) -> `pretrain` -> `train` (one pod, or a
KubeRay RayJob for a run over several nodes) -> `models`
(one item per model group: its generate pod, on GPUs when the group asks for them, then its score pods)
-> `aggregate`; the exit handler closes the study's MLflow parent run. Every pod runs `rpt-transfer`
with the same arguments the local executor uses, naming the jobs by part (`rpt_transfer.fanout`).
"""

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hera.workflows import models as m

from rpt_transfer.argo import pods, rayjob, render
from rpt_transfer.argo.params import NAMES, PARAMS, wf

TEMPLATE_NAME = "rpt-transfer-study"
SERVICE_ACCOUNT = "rpt-transfer-workflow"
"""Created with its RBAC by the chart (issue 13)."""
API_VERSION = "argoproj.io/v1alpha1"
OUTPUTS_DIR = "/tmp/outputs"
OUTPUTS = {
    "plan": "plan",
    "pretrain": "pretrain.json",
    "train": "train.json",
    "models": "models.json",
    "gpu-resource": "gpu-resource",
}
"""`prepare --outputs` files by output parameter: the plan's URI, the `withParam` lists, and the GPU
resource name as `prepare` checked it (the GPU pods' patch takes it from there, never from the raw
workflow parameter)."""
EXIT_DEADLINE = "900"
"""Seconds the exit handler may run: it closes one MLflow run."""
CHECK_DEADLINE = "300"
"""Seconds train-ray-check may run: it looks at one parameter."""
POD_GC = m.PodGC(strategy="OnPodSuccess", delete_delay_duration="10m")
TTL = m.TTLStrategy(seconds_after_success=3 * 86400, seconds_after_failure=7 * 86400)


def _inputs(*names: str) -> m.Inputs:
    return m.Inputs(parameters=[m.Parameter(name=name) for name in names])


def _args(**values: str) -> m.Arguments | None:
    if not values:
        return None
    return m.Arguments(parameters=[m.Parameter(name=name, value=value) for name, value in values.items()])


def _pod(
    name: str,
    role: str,
    image: str,
    args: list[str],
    deadline: str,
    *,
    size: str,
    inputs: tuple[str, ...] = (),
    **more: Any,
) -> m.Template:
    """A container template running `rpt-transfer ARGS`, retried as `pods.retry_strategy` says.

    `image` names a workflow parameter, `deadline` one or a number of seconds, `size` a kind of
    `pods.SIZES`; `more` sets other Template fields, and its `container_fields` other Container fields.
    """
    container = more.pop("container_fields", {})
    metadata = more.pop("metadata", pods.labels(role))
    metadata.labels = {**(metadata.labels or {}), pods.SIZE_LABEL: size}
    return m.Template(
        name=name,
        metadata=metadata,
        inputs=_inputs(*inputs) if inputs else None,
        container=m.Container(
            image=wf(image),
            command=["rpt-transfer"],
            args=args,
            env=container.pop("env", pods.env()),
            env_from=pods.ENV_FROM,
            security_context=container.pop("security_context", pods.restricted_container()),
            resources=pods.resources(size),
            **container,
        ),
        active_deadline_seconds=wf(deadline) if deadline in NAMES else deadline,
        retry_strategy=pods.retry_strategy(),
        **more,
    )


def _part_args() -> list[str]:
    return ["job", "run", "--plan", "{{inputs.parameters.plan}}", "--part", "{{inputs.parameters.part}}"]


def _gpu(name: str, role: str, image: str, deadline: str, *, train: bool = False) -> m.Template:
    """A pod on GPU nodes with `gpus` GPUs and a /dev/shm in memory, one of `gpu-pods` at once.

    `train`: also a working folder on the node's disk, `RPT_TRAIN_WORKDIR` (OpenRLHF's checkpoints), for
    the one-node runs that start Ray inside the pod.
    """
    volumes, mounts = pods.shm()
    container: dict[str, Any] = {}
    if train:
        work_volumes, work_mounts = pods.train_work()
        volumes, mounts = volumes + work_volumes, mounts + work_mounts
        container["env"] = pods.env(pods.TRAIN_WORK_ENV)
    return _pod(
        name,
        role,
        image,
        _part_args(),
        deadline,
        size="gpu",
        inputs=("plan", "part", "gpus", "gpu-resource"),
        container_fields={"volume_mounts": mounts, **container},
        volumes=volumes,
        node_selector=pods.gpu_node_selector(),
        tolerations=pods.gpu_tolerations(),
        pod_spec_patch=pods.gpu_pod_spec_patch(),
        synchronization=pods.semaphore("gpu-semaphore-key"),
    )


def _cpu(name: str, role: str, image: str, deadline: str, **more: Any) -> m.Template:
    """A `job run --part` pod without GPUs, one of `cpu-pods` at once."""
    return _pod(
        name,
        role,
        image,
        _part_args(),
        deadline,
        inputs=("plan", "part"),
        synchronization=pods.semaphore("cpu-semaphore-key"),
        **({"size": "cpu"} | more),
    )


def prepare() -> m.Template:
    """Plan the study (or reuse its plan), write the fan-out lists, mark the MLflow parent run RUNNING."""
    args = ["prepare", wf("study"), "--outputs", OUTPUTS_DIR, "--workflow", "{{workflow.name}}"]
    outputs = m.Outputs(
        parameters=[
            m.Parameter(name=name, value_from=m.ValueFrom(path=f"{OUTPUTS_DIR}/{file}"))
            for name, file in OUTPUTS.items()
        ]
    )
    args += ["--score-chunk", wf("score-chunk"), "--gpu-resource", wf("gpu-resource")]
    return _pod("prepare", "prepare", "runner-image", args, "prepare-deadline", size="small", outputs=outputs)


def score() -> m.Template:
    """A chunk of one model group's score jobs: no GPU, sandbox at its minimum, egress to store and MLflow."""
    return _cpu(
        "score",
        "score",
        "runner-image",
        "score-deadline",
        size="score",
        metadata=pods.labels("score", **{pods.EGRESS_LABEL: "store-and-mlflow"}),
        container_fields={"env": pods.env(pods.SANDBOX_ENV), "security_context": pods.sandbox_security()},
        pod_spec_patch=pods.SANDBOX_POD_PATCH,
    )


def exit_handler() -> m.Template:
    """Close the study's MLflow parent run with the workflow's outcome, and say where the report is."""
    args = [
        "track",
        "close",
        wf("study"),
        "--status",
        "{{workflow.status}}",
        "--workflow",
        "{{workflow.name}}",
    ]
    return _pod("exit-handler", "exit-handler", "runner-image", args, EXIT_DEADLINE, size="small")


def _step(
    name: str, template: str, when: str | None = None, items: str | None = None, **args: str
) -> m.WorkflowStep:
    return m.WorkflowStep(name=name, template=template, when=when, with_param=items, arguments=_args(**args))


ONE_NODE = "{{item.nodes}} == 1"


def study() -> m.Template:
    """The entrypoint: the stages in order, each fanned out over a list `prepare` wrote.

    A train item runs in one pod when it needs one node (train-gpu, or train-cpu without GPUs) and as a
    KubeRay RayJob over several (train-ray): exactly one of the three `when`s holds.
    """
    out = "{{steps.prepare.outputs.parameters.%s}}"
    plan, resource = out % "plan", out % "gpu-resource"
    return m.Template(
        name="study",
        steps=[
            m.ParallelSteps([_step("prepare", "prepare")]),
            m.ParallelSteps(
                [_step("pretrain", "pretrain", items=out % "pretrain", plan=plan, part="{{item}}")]
            ),
            m.ParallelSteps(
                [
                    _step(
                        f"train-{kind}",
                        f"train-{kind}",
                        when,
                        out % "train",
                        plan=plan,
                        part="{{item.part}}",
                        **more,
                    )
                    for kind, when, more in (
                        (
                            "gpu",
                            f"{ONE_NODE} && {{{{item.gpus}}}} > 0",
                            {"gpus": "{{item.gpus}}", "gpu-resource": resource},
                        ),
                        ("cpu", f"{ONE_NODE} && {{{{item.gpus}}}} == 0", {}),
                        (
                            "ray",
                            "{{item.nodes}} > 1",
                            {"gpus": "{{item.gpus}}", "nodes": "{{item.nodes}}", "gpu-resource": resource},
                        ),
                    )
                ]
            ),
            m.ParallelSteps(
                [
                    _step(
                        "models",
                        "model",
                        items=out % "models",
                        plan=plan,
                        gpus="{{item.gpus}}",
                        generate="{{item.generate}}",
                        score="{{item.score}}",
                        **{"gpu-resource": resource},
                    )
                ]
            ),
            m.ParallelSteps([_step("aggregate", "aggregate", plan=plan)]),
        ],
    )


def model() -> m.Template:
    """One model group: its generate pod (GPU or CPU), then its score chunks."""
    given = "{{inputs.parameters.%s}}"
    plan, generate = given % "plan", given % "generate"
    return m.Template(
        name="model",
        inputs=_inputs("plan", "gpus", "generate", "score", "gpu-resource"),
        steps=[
            m.ParallelSteps(
                [
                    _step(
                        "generate-gpu",
                        "generate-gpu",
                        "{{inputs.parameters.gpus}} > 0",
                        plan=plan,
                        part=generate,
                        gpus=given % "gpus",
                        **{"gpu-resource": given % "gpu-resource"},
                    ),
                    _step(
                        "generate-cpu",
                        "generate-cpu",
                        "{{inputs.parameters.gpus}} == 0",
                        plan=plan,
                        part=generate,
                    ),
                ]
            ),
            m.ParallelSteps([_step("score", "score", items=given % "score", plan=plan, part="{{item}}")]),
        ],
    )


def train_ray() -> m.Template:
    """A training run over several nodes: the shared volume checked, then its RayJob (train-ray-job)."""
    given = "{{inputs.parameters.%s}}"
    part, nodes = given % "part", given % "nodes"
    job_args = {name: given % name for name in rayjob.INPUTS}
    return m.Template(
        name="train-ray",
        inputs=_inputs(*rayjob.INPUTS),
        steps=[
            m.ParallelSteps([_step("check", "train-ray-check", part=part, nodes=nodes)]),
            m.ParallelSteps([_step("rayjob", "train-ray-job", **job_args)]),
        ],
    )


NO_SHARED_CLAIM = (
    "error: train part $RPT_PART runs on $RPT_NODES nodes, and the workflow parameter train-shared-claim is "
    "empty: every node of the run needs the same ReadWriteMany PersistentVolumeClaim for its checkpoints "
    "(RPT_TRAIN_WORKDIR); give its name (chart value training.sharedClaim), or train on one node "
    "(openrlhf.nodes: 1)"
)
CHECK_SCRIPT = f'test -n "$RPT_SHARED_CLAIM" && exit 0; echo "{NO_SHARED_CLAIM}" >&2; exit 2'
"""train-ray-check's shell script: exit 0 with a claim, else one line saying what is missing and exit 2 (a
user error: never retried). It runs before any Ray cluster is asked for."""


def train_ray_check() -> m.Template:
    """Refuse a multi-node run without the shared volume, in one line, before its RayJob is made."""
    given = "{{inputs.parameters.%s}}"
    env = [
        m.EnvVar(name="RPT_SHARED_CLAIM", value=wf("train-shared-claim")),
        m.EnvVar(name="RPT_PART", value=given % "part"),
        m.EnvVar(name="RPT_NODES", value=given % "nodes"),
    ]
    return m.Template(
        name="train-ray-check",
        metadata=m.Metadata(labels={pods.ROLE_LABEL: "train", pods.SIZE_LABEL: "small"}),
        inputs=_inputs("part", "nodes"),
        container=m.Container(
            image=wf("runner-image"),
            command=["sh", "-c", CHECK_SCRIPT],
            env=env,
            security_context=pods.restricted_container(),
            resources=pods.resources("small"),
        ),
        active_deadline_seconds=CHECK_DEADLINE,
        retry_strategy=pods.retry_strategy(),
    )


def train_ray_job() -> m.Template:
    """The KubeRay RayJob of one training run over `nodes` nodes of `gpus` GPUs each (rayjob.py).

    Created, owned by the Workflow, followed until KubeRay says it succeeded or failed; one of `gpu-pods`.
    """
    inputs = [m.Parameter(name=name) for name in rayjob.INPUTS]
    inputs += [m.Parameter(name=name, value=value) for name, value in rayjob.SIZE_INPUTS.items()]
    return m.Template(
        name="train-ray-job",
        metadata=pods.labels("train"),
        inputs=m.Inputs(parameters=inputs),
        resource=m.ResourceTemplate(
            action="create",
            set_owner_reference=True,
            success_condition=rayjob.SUCCESS_CONDITION,
            failure_condition=rayjob.FAILURE_CONDITION,
            manifest=rayjob.manifest(),
        ),
        active_deadline_seconds=wf("train-deadline"),
        retry_strategy=pods.retry_strategy(),
        synchronization=pods.semaphore("gpu-semaphore-key"),
    )


def templates() -> list[m.Template]:
    """Every template of the WorkflowTemplate, entrypoint first."""
    aggregate_args = ["job", "run", "--plan", "{{inputs.parameters.plan}}", "--part", "aggregate"]
    return [
        study(),
        model(),
        prepare(),
        _cpu("pretrain", "pretrain", "runner-image", "pretrain-deadline"),
        _gpu("train-gpu", "train", "trainer-image", "train-deadline", train=True),
        _cpu("train-cpu", "train", "trainer-image", "train-deadline"),
        train_ray(),
        train_ray_check(),
        train_ray_job(),
        _gpu("generate-gpu", "generate", "evaluator-image", "generate-deadline"),
        _cpu("generate-cpu", "generate", "evaluator-image", "generate-deadline"),
        score(),
        _pod(
            "aggregate",
            "aggregate",
            "runner-image",
            aggregate_args,
            "aggregate-deadline",
            size="small",
            inputs=("plan",),
        ),
        exit_handler(),
    ]


def workflow_template() -> m.WorkflowTemplate:
    """WorkflowTemplate `rpt-transfer-study`: what `submit` and `argo submit --from workflowtemplate/` run."""
    return m.WorkflowTemplate(
        api_version=API_VERSION,
        kind="WorkflowTemplate",
        metadata=m.ObjectMeta(name=TEMPLATE_NAME, labels=pods.PART_OF),
        spec=m.WorkflowSpec(
            entrypoint="study",
            on_exit="exit-handler",
            arguments=m.Arguments(parameters=[m.Parameter(name=p.name, value=p.default) for p in PARAMS]),
            service_account_name=SERVICE_ACCOUNT,
            security_context=pods.RESTRICTED_POD,
            workflow_metadata=m.WorkflowMetadata(labels=pods.PART_OF),
            pod_metadata=m.Metadata(labels=pods.PART_OF),
            pod_gc=POD_GC,
            ttl_strategy=TTL,
            templates=templates(),
        ),
    )


def limits_config_map() -> dict[str, Any]:
    """ConfigMap `rpt-transfer-limits`: the semaphore counts (pods.LIMITS; Hera has no core kinds)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": pods.LIMITS_CONFIGMAP, "labels": pods.PART_OF},
        "data": dict(pods.LIMITS),
    }


EXAMPLE_STUDY = "s3://rpt-transfer/specs/canary.yaml"


def example_workflow() -> m.Workflow:
    """A Workflow for `argo submit`: the template and the study; `-p study=URI` names another."""
    return m.Workflow(
        api_version=API_VERSION,
        kind="Workflow",
        metadata=m.ObjectMeta(generate_name="rpt-transfer-study-", labels=pods.PART_OF),
        spec=m.WorkflowSpec(
            workflow_template_ref=m.WorkflowTemplateRef(name=TEMPLATE_NAME),
            arguments=_args(study=EXAMPLE_STUDY),
        ),
    )


OBJECTS: dict[str, Callable[[], Any]] = {
    f"{TEMPLATE_NAME}.yaml": workflow_template,
    f"{pods.LIMITS_CONFIGMAP}.yaml": limits_config_map,
    "examples/study.yaml": example_workflow,
}
"""Each generated file under workflows/ and what builds it."""
CHART_OBJECTS = {f"{TEMPLATE_NAME}.yaml": workflow_template}
"""The files the chart installs from its own copy (charts/rpt-transfer/files/workflows/); the limits ConfigMap
it renders from its values instead."""


def main(argv: list[str] | None = None) -> int:
    """`--write`: regenerate workflows/ and the chart's copy; `--check`: exit 1 naming each stale file."""
    parser = argparse.ArgumentParser(
        prog="python -m rpt_transfer.argo.templates", description=__doc__.splitlines()[0]
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="regenerate the files under workflows/")
    action.add_argument("--check", action="store_true", help="exit 1 if a file under workflows/ is stale")
    parser.add_argument("--root", type=Path, default=render.WORKFLOWS_DIR, help="the workflows folder")
    parser.add_argument(
        "--chart-root", type=Path, default=render.CHART_FILES_DIR, help="the chart's copy of the templates"
    )
    options = parser.parse_args(argv)
    targets = ((options.root, OBJECTS), (options.chart_root, CHART_OBJECTS))
    if options.write:
        for root, objects in targets:
            for path in render.write(objects, root):
                print(f"wrote {root / path}")
        return 0
    stale = [root / path for root, objects in targets for path in render.stale(objects, root)]
    for path in stale:
        print(
            f"stale: {path} differs from src/rpt_transfer/argo/templates.py; run "
            "`make workflows` (python -m rpt_transfer.argo.templates --write)",
            file=sys.stderr,
        )
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
