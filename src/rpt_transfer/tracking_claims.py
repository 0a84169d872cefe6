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

A study's logged models (one per evaluated model, `tracking_models`) are claimed the same way, under
`model-<hash of the model's identity>` beside the jobs' claims, as `{"model_id": "..."}`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Generic, TypeVar

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
T = TypeVar("T")


def experiment_uid(experiment: Experiment) -> str:
    """What names an experiment's claims: its uid tag, or (an experiment made elsewhere) id and creation."""
    return experiment.tags.get(UID_TAG) or f"{experiment.experiment_id}-{experiment.creation_time}"


def claims_prefix(study: str, experiment: Experiment, name: str) -> str:
    """Store folder of the claims of one job's run (`name` is a job id, or "study" for the parent run)."""
    return f"{CLAIMS_ROOT}/{study}/{experiment_uid(experiment)}/{name}"


class Claims(Generic[T]):
    """Finds or creates the one MLflow object (a run, a logged model) a claim folder names in a store."""

    def __init__(
        self, store: Store, field: str, live: Callable[[str], T | None], drop: Callable[[str], None]
    ) -> None:
        """Claims in `store` hold `{field: id}`; `live(id)` is the object if active, `drop(id)` deletes it."""
        self.store = store
        self.field = field
        self.live = live
        self.drop = drop

    def claim(self, prefix: str, adopt: Callable[[], str | None], create: Callable[[], str]) -> T:
        """The claimed active object under `prefix`; claims `adopt()` or a `create()`d one when there is none.

        Args:
            prefix: From `claims_prefix`.
            adopt: The id of an active object already tagged as this one (made before claims), or None.
            create: Creates an object tagged as pending and returns its id.
        """
        for _ in range(MAX_ROUNDS):
            number, found_id = self.latest(prefix)
            found = self.live(found_id) if found_id else None
            if found is not None:
                return found
            candidate = adopt()
            created = candidate is None
            candidate_id = create() if candidate is None else candidate
            claim = f"{prefix}/{number + 1:06d}.json"
            if self.store.create_exclusive(claim, json.dumps({self.field: candidate_id}).encode()):
                won = self.live(candidate_id)
                if won is not None:
                    return won
            elif created:  # another writer's claim won: its object is the one, ours must not linger
                self.drop(candidate_id)
        raise TrackingError(
            f"{self.store.key_uri(prefix)}: nothing claimed in {MAX_ROUNDS} rounds: claimed MLflow objects "
            "keep disappearing from the server; check that nothing deletes runs or models while jobs log"
        )

    def latest(self, prefix: str) -> tuple[int, str | None]:
        """The highest claim number under `prefix` (-1 when none) and the id it names."""
        claims = [key for key in self.store.list_keys(prefix) if key.endswith(".json")]
        if not claims:
            return -1, None
        last = claims[-1]  # zero-padded numbers: the last key is the highest
        number = int(last.rsplit("/", 1)[1].removesuffix(".json"))
        return number, json.loads(self.store.read_bytes(last))[self.field]


class RunClaims(Claims[Run]):
    """The one run of a job (or of a study's parent) in an experiment."""

    def __init__(self, store: Store, client: MlflowClient) -> None:
        """Claims live in `store`; runs on the server `client` talks to."""
        self.client = client
        super().__init__(store, "run_id", self.live_run, client.delete_run)

    def run_for(self, prefix: str, adopt: Callable[[], Run | None], create: Callable[[], str]) -> Run:
        """The claimed active run under `prefix`; adopts `adopt()` or `create()`s one when there is none."""

        def adopt_id() -> str | None:
            run = adopt()
            return run.info.run_id if run is not None else None

        return self.claim(prefix, adopt_id, create)

    def live_run(self, run_id: str) -> Run | None:
        """The run if it exists and is active; None if it was deleted or never existed on this server."""
        try:
            run = self.client.get_run(run_id)
        except MlflowException as err:
            if err.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
                raise
            return None
        return run if run.info.lifecycle_stage == LifecycleStage.ACTIVE else None
