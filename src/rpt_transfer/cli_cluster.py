"""The cluster commands of `rpt-transfer`: `submit` a study, its `status`, and the `reward-server`.

`submit` runs a study as an Argo Workflow; trainers on the cluster get their rewards from `reward-server`.
Thin, like cli.py: parse, call `rpt_transfer.argo` (or `training.reward_server`), print. `register(app)`
adds them to the main command.
"""

from typing import Annotated

import typer
from rich.table import Table

from rpt_transfer.cli_common import StudyArg, err, out

NamespaceOpt = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        "-n",
        help="Namespace of the Workflows (default: the kubeconfig context's).",
        show_default=False,
    ),
]
ArgoServerOpt = Annotated[
    str | None,
    typer.Option(
        help="Go through this Argo Server (https://host:2746; token from ARGO_TOKEN) instead of the "
        "Kubernetes API (default: ARGO_SERVER, else the kubeconfig or the pod's service account).",
        show_default=False,
    ),
]


def _say(line: str) -> None:
    out.print(line, markup=False)


def _warn(line: str) -> None:
    err.print(f"warning: {line}", markup=False)


def submit(
    study_file: StudyArg,
    namespace: NamespaceOpt = None,
    watch: Annotated[
        bool, typer.Option("--watch", help="Follow the Workflow until it ends (exit 1 unless it succeeded).")
    ] = False,
    argo_server: ArgoServerOpt = None,
    score_chunk: Annotated[
        int | None, typer.Option(min=1, help="Score jobs per score pod (default: the template's, 4).")
    ] = None,
) -> None:
    """Run the study on a cluster: check, store spec and plan, show the estimate, create the Argo Workflow."""
    from rpt_transfer.argo.submit import submit_study
    from rpt_transfer.argo.submit import watch as watch_workflow

    submitted = submit_study(
        study_file,
        namespace=namespace,
        argo_server=argo_server,
        score_chunk=score_chunk,
        say=_say,
        warn=_warn,
    )
    ns, name = submitted.namespace, submitted.name
    _say(f"submitted Workflow {name} in namespace {ns}")
    _say(f"follow it: argo watch -n {ns} {name}   or   rpt-transfer status {study_file} -n {ns}")
    if not watch:
        return
    state = watch_workflow(submitted, _say)
    _print_failures(state.failures, ns)
    if state.phase != "Succeeded":
        raise typer.Exit(1)


def status(study_file: StudyArg, namespace: NamespaceOpt = None, argo_server: ArgoServerOpt = None) -> None:
    """Jobs done, running and failed per kind (store, newest Workflow); each failed pod's log command."""
    from rpt_transfer.argo.client import study_selector
    from rpt_transfer.argo.status import COLUMNS, study_status

    report = study_status(study_file, namespace, argo_server)
    state, ns, study = report.state, report.namespace, report.state.plan.study
    if state.workflow is None:
        _say(f"study {study}: no Workflow in namespace {ns} (label {study_selector(study)}); the store says:")
    else:
        meta, wf_status = state.workflow["metadata"], state.workflow.get("status") or {}
        when = "".join(
            f", {label} {wf_status[key]}"
            for key, label in (("startedAt", "started"), ("finishedAt", "finished"))
            if wf_status.get(key)
        )
        message = f": {wf_status['message']}" if wf_status.get("message") else ""
        phase = state.phase or "Pending"
        _say(f"study {study}: Workflow {meta['name']} in namespace {ns}, {phase}{when}{message}")
    table = Table(title=f"jobs of study {study} (store {report.store})")
    table.add_column("kind")
    for column in COLUMNS:
        table.add_column(column, justify="right")
    for kind, counts in state.counts().items():
        table.add_row(kind, *(str(counts[column]) for column in COLUMNS))
    out.print(table)
    _print_failures(state.failures, ns)


def _print_failures(failures: list, namespace: str) -> None:
    if failures:
        _say(f"failed pods ({len(failures)}):")
    for failure in failures:
        what = failure.part or failure.node
        _say(f"  {what}: pod {failure.pod} {failure.phase}: {failure.message}")
        if failure.jobs:
            _say(f"    jobs not done: {', '.join(failure.jobs)}")
        _say(f"    log: {failure.log_command(namespace)}")


def reward_server(
    host: Annotated[
        str, typer.Option(help="Address to listen on (a pod: 0.0.0.0, so trainers in other pods reach it).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free port).")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, help="Scoring processes (default: the CPUs this process may use).", show_default=False
        ),
    ] = None,
    max_body_bytes: Annotated[
        int, typer.Option(min=1, help="Largest request body accepted; larger ones get 413.")
    ] = 16 << 20,
    sandbox_min: Annotated[
        str | None,
        typer.Option(
            help="Weakest sandbox isolation accepted, as RPT_SANDBOX_MIN (default: that, else userns; "
            "see docs/sandbox.md).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve rewards to trainers (OpenRLHF `--reward.remote_url http://HOST:PORT/get_reward`), sandboxed.

    Model-written code runs only in the sandbox, never with credentials (docs/reward-service.md). Stops on
    SIGTERM after answering the requests in flight.
    """
    from rpt_transfer.training.reward_server import serve

    serve(host=host, port=port, workers=workers, max_body_bytes=max_body_bytes, sandbox_min=sandbox_min)


def register(app: typer.Typer) -> None:
    """Add `submit`, `status` and `reward-server` to the `rpt-transfer` command."""
    app.command()(submit)
    app.command()(status)
    app.command("reward-server")(reward_server)
