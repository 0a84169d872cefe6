"""What the CLI's study commands do: load and resolve a study, plan and prepare it, run it, show results."""

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from rpt_transfer import benchmarks, settings
from rpt_transfer.benchmarks import BenchmarkSpec
from rpt_transfer.benchmarks.sources import UNPINNED, DatasetSource, data_root
from rpt_transfer.errors import RptError, SpecError, StoreError
from rpt_transfer.executors import JobState, LocalExecutor, Outcome
from rpt_transfer.plan import STAGES, Plan, content_digest, spec_key
from rpt_transfer.plan_store import current_plan, current_plan_key, publish_plan, put_once, read_plan
from rpt_transfer.planner import make_plan
from rpt_transfer.spec import InterventionalStudy, ObservationalStudy, load_study, parse_study, problems_error
from rpt_transfer.store import Store
from rpt_transfer.training.data import stage_inputs
from rpt_transfer.validation import open_store, server_problems

if TYPE_CHECKING:
    from rpt_transfer.tracking import Tracker

__all__ = [
    "Closed",
    "Loaded",
    "Prepared",
    "RunResult",
    "close_study",
    "current_plan",
    "load_and_resolve",
    "prepare",
    "prepare_study",
    "read_plan",
    "run_study",
]


@dataclass
class Loaded:
    """A checked study with its resolved store and tracking locations."""

    path: Path
    study: ObservationalStudy | InterventionalStudy
    settings: settings.Settings
    store: Store
    benchmarks: list[BenchmarkSpec]
    warnings: list[str] = field(default_factory=list)
    _plans: dict[str, Plan] = field(default_factory=dict, repr=False)

    def plan(self, spec_bytes: bytes | None = None) -> Plan:
        """The study's plan against this store; it names the spec's content key (default: the file now).

        Made once per spec content: `submit` checks the plan before `prepare` stores the same one, and
        planning may ask the Hub to resolve branches.
        """
        data = self.path.read_bytes() if spec_bytes is None else spec_bytes
        digest = content_digest(data)
        if digest not in self._plans:
            made = make_plan(self.study, self.store.uri, self.settings.tracking_uri)
            self._plans[digest] = made.model_copy(update={"spec": spec_key(made.study, digest)})
        return self._plans[digest]


def load_and_resolve(
    path: Path, *, check_store: bool, write: bool = True, runnable: bool = True, store_uri: str | None = None
) -> Loaded:
    """Load the spec, apply settings layers, and optionally check the store can be reached (and written).

    `runnable` (for `validate`, `plan`, `run`) also refuses a backend or trainer this installation lacks;
    `report`, which only reads results made elsewhere, turns it off. `store_uri` (a spec read from a URI,
    in a pod) fixes the store and lets the environment name MLflow first (`settings.resolve_in_pod`).
    """
    study = load_study(path, runnable=runnable)
    if store_uri is None:
        resolved = settings.resolve(study.store, study.tracking_uri)
    else:
        resolved = settings.resolve_in_pod(store_uri, study.tracking_uri)
    store = open_store(path, resolved)
    if check_store:
        store.check_access(write=write)
    warnings = [
        f"models.{name}: revision {model.revision!r} is not a 40-hex commit; planning resolves it to the "
        "commit it points at now (which needs the Hub), so jobs change when it moves"
        for name, model in study.models.items()
        if not model.pinned()
    ]
    if data_root() is None:
        warnings += [
            f"benchmark {bench.name}: {bench.source.hf_id} has no pinned revision; planning resolves its "
            "default branch to a commit (which needs the Hub), so jobs change when it moves"
            for bench in benchmarks.expand(study.benchmarks)
            if isinstance(bench.source, DatasetSource)
            and bench.source.revision == UNPINNED
            and bench.source.hub_datasets()
        ]
    root = store.local_path()
    if resolved.tracking_uri is None and "none" not in resolved.tracking_from:
        if root is not None:
            resolved = resolved._replace(tracking_uri=settings.default_tracking_uri(root))
        else:
            warnings.append(
                f"no MLflow tracking: set `tracking_uri` or {settings.TRACKING_ENV} for an S3 store"
            )
    return Loaded(path, study, resolved, store, benchmarks.expand(study.benchmarks), warnings)


@dataclass(frozen=True)
class Prepared:
    """What `prepare` wrote: the plan, its URI in the store (what every job is given), and the store."""

    plan: Plan
    uri: str
    store: Store


def prepare(
    path: Path,
    warn: Callable[[str], None] = lambda _: None,
    *,
    servers: bool = False,
    store_uri: str | None = None,
    workflow: str | None = None,
    runnable: bool = True,
    loaded: Loaded | None = None,
) -> Prepared:
    """Everything before the first job: check the store, write spec and plan, create MLflow's experiment.

    Nothing is written before the spec has loaded and planned without error, so a bad spec leaves the store
    as it was. Repeating it costs nothing: the same spec gives the same plan URI and no new object.
    `servers` (what `run` asks) also refuses, first, a backend-openai server that cannot serve the study
    now; `prepare` alone does not, as a cluster's servers may come up after it. `store_uri`: see
    `load_and_resolve`; `workflow`: see `Tracker.study_run`. `runnable=False` (what `submit` asks) plans a
    study whose backend or trainer only the cluster's pods have installed. `loaded`: this very file as the
    caller loaded it already (`submit` checks its plan first), so it is neither loaded nor planned again.
    """
    if loaded is None:
        loaded = load_and_resolve(path, check_store=False, store_uri=store_uri, runnable=runnable)
    spec_bytes = path.read_bytes()
    for warning in loaded.warnings:
        warn(warning)
    plan, store = loaded.plan(spec_bytes), loaded.store
    problems = server_problems(loaded.study, plan) if servers else []
    if problems:
        raise problems_error(str(path), problems)
    store.check_access(write=True)
    tracker = _tracker(plan, store)  # connects now: an unreachable server fails before anything is written
    stage_inputs(plan, store)  # training files into the store under their sha256, before a plan names them
    assert plan.spec is not None
    put_once(store, plan.spec, spec_bytes)
    uri = publish_plan(store, plan)
    if tracker is not None:
        tracker.study_run(plan.study, workflow=workflow)  # exists before jobs log into it in parallel
    elif workflow is not None:
        warn(f"MLflow tracking is off for study {plan.study}: --workflow {workflow} marks no run")
    return Prepared(plan, uri, store)


def is_uri(study: str) -> bool:
    """Whether a STUDY argument names a store object (`s3://...`, `file://...`) rather than a local path."""
    return "://" in study


@dataclass(frozen=True)
class SpecAt:
    """A spec read from a store URI: its bytes, its study's name, and the store the pod works in for it."""

    uri: str
    data: bytes
    study: str
    store: Store


def read_spec(uri: str) -> SpecAt:
    """Read a spec from its URI through the store layer; find its study and the store it belongs to.

    A URI with the layout `prepare` writes (`<root>/studies/<study>/specs/<sha>.yaml`, what `submit` passes)
    names both, so the spec is not parsed here: checking its fields would also look for its training files,
    which only the machine that planned it has. Other URIs are parsed for the study's name and `store`.
    The store is `RPT_STORE` when set (the pod's own name for it), else the root the URI lies in, else the
    spec's `store`.
    """
    root, _, name = uri.rstrip("/").rpartition("/")
    if "://" not in root or not name:
        raise StoreError(
            f"{uri}: not a spec's store URI; expected s3://bucket/.../spec.yaml or file:///.../spec.yaml"
        )
    try:
        data = Store.from_uri(root).read_bytes(name)
    except OSError as err:  # a folder, or a file this user may not read
        raise StoreError(f"{uri}: cannot read the spec ({err.strerror or err})") from None
    parts = uri.split("/")
    if len(parts) >= 6 and parts[-4] == "studies" and parts[-2] == "specs":
        study, spec_store = parts[-3], "/".join(parts[:-4])
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise SpecError(f"{uri}: the study file is not UTF-8 text") from None
        parsed = parse_study(text, uri)
        study, spec_store = parsed.study, settings.resolve(parsed.store, None).store_uri
    return SpecAt(uri, data, study, Store.from_uri(os.environ.get(settings.STORE_ENV) or spec_store))


def prepare_study(
    study: str, warn: Callable[[str], None] = lambda _: None, *, workflow: str | None = None
) -> Prepared:
    """`rpt-transfer prepare STUDY`: a local spec file as `prepare`, or a spec's store URI (in a pod).

    Given a URI, the study's current plan is reused when it was made from these exact bytes, so a pod
    never plans (no Hub, none of the planner's local files): the workflow runs the plan that `submit`
    prepared. Otherwise the spec is planned from a temporary copy, with the pod's store and MLflow
    (`settings.resolve_in_pod`); messages name the URI.
    """
    if not is_uri(study):
        return prepare(Path(study), warn, workflow=workflow)
    spec = read_spec(study)
    name, store = spec.study, spec.store
    if workflow is not None and not store.uri.startswith("s3://"):
        raise StoreError(  # a pod's folder dies with it: the other pods would never find the plan
            f"{study}: store {store.uri} is not on S3; a Workflow's pods share only an S3-compatible store: "
            f"set the spec's `store` or the Workflow's `store` parameter (RPT_STORE) to s3://bucket/prefix"
        )
    if current_plan_key(store, name) is not None:
        plan = current_plan(store, name)
        if plan.spec == spec_key(name, content_digest(spec.data)):
            tracking_uri = _tracking_of(plan, store, in_pod=True)
            if tracking_uri is not None:
                from rpt_transfer.tracking import open_tracker

                open_tracker(tracking_uri, store).study_run(name, workflow=workflow)
            return Prepared(plan, store.key_uri(plan.key), store)
    with tempfile.TemporaryDirectory(prefix="rpt-spec-") as folder:
        path = Path(folder) / (spec.uri.rpartition("/")[2] or "spec.yaml")
        path.write_bytes(spec.data)
        try:
            return prepare(
                path,
                lambda line: warn(line.replace(str(path), study)),
                store_uri=store.uri,
                workflow=workflow,
                runnable=False,  # the runner image plans; the evaluator and trainer images run the backends
            )
        except RptError as err:
            raise _renamed(err, str(path), study) from None


def _tracking_of(plan: Plan, store: Store, *, in_pod: bool) -> str | None:
    """The MLflow of a prepared study, as a job finds it in a pod (a spec URI), else as the plan names it.

    In a pod the environment comes first; from a local spec it is the one its `run` logged into.
    """
    if not in_pod:
        return plan.tracking_uri
    return settings.in_job(plan.store, plan.tracking_uri, store=store.uri)[1]


def _renamed(error: RptError, temp: str, uri: str) -> RptError:
    """The same error naming the spec's URI instead of the temporary copy it was planned from."""
    if isinstance(error, SpecError):
        return SpecError(str(error).replace(temp, uri), [p.replace(temp, uri) for p in error.problems])
    try:
        return type(error)(str(error).replace(temp, uri))
    except TypeError:  # a subclass whose constructor wants more than a message
        return RptError(str(error).replace(temp, uri))


@dataclass(frozen=True)
class Closed:
    """What `track close` did: where the report is (None: not made), MLflow's place, and who holds the run."""

    study: str
    report: str | None
    tracking_uri: str | None
    held_by: str | None


CLOSE_STATUSES = {"Succeeded": "FINISHED", "Failed": "FAILED", "Error": "FAILED"}
"""Argo's `{{workflow.status}}` -> the MLflow status of the study's parent run."""


def close_study(study: str, status: str, workflow: str | None = None) -> Closed:
    """`rpt-transfer track close`: end the parent run of the study's current plan, say where the report is.

    STUDY is a path or a spec URI, found as `prepare_study` finds it (in a pod: the pod's store and MLflow).
    """
    if status not in CLOSE_STATUSES:
        raise RptError(f"--status {status!r}: accepted: {', '.join(CLOSE_STATUSES)} (Argo's workflow.status)")
    if is_uri(study):
        spec = read_spec(study)
        name, store = spec.study, spec.store
    else:
        loaded = load_and_resolve(Path(study), check_store=False, runnable=False)
        name, store = loaded.study.study, loaded.store
    plan = current_plan(store, name)
    tracking_uri = _tracking_of(plan, store, in_pod=is_uri(study))
    held_by = None
    if tracking_uri is not None:
        from rpt_transfer.tracking import open_tracker

        tracker = open_tracker(tracking_uri, store)
        held_by = tracker.close_study_run(name, CLOSE_STATUSES[status], status, workflow)
    aggregate = next((job for job in plan.jobs if job.kind == "aggregate"), None)
    done = aggregate is not None and store.is_done(aggregate.key)
    report = store.object_location(aggregate.key, "report.html") if done and aggregate else None
    return Closed(name, report, tracking_uri, held_by)


@dataclass
class RunResult:
    """What `rpt-transfer run` prints at the end."""

    summary: Table
    pointers: list[str]
    failed: bool


def run_study(path: Path, *, workers: int, console: Console) -> RunResult:
    """Prepare the study (as `rpt-transfer prepare` does), run every job not yet done, and summarise.

    With backend openai, every server is asked first (as `validate` does): a wrong key or a server that is
    not up is one line before anything is written, not one failed job per model.
    """
    prepared = prepare(path, warn=lambda line: console.print(f"warning: {line}", markup=False), servers=True)
    plan, store = prepared.plan, prepared.store
    root = store.local_path()
    log_dir = (root / "logs" / plan.study) if root is not None else Path(".rpt/logs") / plan.study
    executor = LocalExecutor(store, workers=workers, log_dir=log_dir, console=console)
    executor.submit(plan, prepared.uri)
    outcomes = executor.wait()
    failed = any(o.state in (JobState.FAILED, JobState.BLOCKED) for o in outcomes)
    return RunResult(_summary(plan, outcomes), _pointers(plan, store, failed), failed)


def _tracker(plan: Plan, store: Store) -> "Tracker | None":
    """MLflow as the plan names it (None when off); imports mlflow only when tracking is on."""
    if plan.tracking_uri is None:
        return None
    from rpt_transfer.tracking import open_tracker

    return open_tracker(plan.tracking_uri, store)


def _summary(plan: Plan, outcomes: list[Outcome]) -> Table:
    table = Table(title=f"study {plan.study}")
    states = [JobState.DONE, JobState.CACHED, JobState.FAILED, JobState.BLOCKED]
    table.add_column("kind")
    for state in states:
        table.add_column(state.value, justify="right")
    table.add_column("seconds", justify="right")
    for kind in STAGES:
        mine = [o for o in outcomes if o.job.kind == kind]
        if mine:
            counts = [str(sum(o.state is state for o in mine)) for state in states]
            table.add_row(kind, *counts, f"{sum(o.seconds for o in mine):.1f}")
    return table


def _pointers(plan: Plan, store: Store, failed: bool) -> list[str]:
    aggregate = next(job for job in plan.jobs if job.kind == "aggregate")
    lines = []
    if failed:
        lines.append(
            "some jobs failed: their logs are named above; fix the cause and run the same command again"
        )
    if store.is_done(aggregate.key):
        lines.append(f"report: {store.object_location(aggregate.key, 'report.html')}")
        from rpt_transfer.analysis.leaderboard import latest_leaderboard  # pandas: only after a report

        board = latest_leaderboard(store)
        if board is not None:
            where = store.object_location(board, "leaderboard.html")
            lines.append(f"leaderboard: {where} (every finished study in the store)")
    if plan.tracking_uri is not None:
        if plan.tracking_uri.startswith("sqlite:"):
            lines.append(
                f"MLflow: mlflow ui --backend-store-uri {plan.tracking_uri}  "
                f"(experiment rpt-transfer/{plan.study})"
            )
        else:
            lines.append(f"MLflow: {plan.tracking_uri} (experiment rpt-transfer/{plan.study})")
    return lines
