"""MLflow conventions: one experiment per study, one parent run per study, one run per train or score job.

MLflow is a view of the store, so every call here is idempotent: the run of a job is found again through
its claim in the store (`tracking_claims`), params are only ever added, metrics only where they changed
(results) or are missing (per-step histories). Only `MlflowClient` is used, never the fluent API, so nothing
depends on a process-global active run. What each run holds is decided in `tracking_runs`; rebuilding every
run of a study from the store is `tracking_sync`.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from mlflow import MlflowClient
from mlflow.entities import (
    DatasetInput,
    Experiment,
    LifecycleStage,
    LoggedModelInput,
    LoggedModelOutput,
    Metric,
    Param,
    Run,
    RunStatus,
    RunTag,
)
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode

from rpt_transfer.errors import RptError, TrackingError
from rpt_transfer.store import Store
from rpt_transfer.tracking_claims import CLAIM_TAG, PENDING, UID_TAG, RunClaims, claims_prefix
from rpt_transfer.tracking_connect import check_reachable, exclusive, sqlite_lock_path

EXPERIMENT_PREFIX = "rpt-transfer/"
PARENT_TAG = "mlflow.parentRunId"
WORKFLOW_TAG = "argo.workflow"
"""On the parent run: the Argo workflow that holds it RUNNING (`prepare --workflow`)."""
WORKFLOW_STATUS_TAG = "argo.workflow.status"
"""On the parent run: how that workflow ended (Argo's `{{workflow.status}}`, set by `track close`)."""
_PAGE_SIZE = 1000
_MAX_METRICS, _MAX_TAGS = 1000, 100
"""MLflow's limits per `log_batch` call: metrics, and params or tags."""
Step = tuple[int, dict[str, float]]
"""One training step: its number and its metrics."""


class MetricLink(NamedTuple):
    """Ties a score run's result metrics to the logged model evaluated and the dataset it was evaluated on.

    MLflow shows a metric on a logged model's page (and filters `search_logged_models` by it) only when the
    point was logged with the model's id; the dataset's name and digest group it per benchmark there.
    """

    model_id: str
    dataset_name: str
    dataset_digest: str
    linked: dict[str, float]
    """What the model holds already from this run: metric -> its latest value."""

    def lacks(self, key: str, value: float) -> bool:
        """Whether the model lacks this value from the run. NaN is never linked: MLflow stores it as 0."""
        return not math.isnan(value) and not same_value(self.linked.get(key), value)

    def fields(self, value: float) -> dict[str, str]:
        """The `Metric` fields that link one point (none for NaN)."""
        if math.isnan(value):
            return {}
        return {
            "model_id": self.model_id,
            "dataset_name": self.dataset_name,
            "dataset_digest": self.dataset_digest,
        }


def experiment_name(study: str) -> str:
    """Name the MLflow experiment that mirrors one study."""
    return f"{EXPERIMENT_PREFIX}{study}"


def open_tracker(tracking_uri: str, store: Store) -> Tracker:
    """The tracker jobs and `track sync` use: claims in `store`; artifacts beside a local store's SQLite."""
    from rpt_transfer.settings import default_artifact_root

    root = store.local_path()
    return Tracker(tracking_uri, store, default_artifact_root(root) if root is not None else None)


class Tracker:
    """Idempotent MLflow logging for one tracking URI (a server or a SQLite file), claims in one store."""

    def __init__(self, tracking_uri: str, store: Store, artifact_root: str | None = None) -> None:
        """Connect to `tracking_uri`; fail in seconds, not minutes, when a server is unreachable.

        Args:
            tracking_uri: `http(s)://...` for a server, `sqlite:///...` for a local file.
            store: The store that holds the claims naming each job's run (see `tracking_claims`).
            artifact_root: where experiments created by this tracker keep their artifacts, one
                folder per study; when None, the server (or MLflow's `./mlruns` default) decides.
        """
        if tracking_uri.startswith(("http://", "https://")):
            check_reachable(tracking_uri)
        self.uri = tracking_uri
        self._artifact_root = artifact_root
        self._lock_path = sqlite_lock_path(tracking_uri)
        with exclusive(self._lock_path):
            # MLflow creates and migrates a SQLite schema on first connect; two processes doing
            # that at once break the migration (alembic: "expected to match one row").
            self.client = MlflowClient(tracking_uri=tracking_uri)
        self._claims = RunClaims(store, self.client)

    def experiment(self, study: str) -> Experiment:
        """Find or create the study's experiment; restore it if someone deleted it in the UI."""
        experiment = self.client.get_experiment_by_name(experiment_name(study))
        if experiment is None:
            return self._create_experiment(study)
        if experiment.lifecycle_stage == LifecycleStage.DELETED:
            # A deleted experiment still owns its name, so creating a new one would fail.
            self.client.restore_experiment(experiment.experiment_id)
        return experiment

    def experiment_id(self, study: str) -> str:
        """The id of the study's experiment (created if missing)."""
        return self.experiment(study).experiment_id

    def study_run(
        self, study: str, tags: dict[str, str] | None = None, *, workflow: str | None = None
    ) -> str:
        """Find or create the study's parent run, which holds the report; return its run id.

        Locally nothing stays attached to the parent run, so it is left FINISHED. `workflow` (`prepare
        --workflow NAME`, an Argo workflow's first step) makes it RUNNING with tag `argo.workflow=NAME`
        until the workflow's exit handler closes it (`close_study_run`); meanwhile the calls without
        `workflow` (every score job's) leave such a RUNNING run as it is.
        """
        run = self._study_run(study, tags, workflow)
        if workflow is not None:
            if WORKFLOW_STATUS_TAG in run.data.tags:  # the status of an earlier workflow: not this one's
                self.client.delete_tag(run.info.run_id, WORKFLOW_STATUS_TAG)
            self.set_status(run, RunStatus.to_string(RunStatus.RUNNING))
        elif run.info.status != RunStatus.to_string(RunStatus.FINISHED) and not workflow_running(run):
            self._finish(run.info.run_id)  # nothing stays attached to it: it must not show as running
        return run.info.run_id

    def close_study_run(
        self, study: str, status: str, workflow_status: str, workflow: str | None
    ) -> str | None:
        """End the parent run: `status` FINISHED or FAILED, and tag `argo.workflow.status` (Argo's status).

        Returns None when closed; else the name of the other workflow that holds the run RUNNING now (a
        newer submission of the same study), whose run is left as it is.
        """
        run = self._study_run(study, None, None)
        owner = run.data.tags.get(WORKFLOW_TAG)
        if workflow is not None and owner not in (None, workflow) and workflow_running(run):
            return owner
        self.set_tags(run.info.run_id, {WORKFLOW_STATUS_TAG: workflow_status})
        self.set_status(run, status)
        return None

    def _study_run(self, study: str, tags: dict[str, str] | None, workflow: str | None) -> Run:
        """The study's parent run (found or created) with its tags brought up to date."""
        own = {"run_type": "study", "study": study}
        extra = {WORKFLOW_TAG: workflow} if workflow is not None else {}
        return self._claimed_run(study, "study", own, study, {**(tags or {}), **extra, **own})

    def job_run(
        self,
        study: str,
        job_id: str,
        *,
        run_name: str,
        run_type: str,
        tags: dict[str, str],
        parent_run_id: str | None = None,
    ) -> Run:
        """The one run of a job (claimed in the store), with its tags and name brought up to date."""
        all_tags = {**tags, "job_id": job_id, "study": study, "run_type": run_type}
        if parent_run_id is not None:
            all_tags[PARENT_TAG] = parent_run_id
        return self._claimed_run(study, job_id, {"job_id": job_id}, run_name, all_tags)

    def log_params(self, run: Run, job_id: str, params: dict[str, Any]) -> None:
        """Add the params the run lacks; a different value already logged is a TrackingError.

        Params are derived from a job's inputs only (`tracking_runs`), and the job id hashes those, so a
        clash cannot come from two jobs or from a rename: the run was edited, or logged by a version of
        rpt-transfer that derived a param differently.
        """
        wanted = {key: str(value) for key, value in params.items()}
        self._check_params(run, job_id, wanted)
        missing = [Param(k, v) for k, v in wanted.items() if k not in run.data.params]
        try:
            self._batch(run.info.run_id, params=missing)
        except MlflowException:
            # A concurrent writer of this run (two syncs) may have logged them between our read and write:
            # the server refuses a param key twice, even with the same value.
            now = self.client.get_run(run.info.run_id)
            self._check_params(now, job_id, wanted)
            if not wanted.keys() <= now.data.params.keys():
                raise

    def _check_params(self, run: Run, job_id: str, wanted: dict[str, str]) -> None:
        """Refuse a run that holds one of `wanted` with another value (see `log_params`)."""
        logged = run.data.params
        clashes = [f"{k}: {logged[k]!r} != {v!r}" for k, v in wanted.items() if logged.get(k, v) != v]
        if clashes:
            raise TrackingError(
                f"MLflow run {run.info.run_id} of job {job_id} in {self.uri} holds params that differ from "
                f"what this rpt-transfer derives from the job's inputs ({'; '.join(clashes)}): the run was "
                "edited, or logged by another rpt-transfer version; delete that run in MLflow and run "
                "`rpt-transfer track sync STUDY.yaml` to rebuild it from the store"
            )

    def log_metrics(self, run: Run, metrics: dict[str, float], link: MetricLink | None = None) -> None:
        """Results at step 0, only where the latest value differs, so repeats add no points.

        A point's time is one every writer of the run computes alike (the run's start, or just after the
        key's newest point), so two writers logging the same value at once log one point, not two. With a
        `link`, points carry the logged model and dataset; a value the run holds but the model lacks is
        logged again as the very point the run holds (same time), which adds it to the model only.
        """
        points = []
        for key, raw in metrics.items():
            value = float(raw)
            held = key in run.data.metrics and same_value(run.data.metrics[key], value)
            if held and (link is None or not link.lacks(key, value)):
                continue
            when = run.info.start_time
            if key in run.data.metrics:  # a new value goes after the old ones, so it is the latest
                newest = max(p.timestamp for p in self.client.get_metric_history(run.info.run_id, key))
                when = newest if held else newest + 1
            points.append(Metric(key, value, when, 0, **(link.fields(value) if link is not None else {})))
        self._batch(run.info.run_id, metrics=points)

    def log_inputs(self, run: Run, dataset: DatasetInput, model_id: str, tries: int = 3) -> None:
        """The run's dataset input and logged-model input, each once, however many writers log at once.

        The server adds a dataset it holds already (same name and digest) only as a link, but two writers
        adding a new one at once (two score runs of one benchmark, or two syncs of one run) make one of them
        fail on the dataset's unique key; the dataset is then there, and only what is still missing is
        logged again.
        """
        for attempt in range(tries):
            datasets, models = _missing_inputs(run, dataset, model_id)
            if not datasets and not models:
                return
            try:
                self.client.log_inputs(run.info.run_id, datasets=datasets or None, models=models or None)
                return
            except MlflowException:
                if attempt == tries - 1:
                    raise
                run = self.client.get_run(run.info.run_id)

    def log_model_output(self, run: Run, model_id: str, step: int) -> None:
        """Name a logged model as the run's output (a train run and the checkpoint it made), once."""

        def has(now: Run) -> bool:
            return any(out.model_id == model_id for out in (now.outputs.model_outputs if now.outputs else []))

        if has(run):
            return
        try:
            self.client.log_outputs(run.info.run_id, [LoggedModelOutput(model_id, step)])
        except MlflowException:  # another writer linked it a moment ago: the server refuses a second link
            if not has(self.client.get_run(run.info.run_id)):
                raise

    def logged_steps(self, run: Run) -> dict[str, set[int]]:
        """Per metric, the steps its history already holds."""
        return {
            key: {point.step for point in self.client.get_metric_history(run.info.run_id, key)}
            for key in run.data.metrics
        }

    def log_history(self, run: Run, steps: Sequence[Step], timestamps: Sequence[int] | None = None) -> int:
        """Add each (metric, step) point the run's history lacks; return how many were added."""
        have = self.logged_steps(run)
        times = timestamps or [int(time.time() * 1000)] * len(steps)
        missing = [
            Metric(key, float(value), when, step)
            for (step, metrics), when in zip(steps, times, strict=True)
            for key, value in metrics.items()
            if step not in have.get(key, set())
        ]
        self._batch(run.info.run_id, metrics=missing)
        return len(missing)

    def log_step(self, run_id: str, step: int, metrics: dict[str, float]) -> None:
        """One training step's metrics, at that step of each metric's history (live, while training)."""
        now = int(time.time() * 1000)
        self._batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])

    def set_status(self, run: Run, status: str) -> None:
        """Set "RUNNING", "FINISHED" or "FAILED", unless the run is there already."""
        if run.info.status == status:
            return
        if status == RunStatus.to_string(RunStatus.RUNNING):
            self.client.update_run(run.info.run_id, status=status)
        else:
            with contextlib.redirect_stdout(sys.stderr):  # MLflow prints a "View run" link
                self.client.set_terminated(run.info.run_id, status)

    def find_runs(self, study: str, filter_string: str = "") -> list[Run]:
        """Return the active runs of the study's experiment that match `filter_string`, if any."""
        experiment = self.client.get_experiment_by_name(experiment_name(study))
        if experiment is None:
            return []
        return self._search(experiment.experiment_id, filter_string)

    def claimed_run_id(self, study: str, name: str) -> str | None:
        """The run id the newest claim of a job (or "study") names, whether or not it is still active."""
        return self._claims.latest(claims_prefix(study, self.experiment(study), name))[1]

    def get_run(self, run_id: str) -> Run:
        """The run as the server holds it now."""
        return self.client.get_run(run_id)

    def active_run(self, run_id: str) -> Run | None:
        """The run if it exists and is active on this server, else None."""
        return self._claims.live_run(run_id)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Take turns with the other processes of this machine on a SQLite file (no-op for a server)."""
        with exclusive(self._lock_path):
            yield

    def delete_run(self, run_id: str) -> None:
        """Delete a run (MLflow keeps it in the trash until `mlflow gc`)."""
        self.client.delete_run(run_id)

    def _claimed_run(self, study: str, name: str, own: dict[str, str], run_name: str, tags: dict) -> Run:
        """The claimed run of `name`, adopting an older run tagged `own`; tags and name brought up to date."""
        experiment = self.experiment(study)
        experiment_id = experiment.experiment_id
        prefix = claims_prefix(study, experiment, name)

        def adopt() -> Run | None:
            found = self._search(experiment_id, _tag_filter(own))
            return found[0] if found else None

        def create() -> str:
            pending = {CLAIM_TAG: PENDING}
            return self.client.create_run(experiment_id, tags=pending, run_name=PENDING).info.run_id

        with exclusive(self._lock_path):
            run = self._claims.run_for(prefix, adopt, create)
        wanted = {**tags, CLAIM_TAG: prefix}
        changed = {k: str(v) for k, v in wanted.items() if run.data.tags.get(k) != str(v)}
        self.set_tags(run.info.run_id, changed)
        if run.info.run_name != run_name:
            self.client.update_run(run.info.run_id, name=run_name)
        return self.client.get_run(run.info.run_id) if changed else run

    def _batch(self, run_id: str, metrics: Sequence[Metric] = (), params: Sequence[Param] = ()) -> None:
        """`log_batch` within MLflow's limits per call."""
        for start in range(0, len(metrics), _MAX_METRICS):
            self.client.log_batch(run_id, metrics=list(metrics[start : start + _MAX_METRICS]))
        for start in range(0, len(params), _MAX_TAGS):
            self.client.log_batch(run_id, params=list(params[start : start + _MAX_TAGS]))

    def set_tags(self, run_id: str, tags: dict[str, str], tries: int = 3) -> None:
        """Set tags, however many writers set the same ones at once.

        The server inserts a tag it has not seen, so two writers adding one at once make one of them fail
        (a unique-key error); the tag is then there, and only what is still missing is written again.
        """
        for attempt in range(tries):
            batch = [RunTag(key, value) for key, value in tags.items()]
            try:
                for start in range(0, len(batch), _MAX_TAGS):
                    self.client.log_batch(run_id, tags=batch[start : start + _MAX_TAGS])
                return
            except MlflowException:
                now = self.client.get_run(run_id).data.tags
                tags = {key: value for key, value in tags.items() if now.get(key) != value}
                if not tags:
                    return
                if attempt == tries - 1:
                    raise

    def _create_experiment(self, study: str) -> Experiment:
        """Create the study's experiment, or return the one a concurrent process just created."""
        name = experiment_name(study)
        location = f"{self._artifact_root.rstrip('/')}/{study}" if self._artifact_root else None
        try:
            self.client.create_experiment(name, artifact_location=location, tags={UID_TAG: uuid.uuid4().hex})
        except MlflowException as err:
            # Lost a race with another job that created it between our lookup and our create.
            if err.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                raise
        experiment = self.client.get_experiment_by_name(name)
        assert experiment is not None, f"{name} reported as existing but not found"
        return experiment

    def _finish(self, run_id: str) -> None:
        """Mark a run FINISHED; MLflow prints a "View run" link, which belongs on stderr, not stdout."""
        with contextlib.redirect_stdout(sys.stderr):
            self.client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))

    def _search(self, experiment_id: str, filter_string: str) -> list[Run]:
        """Every active run matching the filter, oldest first, across all result pages."""
        runs: list[Run] = []
        token: str | None = None
        while True:
            page = self.client.search_runs(
                [experiment_id], filter_string, max_results=_PAGE_SIZE, page_token=token
            )
            runs.extend(page)
            token = page.token
            if not token:
                return sorted(runs, key=lambda run: (run.info.start_time, run.info.run_id))


def same_value(logged: float | None, value: float) -> bool:
    """Whether a logged metric value is `value` (NaN is NaN: the server keeps NaN as NaN)."""
    return logged is not None and (logged == value or (math.isnan(logged) and math.isnan(value)))


def _missing_inputs(
    run: Run, dataset: DatasetInput, model_id: str
) -> tuple[list[DatasetInput], list[LoggedModelInput]]:
    """The dataset and model inputs `run` does not hold yet."""
    inputs = run.inputs
    held = {(d.dataset.name, d.dataset.digest) for d in (inputs.dataset_inputs if inputs else [])}
    models = {m.model_id for m in ((inputs.model_inputs or []) if inputs else [])}
    datasets = [dataset] if (dataset.dataset.name, dataset.dataset.digest) not in held else []
    return datasets, [LoggedModelInput(model_id)] if model_id not in models else []


def workflow_running(run: Run) -> bool:
    """Whether an Argo workflow holds the parent run RUNNING (its exit handler has not closed it yet)."""
    return run.info.status == RunStatus.to_string(RunStatus.RUNNING) and WORKFLOW_TAG in run.data.tags


def _tag_filter(tags: dict[str, str]) -> str:
    """Build a search filter matching every given tag exactly."""
    for key, value in tags.items():
        if "'" in value or "'" in key:
            raise RptError(f"tag {key}={value!r} contains a single quote, which MLflow filters cannot match")
    return " AND ".join(f"tags.{key} = '{value}'" for key, value in tags.items())
