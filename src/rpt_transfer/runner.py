"""What the CLI's study commands do: load and resolve a study, plan it, run it, point at the results."""

from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rpt_transfer import benchmarks, settings
from rpt_transfer.benchmarks import BenchmarkSpec
from rpt_transfer.benchmarks.sources import UNPINNED, DatasetSource, data_root
from rpt_transfer.errors import PlanError
from rpt_transfer.executors import JobState, LocalExecutor, Outcome
from rpt_transfer.plan import STAGES, Plan, load_plan, make_plan, plan_key, spec_key
from rpt_transfer.spec import InterventionalStudy, ObservationalStudy, load_study
from rpt_transfer.store import Store


@dataclass
class Loaded:
    """A checked study with its resolved store and tracking locations."""

    path: Path
    study: ObservationalStudy | InterventionalStudy
    settings: settings.Settings
    store: Store
    benchmarks: list[BenchmarkSpec]
    warnings: list[str] = field(default_factory=list)

    def plan(self) -> Plan:
        """The study's plan against this store."""
        return make_plan(self.study, self.store.uri, self.settings.tracking_uri)


def load_and_resolve(path: Path, *, check_store: bool, write: bool = True) -> Loaded:
    """Load the spec, apply settings layers, and optionally check the store can be reached (and written)."""
    study = load_study(path)
    resolved = settings.resolve(study.store, study.tracking_uri)
    store = Store.from_uri(resolved.store_uri)
    if check_store:
        store.check_access(write=write)
    warnings = [
        f"models.{name}: revision {model.revision!r} is not a 40-hex commit; results are cached under "
        "that name and go stale when it moves"
        for name, model in study.models.items()
        if not model.pinned()
    ]
    if data_root() is None:
        warnings += [
            f"benchmark {bench.name}: {bench.source.hf_id} has no pinned revision; the Hub branch can move"
            for bench in benchmarks.expand(study.benchmarks)
            if isinstance(bench.source, DatasetSource) and bench.source.revision == UNPINNED
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


def read_plan(uri: str) -> Plan:
    """A plan from a local path or a store URI; refuses a plan stored under another study's name."""
    if "://" in uri and not uri.startswith("file://"):
        root, _, name = uri.rpartition("/")
        text = Store.from_uri(root).read_bytes(name).decode()
    else:
        path = Path(uri.removeprefix("file://"))
        if not path.is_file():
            raise PlanError(
                f"{uri}: no such plan file; `rpt-transfer run` writes it to studies/<study>/plan.json"
            )
        text = path.read_text(encoding="utf-8")
    the_plan = load_plan(text, uri)
    parts = uri.rstrip("/").split("/")
    if len(parts) >= 3 and parts[-3] == "studies" and parts[-2] != the_plan.study:
        raise PlanError(f"{uri}: holds the plan of study {the_plan.study!r}, not {parts[-2]!r}")
    return the_plan


@dataclass
class RunResult:
    """What `rpt-transfer run` prints at the end."""

    summary: Table
    pointers: list[str]
    failed: bool


def run_study(path: Path, *, workers: int, console: Console) -> RunResult:
    """Write spec and plan to the store, run every job not yet done, and summarise."""
    loaded = load_and_resolve(path, check_store=True, write=True)
    for warning in loaded.warnings:
        console.print(f"warning: {warning}", markup=False)
    plan, store = loaded.plan(), loaded.store
    store.write_bytes(spec_key(plan.study), path.read_bytes())
    store.write_bytes(plan_key(plan.study), plan.to_json().encode())
    pending = [job for job in plan.jobs if not store.is_done(job.key)]
    if pending and plan.tracking_uri is not None:
        _prepare_tracking(plan, store)
    root = store.local_path()
    log_dir = (root / "logs" / plan.study) if root is not None else Path(".rpt/logs") / plan.study
    executor = LocalExecutor(store, workers=workers, log_dir=log_dir, console=console)
    executor.submit(plan, store.key_uri(plan_key(plan.study)))
    outcomes = executor.wait()
    failed = any(o.state in (JobState.FAILED, JobState.BLOCKED) for o in outcomes)
    return RunResult(_summary(plan, outcomes), _pointers(plan, store, failed), failed)


def _prepare_tracking(plan: Plan, store: Store) -> None:
    """Create the experiment and parent run once, before jobs log into them in parallel."""
    from rpt_transfer.tracking import Tracker

    assert plan.tracking_uri is not None
    root = store.local_path()
    Tracker(plan.tracking_uri, settings.default_artifact_root(root) if root else None).study_run(plan.study)


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
        root = store.local_path()
        report = root / aggregate.key / "report.html" if root is not None else store.key_uri(aggregate.key)
        lines.append(f"report: {report}")
    if plan.tracking_uri is not None:
        if plan.tracking_uri.startswith("sqlite:"):
            lines.append(
                f"MLflow: mlflow ui --backend-store-uri {plan.tracking_uri}  "
                f"(experiment rpt-transfer/{plan.study})"
            )
        else:
            lines.append(f"MLflow: {plan.tracking_uri} (experiment rpt-transfer/{plan.study})")
    return lines
