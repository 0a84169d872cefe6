"""The `rpt-transfer` command. Thin: parse, call, print; user errors become one line and exit 2."""

import functools
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec

import click
import typer
from rich.table import Table

from rpt_transfer.cli_common import StudyArg, err, out
from rpt_transfer.errors import EXIT_TRANSIENT, RptError, SpecError, TransientError

try:  # recent typer ships its own copy of click and raises that copy's exceptions
    from typer._click.exceptions import ClickException as _BundledClickException
except ImportError:  # older typer uses click itself
    _BundledClickException = click.ClickException
USAGE_ERRORS = (click.ClickException, _BundledClickException)
ABORTS = (KeyboardInterrupt, click.Abort, getattr(typer, "Abort", click.Abort))

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)
job_app = typer.Typer(no_args_is_help=True, help="Run one job of a plan (what every executor calls).")
benchmarks_app = typer.Typer(no_args_is_help=True, help="The benchmark registry.")
app.add_typer(job_app, name="job")
app.add_typer(benchmarks_app, name="benchmarks")
store_app = typer.Typer(no_args_is_help=True, help="Look after the store.")
app.add_typer(store_app, name="store")
track_app = typer.Typer(no_args_is_help=True, help="MLflow, the view of the store.")
app.add_typer(track_app, name="track")
_P = ParamSpec("_P")


def transient_exits(command: Callable[_P, None]) -> Callable[_P, None]:
    """Exit 75, not 2, when the command fails in a way that may pass (`TransientError`): Argo retries it.

    Only the commands a workflow's pods run (`prepare`, `job run`, `track close`) say so; at a terminal
    (`run`, `validate`, ...) a store that does not answer stays a one-line error with exit 2.
    """

    @functools.wraps(command)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except TransientError as error:
            err.print(f"error: {error}", markup=False)
            raise typer.Exit(EXIT_TRANSIENT) from None

    return wrapper


@app.command()
def validate(study_file: StudyArg) -> None:
    """Check a study without running or writing anything: every problem `plan` and `run` would hit."""
    from rpt_transfer.validation import validate_study

    try:
        loaded = validate_study(study_file)
    except SpecError as error:
        for line in error.problems:
            err.print(f"error: {line}", markup=False)
        raise typer.Exit(2) from None
    for warning in loaded.warnings:
        err.print(f"warning: {warning}", markup=False)
    study = loaded.study
    out.print(
        f"{study_file}: ok ({study.kind}, {len(study.models)} models, {len(loaded.benchmarks)} benchmarks; "
        f"store {loaded.settings.store_uri})",
        markup=False,
    )


@app.command()
def plan(
    study_file: StudyArg,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the plan's URI, {id, key} items per stage, each job's deps, model groups."
        ),
    ] = False,
    kind: Annotated[
        str | None,
        typer.Option(help="With --json: only this stage's items, or `groups` (each model's generate jobs)."),
    ] = None,
    estimate: Annotated[
        bool,
        typer.Option(
            "--estimate",
            help="Print prompts, samples, tokens and GPU-hours per model, with sources (--json: as JSON).",
        ),
    ] = False,
) -> None:
    """Print the study's job DAG and its counts (jobs, prompts, samples), or with --estimate its cost."""
    from rpt_transfer.plan import STAGES
    from rpt_transfer.runner import load_and_resolve

    loaded = load_and_resolve(study_file, check_store=False)
    the_plan = loaded.plan()
    if estimate:  # checked before --json: `--estimate --json` prints the estimate as JSON
        from rpt_transfer.estimate import estimate_plan
        from rpt_transfer.estimate_view import print_estimate

        if kind is not None:
            raise RptError(f"--kind {kind!r}: it selects from the plan's --json, not from --estimate")
        costs = estimate_plan(the_plan, loaded.study, loaded.store)
        if as_json:
            sys.stdout.write(json.dumps(costs.to_json(), indent=1) + "\n")
        else:
            print_estimate(costs, out)
        return
    if as_json:
        payload = the_plan.fanout()
        if kind == "groups":  # a model with its generate jobs per item: one GPU pod each
            payload = payload["groups"]
        elif kind is not None:
            if kind not in STAGES:
                raise RptError(f"--kind {kind!r}: accepted: {', '.join(STAGES)}, groups")
            payload = payload["stages"][kind]
        sys.stdout.write(json.dumps(payload, indent=1) + "\n")
        return
    table = Table(title=f"plan of study {the_plan.study}", show_lines=False)
    for column in ("kind", "job", "what", "needs"):
        table.add_column(column)
    for job in the_plan.jobs:
        what = " × ".join(str(job.context[k]) for k in ("model", "benchmark") if k in job.context)
        if job.kind == "generate":
            shard = job.inputs["shard"]
            what += f" (shard {shard['index'] + 1}/{shard['count']}, {job.context['items']} items)"
        table.add_row(job.kind, job.id, what or job.context.get("study", ""), ", ".join(job.deps) or "-")
    out.print(table)
    counts = the_plan.counts()
    out.print(", ".join(f"{counts[k]} {k}" for k in (*STAGES, "jobs", "prompts", "samples")))


RESOURCE_NAME = re.compile(
    r"([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?"  # optional prefix: a DNS subdomain and '/'
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)
"""A Kubernetes (extended) resource name: an optional DNS-subdomain prefix and `/`, then a name part."""
StudyRef = Annotated[
    str,
    typer.Argument(help="Study spec: a path, or its store URI (s3://..., file://...).", show_default=False),
]


@app.command()
@transient_exits
def prepare(
    study: StudyRef,
    outputs: Annotated[
        Path | None,
        typer.Option(
            help="Also write plan, pretrain.json, train.json, models.json here (Argo's output parameters)."
        ),
    ] = None,
    workflow: Annotated[
        str | None,
        typer.Option(
            help="The Argo workflow running the study: its MLflow parent run is RUNNING until closed."
        ),
    ] = None,
    score_chunk: Annotated[int, typer.Option(min=1, help="Score jobs per score part (--outputs).")] = 4,
    gpu_resource: Annotated[
        str, typer.Option(help="Extended resource GPU pods request (--outputs writes it, once checked).")
    ] = "nvidia.com/gpu",
) -> None:
    """Do everything before the first job (store, spec, plan, MLflow); print only the plan's URI.

    Given a store URI, the study's current plan is reused when it was made from the same bytes.
    """
    from rpt_transfer.fanout import plan_parts
    from rpt_transfer.runner import prepare_study

    if not RESOURCE_NAME.fullmatch(gpu_resource):  # it reaches the GPU pods' podSpecPatch as written
        raise RptError(
            f"--gpu-resource {gpu_resource!r}: not a Kubernetes resource name; accepted: a name such as "
            "nvidia.com/gpu or amd.com/gpu (letters, digits, '-', '_', '.', one optional '/' prefix)"
        )
    warn = lambda line: err.print(f"warning: {line}", markup=False)  # noqa: E731
    prepared = prepare_study(study, warn, workflow=workflow)
    if outputs is not None:
        parts = plan_parts(prepared.plan, score_chunk)
        files = {"plan": prepared.uri, **{f"{name}.json": json.dumps(value) for name, value in parts.items()}}
        files["gpu-resource"] = gpu_resource
        _write_outputs(outputs, files)
    sys.stdout.write(prepared.uri + "\n")


def _write_outputs(folder: Path, files: dict[str, str]) -> None:
    """Write each file whole or not at all (a temporary name, then a rename), for Argo's `valueFrom.path`."""
    import os
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                os.replace(temp, folder / name)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
    except OSError as error:
        raise RptError(f"--outputs {folder}: cannot write ({error.strerror or error})") from None


@app.command()
def run(
    study_file: StudyArg,
    workers: Annotated[int, typer.Option(min=1, help="Jobs run at once.")] = 2,
) -> None:
    """Plan the study and run every job not yet done, in dependency order; then say where the results are."""
    from rpt_transfer.runner import run_study

    result = run_study(study_file, workers=workers, console=err)
    out.print(result.summary)
    for line in result.pointers:
        out.print(line, markup=False)
    if result.failed:
        raise typer.Exit(1)


@app.command()
def report(
    study_files: Annotated[
        list[Path], typer.Argument(help="Study spec(s); two or more also write a side-by-side comparison.")
    ],
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Folder to write to (default: the store's reports/<study>/rendered)."),
    ] = None,
) -> None:
    """Re-render the report of finished score jobs from the store, without scoring anything again."""
    from rpt_transfer.reporting import render_reports

    rendered = render_reports(study_files, out_dir)
    for warning in rendered.warnings:
        err.print(f"warning: {warning}", markup=False)
    for study, path in rendered.reports.items():
        out.print(f"report {study}: {path}", markup=False)
    if rendered.comparison is not None:
        out.print(f"comparison: {rendered.comparison}", markup=False)


@job_app.command("run")
@transient_exits
def job_run(
    job_ids: Annotated[
        list[str] | None,
        typer.Argument(help="Job id(s) from the plan, run in this order.", show_default=False),
    ] = None,
    plan_uri: Annotated[
        str, typer.Option("--plan", help="A plan's URI (as `prepare` prints) or a path.", show_default=False)
    ] = ...,  # type: ignore[assignment]
    part: Annotated[
        str | None,
        typer.Option(help="Instead of ids: pretrain, train/I, generate/G, score/G/A:B or aggregate."),
    ] = None,
) -> None:
    """Run jobs of a plan in one process; a job whose manifest exists is skipped at once.

    Generate jobs of one model, backend and engine settings share one loaded model. One id fails as any
    command does (a user error: one `error:` line, exit 2; 75 when transient). Several ids or a --part:
    every id is checked first (exit 2), a failed job does not stop the others, each job gets a line (done,
    already done, failed: why) and the exit code is 75 if every failure was transient (store or server
    trouble that may pass; a job failing only because an earlier one in the list did counts as that one),
    else 1 if any failed.
    """
    import traceback

    from rpt_transfer.jobs import Ran, exit_code, run_job, run_jobs
    from rpt_transfer.runner import read_plan

    if bool(job_ids) == (part is not None):
        raise RptError("give job ids or --part PART, not both (and not neither)")
    plan = read_plan(plan_uri)
    if part is not None:
        from rpt_transfer.fanout import part_jobs

        ids = part_jobs(plan, part)
    else:
        ids = list(dict.fromkeys(job_ids or []))
        if len(ids) == 1:
            err.print(Ran(plan.job(ids[0]), manifest=run_job(plan, ids[0])).line, markup=False)
            return
    results = run_jobs(plan, ids)
    for result in results:  # a bug in one job: its traceback goes to the log, above the lines
        if result.error is not None and not isinstance(result.error, RptError):
            sys.stderr.write("".join(traceback.format_exception(result.error)))
    for result in results:
        err.print(result.line, markup=False)
    code = exit_code(results)
    if code:
        raise typer.Exit(code)


@benchmarks_app.command("list")
def benchmarks_list() -> None:
    """Benchmarks and suites the registry knows (registry data only, no datasets loaded)."""
    from rpt_transfer.benchmarks import ALL_BENCHMARKS, SUITES

    table = Table()
    for column in ("name", "domain", "version", "scorer", "items", "description"):
        table.add_column(column)
    for bench in ALL_BENCHMARKS:
        table.add_row(
            bench.name, bench.domain, bench.version, bench.scorer, str(bench.size()), bench.description
        )
    out.print(table)
    for suite, members in SUITES.items():
        out.print(f"suite {suite}: {', '.join(members)}", markup=False)


@store_app.command("gc")
def store_gc(
    store_uri: Annotated[
        str | None, typer.Argument(help="Store (default: RPT_STORE, else .rpt/store).", show_default=False)
    ] = None,
    min_age: Annotated[str, typer.Option(help="Only objects untouched this long: 24h, 30m, 7d, 0.")] = "24h",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would go; remove nothing.")] = False,
) -> None:
    """Remove job objects that no manifest lists (killed, failed or losing attempts) once old enough."""
    from rpt_transfer.settings import resolve
    from rpt_transfer.store import Store
    from rpt_transfer.store.gc import collect_garbage, parse_duration

    age = parse_duration(min_age)
    store = Store.from_uri(resolve(store_uri, None).store_uri)
    store.check_access(write=False)
    for line in collect_garbage(store, min_age=age, dry_run=dry_run).lines():
        out.print(line, markup=False)


@track_app.command("sync")
def track_sync(
    study_file: StudyArg,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow to write to (default: the study's, as `run` resolves it).")
    ] = None,
) -> None:
    """Rebuild every MLflow run of the study from the store: parent, train and score runs (idempotent)."""
    from rpt_transfer.tracking_sync import sync_study_file

    synced = sync_study_file(study_file, tracking_uri)
    out.print(
        f"synced study {synced.study} into {synced.tracking_uri}: {synced.train} train and {synced.score} "
        f"score runs, {synced.models} logged models, {synced.points} metric points added, "
        f"report {'synced' if synced.report else 'not done'}"
        f"; {synced.not_done} jobs not done; {synced.removed} leftover runs removed",
        markup=False,
    )


@track_app.command("close")
@transient_exits
def track_close(
    study: StudyRef,
    status: Annotated[
        str, typer.Option(help="Argo's {{workflow.status}}: Succeeded, Failed or Error.", show_default=False)
    ],
    workflow: Annotated[
        str | None, typer.Option(help="The workflow closing: a run a newer workflow holds is left alone.")
    ] = None,
) -> None:
    """End the study's MLflow parent run (FINISHED or FAILED), say where the report is (the exit handler)."""
    from rpt_transfer.runner import close_study
    from rpt_transfer.tracking import experiment_name

    closed = close_study(study, status, workflow)
    if closed.held_by is not None:
        err.print(
            f"warning: the parent run of study {closed.study} belongs to workflow {closed.held_by} now; "
            "left as it is",
            markup=False,
        )
    if closed.report is not None:
        out.print(f"report: {closed.report}", markup=False)
    else:
        out.print(
            f"report: not made (the aggregate job of study {closed.study} is not done); "
            f"`rpt-transfer status STUDY` shows why",
            markup=False,
        )
    if closed.tracking_uri is None:
        out.print(f"MLflow: off for study {closed.study}", markup=False)
    else:
        out.print(f"MLflow: {closed.tracking_uri} (experiment {experiment_name(closed.study)})", markup=False)


from rpt_transfer.cli_cluster import register as _register_cluster  # noqa: E402 - after the commands above
from rpt_transfer.cli_discovery import register as _register_discovery  # noqa: E402
from rpt_transfer.cli_leaderboard import register as _register_leaderboard  # noqa: E402

_register_cluster(app)
_register_discovery(app)
_register_leaderboard(app)


def main() -> None:
    """Entry point: one line and exit 2 for user errors (75: `transient_exits`), 130 on Ctrl-C; else a bug."""
    command = typer.main.get_command(app)
    try:
        code = command.main(standalone_mode=False)
    except USAGE_ERRORS as error:  # usage errors: click's own message names the argument or option
        hint = f" (see `{error.ctx.command_path} --help`)" if getattr(error, "ctx", None) else ""
        err.print(f"error: {error.format_message()}{hint}", markup=False)
        raise SystemExit(error.exit_code) from None
    except RptError as error:
        err.print(f"error: {error}", markup=False)
        raise SystemExit(2) from None
    except ABORTS:
        err.print("interrupted", markup=False)
        raise SystemExit(130) from None
    raise SystemExit(code if isinstance(code, int) else 0)
