"""Rebuild a study's MLflow runs from the store: the parent run with its report, train runs, score runs.

The store is the truth and MLflow a view, so every run can be made again from finished jobs' outputs: a
score run from the score parquet, a train run from `metrics.jsonl` and `summary.json` committed with the
checkpoint, the parent run from the aggregate job's report folder and its `metrics.json`. A score run also
names its benchmark as a dataset input (`tracking_datasets`) and the model it evaluated as a logged model
(`tracking_models`), whose page shows the run's result metrics. The jobs log through the same functions (a
score job after its commit, a train job at its end, the aggregate job for the whole study), and
`rpt-transfer track sync` calls `sync_study` on its own, into any server, as often as wanted: runs and
models are found again by their claims, params only added, metrics only where missing or changed.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd
from mlflow.entities import Run
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from rpt_transfer.analysis.tables import accuracy_table
from rpt_transfer.errors import RptError
from rpt_transfer.jobs.aggregate import REPORT_METRICS, read_scores
from rpt_transfer.jobs.rows import from_parquet
from rpt_transfer.jobs.score import SUMMARY_METRICS, summarise
from rpt_transfer.jobs.train_metrics import METRICS_FILE, SUMMARY_FILE, from_jsonl
from rpt_transfer.plan import Job, Plan
from rpt_transfer.store import Store
from rpt_transfer.tracking import PARENT_TAG, Tracker, open_tracker, same_value
from rpt_transfer.tracking_claims import CLAIM_TAG, PENDING, RunClaims, claims_prefix
from rpt_transfer.tracking_datasets import dataset_input
from rpt_transfer.tracking_models import Evaluated, LoggedModels, model_spec
from rpt_transfer.tracking_runs import (
    generation_tags,
    score_params,
    score_run_name,
    score_tags,
    train_params,
    train_run_name,
    train_tags,
)

REPORT_TAG = "report_sha"
"""Parent-run tag: hash of the report files last uploaded, so an unchanged report is not uploaded again."""
STALE_PENDING_S = 3600
"""A run still tagged pending after this long belongs to a writer that died before claiming it."""


@dataclass
class Synced:
    """What one sync did, for the command's summary line."""

    tracking_uri: str
    study: str
    train: int = 0
    score: int = 0
    not_done: int = 0
    report: bool = False
    points: int = 0
    removed: int = 0
    models: int = 0
    """Logged models the score runs link to (one per evaluated model)."""


def sync_study_file(path: Path, tracking_uri: str | None) -> Synced:
    """`rpt-transfer track sync`: the study's latest stored plan, synced into its (or the given) MLflow."""
    from rpt_transfer.plan_store import current_plan
    from rpt_transfer.runner import load_and_resolve

    loaded = load_and_resolve(path, check_store=True, write=True, runnable=False)  # reads, runs nothing
    uri = tracking_uri or loaded.settings.tracking_uri
    if uri is None:
        raise RptError(
            f"{path}: tracking is off for study {loaded.study.study!r} ({loaded.settings.tracking_from}); "
            "accepted: --tracking-uri URI, MLFLOW_TRACKING_URI, or `tracking_uri` in the study"
        )
    plan = current_plan(loaded.store, loaded.study.study)
    return sync_study(open_tracker(uri, loaded.store), plan, loaded.store)


def sync_study(
    tracker: Tracker,
    plan: Plan,
    store: Store,
    report_dir: Path | None = None,
    scores: pd.DataFrame | None = None,
) -> Synced:
    """Every run of the study from its finished jobs; the report from `report_dir` or the aggregate job.

    Score runs get their summaries from all score rows at once (`score_summaries`): `scores`, the rows the
    caller holds already (the aggregate job's `jobs.aggregate.read_scores`), else read here the same way.
    Runs that hold everything already are left alone (`CurrentRuns`); each logged model is found once.
    """
    synced = Synced(tracker.uri, plan.study)
    parent = tracker.study_run(plan.study)
    if scores is None:
        finished = [job for job in plan.jobs if job.kind == "score" and store.is_done(job.key)]
        scores = read_scores(plan, store, finished) if finished else None
    summaries = score_summaries(plan, scores) if scores is not None else {}
    current = CurrentRuns(tracker, store, plan.study)
    models = LoggedModels(tracker, store, plan.study)
    trained: dict[str, Run] = {}  # train job id -> its run, the source run of the checkpoint's model
    for job in plan.jobs:
        if job.kind not in ("train", "score"):
            continue
        if not store.is_done(job.key):
            synced.not_done += 1
        elif job.kind == "train":
            trained[job.id], added = _sync_train(tracker, plan, store, job, parent)
            synced.points += added
            synced.train += 1
        else:
            metrics = summaries.get(job.id) or score_metrics(store, job)
            evaluated = evaluation(tracker, plan, store, job, parent, models, trained)
            if not current.holds(score_run_state(plan, job, parent, metrics, evaluated)):
                sync_score(tracker, plan, store, job, parent, metrics, evaluated)
            synced.score += 1
    synced.models = models.found
    aggregate = next(job for job in plan.jobs if job.kind == "aggregate")
    if report_dir is not None:
        sync_report(tracker, parent, report_dir)
        synced.report = True
    elif store.is_done(aggregate.key):
        with tempfile.TemporaryDirectory(prefix="rpt-sync-") as tmp:
            sync_report(tracker, parent, store.download(aggregate.key, Path(tmp)))
        synced.report = True
    synced.removed = remove_leftovers(tracker, plan.study, {job.id for job in plan.jobs})
    models.remove_pending(STALE_PENDING_S)
    return synced


def sync_score(
    tracker: Tracker,
    plan: Plan,
    store: Store,
    job: Job,
    parent_run_id: str,
    metrics: dict | None = None,
    evaluated: Evaluated | None = None,
) -> str:
    """The run of one finished score job: params, tags, inputs, and its summary metrics (from the store).

    Its inputs are the benchmark's dataset and the evaluated model's logged model, and its metrics are
    linked to both (`evaluated`, found here when the caller has not found it already).
    """
    run = _job_run(tracker, plan, job, parent_run_id, "result")
    tracker.set_tags(run.info.run_id, generation_tags(store, plan, job))
    if evaluated is None:
        evaluated = evaluation(
            tracker, plan, store, job, parent_run_id, LoggedModels(tracker, store, plan.study)
        )
    tracker.log_inputs(run, evaluated.dataset, evaluated.model.model_id)
    metrics = score_metrics(store, job) if metrics is None else metrics
    tracker.log_metrics(run, metrics, evaluated.link(run.info.run_id))
    tracker.set_status(run, "FINISHED")
    return run.info.run_id


def evaluation(
    tracker: Tracker,
    plan: Plan,
    store: Store,
    job: Job,
    parent_run_id: str,
    models: LoggedModels,
    trained: dict[str, Run] | None = None,
) -> Evaluated:
    """The logged model and dataset input of a score job; a trained model's train run is its source run.

    `trained` holds the train runs this sync has synced already; a train run not there is found through its
    claim, or (the train job is done, but no run was ever logged) synced from the store first.
    """
    spec = model_spec(plan, job)

    def source() -> Run | None:
        train = spec.train_job
        if train is None:
            return None
        if trained is not None and train.id in trained:
            return trained[train.id]
        claimed = tracker.claimed_run_id(plan.study, train.id)
        run = tracker.active_run(claimed) if claimed is not None else None
        if run is None and store.is_done(train.key):
            run = _sync_train(tracker, plan, store, train, parent_run_id)[0]
        return run

    return Evaluated(models.model_for(spec, source), dataset_input(job.inputs["benchmark"]), models)


def score_metrics(store: Store, job: Job) -> dict[str, float]:
    """The summary metrics of a finished score job, from its parquet parts (each verified)."""
    manifest = store.manifest(job.key)
    assert manifest is not None, f"{job.key} is not done"
    rows = []
    for obj in manifest.objects:
        if obj.name.endswith(".parquet"):
            rows += from_parquet(store.read_object(job.key, obj.name)).to_pylist()
    return summarise(rows)


class RunState(NamedTuple):
    """What syncing a job writes into its run: the run is up to date when it holds all of this."""

    job_id: str
    name: str
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]
    status: str
    evaluated: Evaluated | None = None
    """A score run's dataset input and logged model, with its metrics linked to them."""


def score_run_state(
    plan: Plan, job: Job, parent_run_id: str, metrics: dict[str, float], evaluated: Evaluated | None = None
) -> RunState:
    """What `sync_score` writes: the tags `Tracker.job_run` sets (the claim tag aside), params, metrics."""
    tags = {**score_tags(plan, job), "job_id": job.id, "study": plan.study, "run_type": "result"}
    tags[PARENT_TAG] = parent_run_id
    params = {key: str(value) for key, value in score_params(plan, job).items()}
    return RunState(job.id, score_run_name(job), tags, params, metrics, "FINISHED", evaluated)


class CurrentRuns:
    """The study's active runs as one search finds them, to leave runs alone that are up to date.

    Re-syncing a finished study otherwise asks the server twice per job (the experiment, then the claimed
    run) only to write nothing; with one search a study of 448 score runs costs one request. A run that
    lacks anything, or holds another value, goes through the usual path (`sync_score`), which writes what
    is missing or refuses a clash as before.
    """

    def __init__(self, tracker: Tracker, store: Store, study: str) -> None:
        """One search of the study's experiment on `tracker`'s server; claims are read from `store`."""
        self.study = study
        self.experiment = tracker.experiment(study)
        self.claims = RunClaims(store, tracker.client)
        self.runs = {run.info.run_id: run for run in tracker.find_runs(study)}

    def holds(self, state: RunState) -> bool:
        """Whether the job's claimed run (active) holds the state's name, tags, params, metrics and inputs."""
        prefix = claims_prefix(self.study, self.experiment, state.job_id)
        run = self.runs.get(self.claims.latest(prefix)[1] or "")
        if run is None:
            return False
        tags, data = {**state.tags, CLAIM_TAG: prefix}, run.data
        return (
            run.info.run_name == state.name
            and run.info.status == state.status
            and all(data.tags.get(key) == str(value) for key, value in tags.items())
            and all(data.params.get(key) == value for key, value in state.params.items())
            and all(same_value(data.metrics.get(key), float(value)) for key, value in state.metrics.items())
            and (state.evaluated is None or state.evaluated.holds(run, state.metrics))
        )


def score_summaries(plan: Plan, scores: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Score job id -> its summary metrics, from rows of many jobs named by this plan, in one pass.

    Each score job is one model x benchmark of the plan, and `summarise` is that cell's row of
    `accuracy_table`; one table over all rows gives every cell's row with the same numbers (each is
    computed from its own rows alone; tests/jobs/test_aggregate_scale.py compares them with `summarise`
    of each job's stored rows), instead of one table per job. A cell with nothing scored is left to
    `summarise`, which words it its own way.
    """
    jobs = {
        (job.context["model"], job.context["benchmark"]): job.id for job in plan.jobs if job.kind == "score"
    }
    summaries = {}
    for cell in accuracy_table(scores).to_dict("records"):
        job_id = jobs.get((cell["model"], cell["benchmark"]))
        if job_id is not None and cell["n_items"] > 0:
            summaries[job_id] = {name: float(cell[name]) for name in SUMMARY_METRICS}
    return summaries


def train_run(tracker: Tracker, plan: Plan, job: Job, parent_run_id: str) -> Run:
    """The run of a train job, with its params and tags (live training and sync both start here)."""
    return _job_run(tracker, plan, job, parent_run_id, "train")


def _job_run(tracker: Tracker, plan: Plan, job: Job, parent_run_id: str, run_type: str) -> Run:
    """A score (`result`) or train job's run, found by its claim, with its name, tags and params."""
    name, tags, params = (
        (score_run_name, score_tags, score_params)
        if run_type == "result"
        else (train_run_name, train_tags, train_params)
    )
    run = tracker.job_run(
        plan.study,
        job.id,
        run_name=name(job),
        run_type=run_type,
        tags=tags(plan, job),
        parent_run_id=parent_run_id,
    )
    tracker.log_params(run, job.id, params(plan, job))
    return run


class LiveRun(NamedTuple):
    """A running train job's MLflow run; steps up to `last_step` are in it already (a resumed job)."""

    tracker: Tracker
    run_id: str
    parent_run_id: str
    last_step: int


def start_train_run(tracker: Tracker, plan: Plan, job: Job) -> LiveRun:
    """The run of a train job that starts (or resumes), set RUNNING, with the last step it holds."""
    parent = tracker.study_run(plan.study)
    run = train_run(tracker, plan, job, parent)
    tracker.set_status(run, "RUNNING")
    last = max((max(steps) for steps in tracker.logged_steps(run).values() if steps), default=0)
    return LiveRun(tracker, run.info.run_id, parent, last)


def fail_train_run(live: LiveRun, metrics: dict[str, float]) -> None:
    """Close the run of a train job that failed, with what is known (e.g. the reward failure rate)."""
    run = live.tracker.get_run(live.run_id)
    live.tracker.log_metrics(run, metrics)
    live.tracker.set_status(run, "FAILED")


def sync_train(tracker: Tracker, plan: Plan, store: Store, job: Job, parent_run_id: str) -> int:
    """The run of one finished train job: per-step histories and summary; returns metric points added."""
    return _sync_train(tracker, plan, store, job, parent_run_id)[1]


def _sync_train(tracker: Tracker, plan: Plan, store: Store, job: Job, parent_run_id: str) -> tuple[Run, int]:
    """`sync_train`, also returning the run (as found before this sync wrote its metrics and status)."""
    run = train_run(tracker, plan, job, parent_run_id)
    manifest = store.manifest(job.key)
    assert manifest is not None, f"{job.key} is not done"
    names = {obj.name for obj in manifest.objects}
    added, stepped = 0, set()
    if METRICS_FILE in names:  # checkpoints made before metrics were kept in the store have none
        rows = from_jsonl(store.read_object(job.key, METRICS_FILE))
        added = tracker.log_history(run, [(r.step, r.metrics) for r in rows], [r.timestamp for r in rows])
        stepped = {key for row in rows for key in row.metrics}
    if SUMMARY_FILE in names:
        summary = json.loads(store.read_object(job.key, SUMMARY_FILE))
        # A key with a step history keeps it: a value at step 0 would become neither latest nor history.
        tracker.log_metrics(run, {k: v for k, v in summary.items() if k not in stepped})
    tracker.set_status(run, "FINISHED")
    return run, added


def sync_report(tracker: Tracker, parent_run_id: str, report_dir: Path) -> None:
    """The report as the parent run's artifacts and its headline metrics (`metrics.json`) as metrics."""
    metrics_path = report_dir / REPORT_METRICS
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
    log_report(tracker, parent_run_id, report_dir, metrics)


def log_report(tracker: Tracker, run_id: str, report_dir: Path, metrics: dict, path: str = "report") -> None:
    """Mirror a report folder as the run's artifacts, replacing any other report, plus its metrics.

    The upload is skipped when the run's `report_sha` tag says it holds these very files already.
    """
    if not report_dir.is_dir():
        raise RptError(f"report folder {report_dir} does not exist or is not a folder")
    client = tracker.client
    run = client.get_run(run_id)
    digest = _folder_sha(report_dir)
    uploaded = client.list_artifacts(run_id, path)
    if run.data.tags.get(REPORT_TAG) != digest or not uploaded:
        if uploaded:  # uploading overwrites files of the same name but keeps files only an older report had
            repo = get_artifact_repository(run.info.artifact_uri, tracking_uri=tracker.uri)
            repo.delete_artifacts(path)
        client.log_artifacts(run_id, str(report_dir), path)
        tracker.set_tags(run_id, {REPORT_TAG: digest})
    tracker.log_metrics(run, metrics)


def _folder_sha(folder: Path) -> str:
    """Hash of a folder's files (relative names and bytes), to tell an unchanged report."""
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(folder).as_posix()}\0".encode())
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()[:16]


def remove_leftovers(tracker: Tracker, study: str, job_ids: set[str]) -> int:
    """Delete runs that are no job's run; return how many.

    Those are pending runs of writers that died before claiming, and runs that versions before claims made
    twice for one job (the claimed one stays).
    """
    now_ms = time.time() * 1000
    removed = 0
    for run in tracker.find_runs(study):
        tags = run.data.tags
        stale = tags.get(CLAIM_TAG) == PENDING and now_ms - run.info.start_time > STALE_PENDING_S * 1000
        name = "study" if tags.get("run_type") == "study" else tags.get("job_id")
        legacy = CLAIM_TAG not in tags and name in (job_ids | {"study"})
        if stale or (legacy and tracker.claimed_run_id(study, name) not in (None, run.info.run_id)):
            tracker.delete_run(run.info.run_id)
            removed += 1
    return removed
