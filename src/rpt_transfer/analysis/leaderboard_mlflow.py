"""The leaderboard in MLflow: one run named `leaderboard` in experiment `rpt-transfer/leaderboard`.

MLflow is a view of the store, so this is idempotent like every other run: the run is found again
through its claim in the store (`Tracker.job_run`), and its files are uploaded (under `leaderboard/`) only
when they differ from what the run holds (`tracking_sync.log_report` compares a hash of the folder, and
the files depend only on the inputs). Imported only where tracking is on, since it imports mlflow.
"""

from __future__ import annotations

from pathlib import Path

from mlflow.entities import Run

from rpt_transfer.tracking import Tracker
from rpt_transfer.tracking_sync import log_report

EXPERIMENT = "leaderboard"
"""The `study` part of the experiment's name: `rpt-transfer/leaderboard` (so no study may be so named)."""
RUN_NAME = "leaderboard"
RUN_TYPE = "leaderboard"
ARTIFACT_PATH = "leaderboard"
DIGEST_TAG = "leaderboard_digest"
"""Tag naming the build (`leaderboard/<digest>` in the store) whose files the run holds."""


def leaderboard_run(tracker: Tracker) -> Run:
    """The one `leaderboard` run, found again through its claim (made on first use)."""
    return tracker.job_run(EXPERIMENT, RUN_NAME, run_name=RUN_NAME, run_type=RUN_TYPE, tags={})


def holds(tracker: Tracker, run: Run, digest: str) -> bool:
    """Whether the run already holds build `digest`'s files, so nothing needs downloading or uploading."""
    return run.data.tags.get(DIGEST_TAG) == digest and bool(
        tracker.client.list_artifacts(run.info.run_id, ARTIFACT_PATH)
    )


def log_files(tracker: Tracker, run: Run, folder: Path | None, digest: str, metrics: dict[str, float]) -> str:
    """Mirror one build's files (None: the run holds them already) and headline metrics; return the run id."""
    if folder is None:
        tracker.log_metrics(run, metrics)
    else:
        log_report(tracker, run.info.run_id, folder, metrics, path=ARTIFACT_PATH)
    if run.data.tags.get(DIGEST_TAG) != digest:
        tracker.set_tags(run.info.run_id, {DIGEST_TAG: digest})
    tracker.set_status(tracker.get_run(run.info.run_id), "FINISHED")
    return run.info.run_id
