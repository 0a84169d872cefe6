"""What the CLI's study commands do: load and resolve a study, plan and prepare it, run it, show results."""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from rpt_transfer import benchmarks, settings
from rpt_transfer.benchmarks import BenchmarkSpec
from rpt_transfer.benchmarks.sources import UNPINNED, DatasetSource, data_root
from rpt_transfer.executors import JobState, LocalExecutor, Outcome
from rpt_transfer.plan import STAGES, Plan, content_digest, spec_key
from rpt_transfer.plan_store import current_plan, publish_plan, put_once, read_plan
from rpt_transfer.planner import make_plan
from rpt_transfer.spec import InterventionalStudy, ObservationalStudy, load_study, problems_error
from rpt_transfer.store import Store
from rpt_transfer.training.data import stage_inputs
from rpt_transfer.validation import open_store, server_problems

if TYPE_CHECKING:
    from rpt_transfer.tracking import Tracker

__all__ = [
    "Loaded",
    "Prepared",
    "RunResult",
    "current_plan",
    "load_and_resolve",
    "prepare",
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

    def plan(self, spec_bytes: bytes | None = None) -> Plan:
        """The study's plan against this store; it names the spec's content key (default: the file now)."""
        data = self.path.read_bytes() if spec_bytes is None else spec_bytes
        made = make_plan(self.study, self.store.uri, self.settings.tracking_uri)
        return made.model_copy(update={"spec": spec_key(made.study, content_digest(data))})


def load_and_resolve(path: Path, *, check_store: bool, write: bool = True, runnable: bool = True) -> Loaded:
    """Load the spec, apply settings layers, and optionally check the store can be reached (and written).

    `runnable` (for `validate`, `plan`, `run`) also refuses a backend or trainer this installation lacks;
    `report`, which only reads results made elsewhere, turns it off.
    """
    study = load_study(path, runnable=runnable)
    resolved = settings.resolve(study.store, study.tracking_uri)
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


def prepare(path: Path, warn: Callable[[str], None] = lambda _: None, *, servers: bool = False) -> Prepared:
    """Everything before the first job: check the store, write spec and plan, create MLflow's experiment.

    Nothing is written before the spec has loaded and planned without error, so a bad spec leaves the store
    as it was. Repeating it costs nothing: the same spec gives the same plan URI and no new object.
    `servers` (what `run` asks) also refuses, first, a backend-openai server that cannot serve the study
    now; `prepare` alone does not, as a cluster's servers may come up after it.
    """
    loaded = load_and_resolve(path, check_store=False)
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
        tracker.study_run(plan.study)  # parent run exists before jobs log into it in parallel
    return Prepared(plan, uri, store)


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
    if plan.tracking_uri is not None:
        if plan.tracking_uri.startswith("sqlite:"):
            lines.append(
                f"MLflow: mlflow ui --backend-store-uri {plan.tracking_uri}  "
                f"(experiment rpt-transfer/{plan.study})"
            )
        else:
            lines.append(f"MLflow: {plan.tracking_uri} (experiment rpt-transfer/{plan.study})")
    return lines
