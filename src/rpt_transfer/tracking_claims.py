"""One MLflow run per job, however many processes on however many machines write at once.

MLflow has no unique key for runs: two writers that each search, find nothing and create, leave two runs.
The store has one: `Store.create_exclusive`. So the run of a job is the run that a claim object in the
store names, and a claim is made only by an exclusive create:

    mlflow-claims/<study>/<experiment uid>/<job id or "study">/<N>.json   {"run_id": "..."}

A writer reads the claim with the highest N. If its run is active on the server, that is the job's run.
Otherwise (no claim yet, or its run was deleted or is gone) it adopts an active run that carries the job's
tag (runs logged before claims existed), or creates a run, and tries to create claim N+1 naming it. Exactly
one writer's create succeeds; the others delete the run they created and read the winner's claim. A run is
created with the `pending` claim tag and gets its job's tags only after its claim won, so a writer killed
between the two steps leaves an empty pending run, never a second run of the job (`track sync` removes
pending runs older than an hour). The experiment uid comes from the experiment itself (a tag set when it
is created), so two servers, or a server rebuilt empty, never share claims. See docs/mlflow.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from mlflow import MlflowClient
from mlflow.entities import Experiment, LifecycleStage, Run
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

from rpt_transfer.errors import TrackingError
from rpt_transfer.store import Store

CLAIMS_ROOT = "mlflow-claims"
CLAIM_TAG = "rpt_transfer.claim"
"""Tag of every run made through a claim: `pending` until its claim won, then the claim's store key."""
PENDING = "pending"
UID_TAG = "rpt_transfer.experiment_uid"
"""Experiment tag set when the experiment is created; names the experiment's claims in the store."""
MAX_ROUNDS = 20
"""Claims one lookup may try; each lost round means another writer claimed, so this is never reached."""


def experiment_uid(experiment: Experiment) -> str:
    """What names an experiment's claims: its uid tag, or (an experiment made elsewhere) id and creation."""
    return experiment.tags.get(UID_TAG) or f"{experiment.experiment_id}-{experiment.creation_time}"


def claims_prefix(study: str, experiment: Experiment, name: str) -> str:
    """Store folder of the claims of one job's run (`name` is a job id, or "study" for the parent run)."""
    return f"{CLAIMS_ROOT}/{study}/{experiment_uid(experiment)}/{name}"


class RunClaims:
    """Finds or creates the one run of a name in an experiment, arbitrated by exclusive creates in a store."""

    def __init__(self, store: Store, client: MlflowClient) -> None:
        """Claims live in `store`; runs on the server `client` talks to."""
        self.store = store
        self.client = client

    def run_for(self, prefix: str, adopt: Callable[[], Run | None], create: Callable[[], str]) -> Run:
        """The claimed active run under `prefix`; adopts `adopt()` or `create()`s one when there is none.

        Args:
            prefix: From `claims_prefix`.
            adopt: An active run already holding the job's tags (from before claims), or None.
            create: Creates a run tagged as pending and returns its id.
        """
        for _ in range(MAX_ROUNDS):
            number, run_id = self.latest(prefix)
            run = self.live(run_id) if run_id else None
            if run is not None:
                return run
            candidate = adopt()
            created = candidate is None
            candidate_id = create() if candidate is None else candidate.info.run_id
            claim = f"{prefix}/{number + 1:06d}.json"
            if self.store.create_exclusive(claim, json.dumps({"run_id": candidate_id}).encode()):
                return self.client.get_run(candidate_id)
            if created:  # another writer's claim won: its run is the job's, ours must not linger
                self.client.delete_run(candidate_id)
        raise TrackingError(
            f"{self.store.key_uri(prefix)}: no run claimed in {MAX_ROUNDS} rounds: claimed runs keep "
            "disappearing from the MLflow server; check that nothing deletes runs while jobs log"
        )

    def latest(self, prefix: str) -> tuple[int, str | None]:
        """The highest claim number under `prefix` (-1 when none) and the run id it names."""
        claims = [key for key in self.store.list_keys(prefix) if key.endswith(".json")]
        if not claims:
            return -1, None
        last = claims[-1]  # zero-padded numbers: the last key is the highest
        number = int(last.rsplit("/", 1)[1].removesuffix(".json"))
        return number, json.loads(self.store.read_bytes(last))["run_id"]

    def live(self, run_id: str) -> Run | None:
        """The run if it exists and is active; None if it was deleted or never existed on this server."""
        try:
            run = self.client.get_run(run_id)
        except MlflowException as err:
            if err.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
                raise
            return None
        return run if run.info.lifecycle_stage == LifecycleStage.ACTIVE else None
