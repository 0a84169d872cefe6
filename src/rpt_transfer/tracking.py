"""MLflow conventions: one experiment per study, one parent run per study, one run per score job.

MLflow is a view of the store, so every call here is idempotent: a run is found again by its tags
before one is created, and re-running a job updates its run instead of adding another. Only
`MlflowClient` is used, never the fluent API, so nothing depends on a process-global active run.
"""

from __future__ import annotations

import contextlib
import fcntl
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import LifecycleStage, Metric, Param, Run, RunStatus, RunTag
from mlflow.environment_variables import MLFLOW_TRACKING_INSECURE_TLS, MLFLOW_TRACKING_SERVER_CERT_PATH
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from rpt_transfer.errors import RptError

EXPERIMENT_PREFIX = "rpt-transfer/"
PARENT_TAG = "mlflow.parentRunId"
HEALTH_TIMEOUT_S = 5.0
_PAGE_SIZE = 1000


def experiment_name(study: str) -> str:
    """Name the MLflow experiment that mirrors one study."""
    return f"{EXPERIMENT_PREFIX}{study}"


class Tracker:
    """Idempotent MLflow logging for one tracking URI (a server or a SQLite file)."""

    def __init__(self, tracking_uri: str, artifact_root: str | None = None) -> None:
        """Connect to `tracking_uri`; fail in seconds, not minutes, when a server is unreachable.

        Args:
            tracking_uri: `http(s)://...` for a server, `sqlite:///...` for a local file.
            artifact_root: where experiments created by this tracker keep their artifacts, one
                folder per study; when None, the server (or MLflow's `./mlruns` default) decides.
        """
        if tracking_uri.startswith(("http://", "https://")):
            _check_reachable(tracking_uri)
        self.uri = tracking_uri
        self._artifact_root = artifact_root
        self._lock_path = _sqlite_lock_path(tracking_uri)
        with self._exclusive():
            # MLflow creates and migrates a SQLite schema on first connect; two processes doing
            # that at once break the migration (alembic: "expected to match one row").
            self._client = MlflowClient(tracking_uri=tracking_uri)

    def experiment_id(self, study: str) -> str:
        """Find or create the study's experiment; restore it if someone deleted it in the UI."""
        name = experiment_name(study)
        experiment = self._client.get_experiment_by_name(name)
        if experiment is None:
            return self._create_experiment(study)
        if experiment.lifecycle_stage == LifecycleStage.DELETED:
            # A deleted experiment still owns its name, so creating a new one would fail.
            self._client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id

    def study_run(self, study: str, tags: dict[str, str] | None = None) -> str:
        """Find or create the study's parent run, which holds the report; return its run id."""
        experiment_id = self.experiment_id(study)
        own = {"run_type": "study", "study": study}

        def create() -> str:
            run_id = self._client.create_run(experiment_id, tags=own, run_name=study).info.run_id
            # Nothing stays attached to the parent run, so it must not show as running forever.
            self._finish(run_id)
            return run_id

        run = self._find_or_create(experiment_id, _tag_filter(own), create)
        self._client.log_batch(run.info.run_id, tags=_run_tags({**(tags or {}), **own}))
        return run.info.run_id

    def log_result(
        self,
        *,
        study: str,
        job_id: str,
        run_name: str,
        params: dict[str, Any],
        metrics: dict[str, float],
        tags: dict[str, str],
        parent_run_id: str | None = None,
    ) -> str:
        """Log one job's result to the run tagged with its job id, creating that run only if missing.

        Raises:
            RptError: the run already holds one of `params` with another value, so two different
                jobs share this job id.
        """
        run = self._job_run(study, job_id, run_name, tags, parent_run_id, run_type="result")
        run_id = run.info.run_id
        self._client.log_batch(
            run_id, metrics=_changed_metrics(run, metrics), params=_new_params(run, job_id, params)
        )
        if run.info.status != RunStatus.to_string(RunStatus.FINISHED):
            self._finish(run_id)
        return run_id

    def training_run(
        self,
        *,
        study: str,
        job_id: str,
        run_name: str,
        params: dict[str, Any],
        tags: dict[str, str],
        parent_run_id: str | None = None,
    ) -> str:
        """The run of a train job (found again by its job id, so a resumed job continues it), RUNNING.

        Step metrics follow through `log_step`; `finish_run` closes it.
        """
        run = self._job_run(study, job_id, run_name, tags, parent_run_id, run_type="train")
        self._client.log_batch(run.info.run_id, params=_new_params(run, job_id, params))
        if run.info.status != RunStatus.to_string(RunStatus.RUNNING):
            self._client.update_run(run.info.run_id, status=RunStatus.to_string(RunStatus.RUNNING))
        return run.info.run_id

    def log_step(self, run_id: str, step: int, metrics: dict[str, float]) -> None:
        """One training step's metrics, at that step of each metric's history."""
        now = int(time.time() * 1000)
        self._client.log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])

    def finish_run(self, run_id: str, metrics: dict[str, float] | None = None, failed: bool = False) -> None:
        """Close a run with its final metrics, FINISHED or FAILED."""
        if metrics:
            self.log_step(run_id, 0, metrics)
        status = RunStatus.FAILED if failed else RunStatus.FINISHED
        with contextlib.redirect_stdout(sys.stderr):
            self._client.set_terminated(run_id, RunStatus.to_string(status))

    def _job_run(
        self,
        study: str,
        job_id: str,
        run_name: str,
        tags: dict[str, str],
        parent_run_id: str | None,
        run_type: str,
    ) -> Run:
        """Find (by job id) or create the run of one job, with its tags and name brought up to date."""
        experiment_id = self.experiment_id(study)
        all_tags = {**tags, "job_id": job_id, "study": study, "run_type": run_type}
        if parent_run_id is not None:
            all_tags[PARENT_TAG] = parent_run_id

        def create() -> str:
            return self._client.create_run(experiment_id, tags=all_tags, run_name=run_name).info.run_id

        run = self._find_or_create(experiment_id, _tag_filter({"job_id": job_id}), create)
        self._client.log_batch(run.info.run_id, tags=_run_tags(all_tags))
        if run.info.run_name != run_name:
            self._client.update_run(run.info.run_id, name=run_name)
        return run

    def log_report(
        self, run_id: str, report_dir: Path, metrics: dict[str, float], artifact_path: str = "report"
    ) -> None:
        """Mirror a report folder as the run's artifacts, replacing any earlier report, plus metrics."""
        if not Path(report_dir).is_dir():
            raise RptError(f"report folder {report_dir} does not exist or is not a folder")
        run = self._client.get_run(run_id)
        if self._client.list_artifacts(run_id, artifact_path):
            # Uploading overwrites files of the same name but keeps files only an older report had.
            repo = get_artifact_repository(run.info.artifact_uri, tracking_uri=self.uri)
            repo.delete_artifacts(artifact_path)
        self._client.log_artifacts(run_id, str(report_dir), artifact_path)
        self._client.log_batch(run_id, metrics=_changed_metrics(run, metrics))

    def find_runs(self, study: str, filter_string: str = "") -> list[Run]:
        """Return the active runs of the study's experiment that match `filter_string`, if any."""
        experiment = self._client.get_experiment_by_name(experiment_name(study))
        if experiment is None:
            return []
        return self._search(experiment.experiment_id, filter_string)

    def _create_experiment(self, study: str) -> str:
        """Create the study's experiment, or return the one a concurrent process just created."""
        name = experiment_name(study)
        location = f"{self._artifact_root.rstrip('/')}/{study}" if self._artifact_root else None
        try:
            return self._client.create_experiment(name, artifact_location=location)
        except MlflowException as err:
            # Lost a race with another job that created it between our lookup and our create.
            if err.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                raise
        experiment = self._client.get_experiment_by_name(name)
        assert experiment is not None, f"{name} reported as existing but not found"
        return experiment.experiment_id

    def _find_or_create(self, experiment_id: str, filter_string: str, create: Callable[[], str]) -> Run:
        """Return the oldest run matching the filter, creating one if there is none.

        On a SQLite file, processes take turns, so two jobs never both create. A server has no such
        lock: there each process looks again after creating and deletes its own run if an older one
        exists, which removes most but not all duplicates from a race.
        """
        with self._exclusive():
            found = self._search(experiment_id, filter_string)
            if found:
                return found[0]
            created = create()
        winner = self._search(experiment_id, filter_string)[0]
        if winner.info.run_id != created:
            self._client.delete_run(created)
        return winner

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the SQLite file's lock (all processes on this machine); no-op for a server."""
        if self._lock_path is None:
            yield
            return
        with self._lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            yield

    def _finish(self, run_id: str) -> None:
        """Mark a run FINISHED; MLflow prints a "View run" link, which belongs on stderr, not stdout."""
        with contextlib.redirect_stdout(sys.stderr):
            self._client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))

    def _search(self, experiment_id: str, filter_string: str) -> list[Run]:
        """Every active run matching the filter, oldest first, across all result pages."""
        runs: list[Run] = []
        token: str | None = None
        while True:
            page = self._client.search_runs(
                [experiment_id], filter_string, max_results=_PAGE_SIZE, page_token=token
            )
            runs.extend(page)
            token = page.token
            if not token:
                return sorted(runs, key=lambda run: (run.info.start_time, run.info.run_id))


def _sqlite_lock_path(uri: str) -> Path | None:
    """Name a lock file next to a SQLite database; None for other backends."""
    if not uri.startswith("sqlite:///"):
        return None
    db_path = Path(uri.removeprefix("sqlite:///").split("?", 1)[0])
    db_path.parent.mkdir(parents=True, exist_ok=True)
    return db_path.with_name(f"{db_path.name}.lock")


def _check_reachable(uri: str) -> None:
    """Probe `<uri>/health` once, because MLflow's own client retries for minutes before failing."""
    url = f"{uri.rstrip('/')}/health"
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT_S, context=_ssl_context()):
            return
    except urllib.error.HTTPError as err:
        # Any answer below 500 means a server is there (it may want auth); 5xx is a proxy without MLflow.
        if err.code < 500:
            return
        reason = f"HTTP {err.code}"
    except OSError as err:  # refused, timed out, unknown host, TLS failure
        reason = str(getattr(err, "reason", err)) or type(err).__name__
    raise RptError(
        f"MLflow tracking server {uri} is unreachable ({reason}); start it, or set MLFLOW_TRACKING_URI "
        "to a reachable http(s):// server or a sqlite:/// file"
    )


def _ssl_context() -> ssl.SSLContext:
    """Honour MLflow's own TLS settings, so the probe agrees with the client that follows it."""
    context = ssl.create_default_context(cafile=MLFLOW_TRACKING_SERVER_CERT_PATH.get())
    if MLFLOW_TRACKING_INSECURE_TLS.get():
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _tag_filter(tags: dict[str, str]) -> str:
    """Build a search filter matching every given tag exactly."""
    for key, value in tags.items():
        if "'" in value or "'" in key:
            raise RptError(f"tag {key}={value!r} contains a single quote, which MLflow filters cannot match")
    return " AND ".join(f"tags.{key} = '{value}'" for key, value in tags.items())


def _run_tags(tags: dict[str, str]) -> list[RunTag]:
    return [RunTag(key, str(value)) for key, value in tags.items()]


def _new_params(run: Run, job_id: str, params: dict[str, Any]) -> list[Param]:
    """Return the params the run lacks; MLflow refuses to change a logged one, so a change is fatal."""
    wanted = {key: str(value) for key, value in params.items()}
    logged = run.data.params
    clashes = [f"{k}: {logged[k]!r} != {v!r}" for k, v in wanted.items() if k in logged and logged[k] != v]
    if clashes:
        raise RptError(
            f"MLflow run {run.info.run_id} for job {job_id} already has other values for params "
            f"({'; '.join(clashes)}): two different jobs share job id {job_id}, or the run was edited; "
            "a job id must hash every input"
        )
    return [Param(key, value) for key, value in wanted.items() if key not in logged]


def _changed_metrics(run: Run, metrics: dict[str, float]) -> list[Metric]:
    """Metrics whose latest value differs, so a re-run adds no duplicate points to the history."""
    now = int(time.time() * 1000)
    latest = run.data.metrics
    return [Metric(k, float(v), now, 0) for k, v in metrics.items() if latest.get(k) != float(v)]
