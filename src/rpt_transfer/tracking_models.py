"""Every evaluated model as an MLflow 3 logged model, so the UI's model views and `search_logged_models` work.

A model's weights live on the Hub (a repo at a commit) or in the store (a checkpoint a train or pretrain
job made), never in MLflow, so each is an *external* logged model, made the way MLflow's own
`mlflow.create_external_model` makes one (tag `mlflow.model.isExternal`, an `MLmodel` file saying the
artifacts are elsewhere, status READY), but through `MlflowClient` only. There is one per study experiment
and model identity (the model reference the generate jobs' inputs hold), claimed in the store as runs are
(`tracking_claims`), so concurrent score jobs and syncs never make two. Params come from that reference
only; names people read are tags that follow renames. A trained checkpoint's model names its train run as
source run, and the train run names the model as its output.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from mlflow.entities import DatasetInput, LoggedModel, LoggedModelStatus, Run
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.utils.mlflow_tags import MLFLOW_MODEL_IS_EXTERNAL

from rpt_transfer.hashing import short_hash
from rpt_transfer.jobs.models import model_source
from rpt_transfer.plan import Job, Plan
from rpt_transfer.store import Store
from rpt_transfer.tracking import MetricLink, Tracker
from rpt_transfer.tracking_claims import CLAIM_TAG, PENDING, Claims, claims_prefix
from rpt_transfer.tracking_runs import score_tags

MODEL_TAG = "rpt_transfer.model"
"""Logged-model tag holding the model's identity: `hf:<repo>@<commit>`, `job:<job id>` or `store:<path>`."""
_NOT_THE_MODEL = ("benchmark", "benchmark_domain", "seen")
"""Score-run tags that describe the benchmark, not the model."""
_NAME_FORBIDS = re.compile(r"[/:.%\"']")
"""Characters MLflow refuses in a logged model's name."""
_PAGE_SIZE = 100


class ModelSpec(NamedTuple):
    """What the logged model of one evaluated model holds, all derived from the plan."""

    identity: str
    name: str
    model_type: str
    """`hub`, `trained`, `pretrained` or `store`: where the weights come from."""
    params: dict[str, str]
    tags: dict[str, str]
    train_job: Job | None
    """The train job that made the weights, whose run is the model's source run."""


def model_identity(ref: dict[str, Any]) -> str:
    """The identity of a model reference (`generate` inputs' `model`): Hub commit, job id or store path."""
    if "hub" in ref:
        return f"hf:{ref['hub']}@{ref['revision']}"
    if "job" in ref:
        return f"job:{ref['job']}"
    return f"store:{ref['store_path']}"


def model_spec(plan: Plan, score: Job) -> ModelSpec:
    """The logged model a score job evaluates: its identity, name, type, params and tags."""
    ref = plan.job(score.deps[0]).inputs["model"]
    params = dict(model_source(ref, plan))
    train_job = None
    model_type = "hub" if "hub" in ref else "store"
    if "job" in ref:
        made_by = plan.job(ref["job"])
        model_type = "trained" if made_by.kind == "train" else "pretrained"
        if made_by.kind == "train":
            train_job = made_by
            base = model_source(made_by.inputs["base"], plan)
            params |= {f"base_{key}": value for key, value in base.items()}
    tags = {k: v for k, v in score_tags(plan, score).items() if k not in _NOT_THE_MODEL}
    identity = model_identity(ref)
    return ModelSpec(
        identity=identity,
        name=_NAME_FORBIDS.sub("-", score.context["model"]),
        model_type=model_type,
        params={key: str(value) for key, value in params.items()},
        tags={**tags, MODEL_TAG: identity, MLFLOW_MODEL_IS_EXTERNAL: "true"},
        train_job=train_job,
    )


class LoggedModels:
    """The logged models of one study's experiment, each found (or made) once per sync and then cached.

    A study has hundreds of score runs and a few dozen models: each model costs one claim read and one
    request, however many runs evaluate it.
    """

    def __init__(self, tracker: Tracker, store: Store, study: str) -> None:
        """Models in the study's experiment on `tracker`'s server; claims in `store`."""
        self.tracker = tracker
        self.client = tracker.client
        self.study = study
        self.experiment = tracker.experiment(study)
        self.claims = Claims(store, "model_id", self._live, self.client.delete_logged_model)
        self._models: dict[str, LoggedModel] = {}

    @property
    def found(self) -> int:
        """How many models this object has found (or made) so far."""
        return len(self._models)

    def model_for(self, spec: ModelSpec, source: Callable[[], Run | None] = lambda: None) -> LoggedModel:
        """The one logged model of `spec`'s identity, READY, with current tags.

        `source()` is the run that made the weights (a train run), asked for only the first time a model is
        looked for: a new model names it as its source run, and the run names the model as its output.
        """
        if spec.identity in self._models:
            return self._models[spec.identity]
        prefix = claims_prefix(self.study, self.experiment, f"model-{short_hash(spec.identity)}")
        source_run = source()
        source_run_id = source_run.info.run_id if source_run is not None else None

        def adopt() -> str | None:  # a model whose claims were deleted from the store
            if "'" in spec.identity:  # MLflow filters cannot match it
                return None
            return self._oldest(f"tags.`{MODEL_TAG}` = '{spec.identity}'")

        def create() -> str:
            model = self.client.create_logged_model(
                self.experiment.experiment_id,
                name=spec.name,
                source_run_id=source_run_id,
                tags={CLAIM_TAG: PENDING},
                params=spec.params,
                model_type=spec.model_type,
            )
            return model.model_id

        with self.tracker.exclusive():
            model = self.claims.claim(prefix, adopt, create)
        model = self._complete(model, {**spec.tags, CLAIM_TAG: prefix})
        if source_run is not None and spec.train_job is not None:
            steps = int(spec.train_job.inputs["hyperparameters"].get("steps", 0))
            self.tracker.log_model_output(source_run, model.model_id, steps)
        self._models[spec.identity] = model
        return model

    def run_metrics(self, model: LoggedModel, run_id: str) -> dict[str, float]:
        """The model's metrics from one run, as the model held them when found: key -> latest value."""
        points = sorted(
            (point for point in model.metrics or [] if point.run_id == run_id),
            key=lambda point: (point.step, point.timestamp, point.value),
        )
        return {point.key: point.value for point in points}

    def remove_pending(self, older_than_s: float) -> int:
        """Delete models of writers that died before claiming them (pending longer than `older_than_s`)."""
        cutoff = (time.time() - older_than_s) * 1000
        stale = [
            model
            for model in self._search(f"tags.`{CLAIM_TAG}` = '{PENDING}'")
            if model.creation_timestamp < cutoff
        ]
        for model in stale:
            self.client.delete_logged_model(model.model_id)
        return len(stale)

    def _complete(self, model: LoggedModel, tags: dict[str, str]) -> LoggedModel:
        """Bring a claimed model up to date: tags set, and (first time only) its MLmodel file and READY."""
        changed = {key: value for key, value in tags.items() if model.tags.get(key) != value}
        if changed:
            self.client.set_logged_model_tags(model.model_id, changed)
        ready = model.status == LoggedModelStatus.READY
        if not ready:  # a writer that claimed it may have died before this: whoever comes next finishes it
            self._describe_external(model)
            self.client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
        return model if ready and not changed else self.client.get_logged_model(model.model_id)

    def _describe_external(self, model: LoggedModel) -> None:
        """The `MLmodel` file MLflow writes for an external model (its artifacts live elsewhere)."""
        from mlflow.models.model import MLMODEL_FILE_NAME
        from mlflow.models.utils import get_external_mlflow_model_spec

        with tempfile.TemporaryDirectory(prefix="rpt-model-") as tmp:
            get_external_mlflow_model_spec(model).save(str(Path(tmp) / MLMODEL_FILE_NAME))
            self.client.log_model_artifacts(model.model_id, tmp)

    def _live(self, model_id: str) -> LoggedModel | None:
        """The model if it exists on this server and was not deleted, else None."""
        try:
            return self.client.get_logged_model(model_id)
        except MlflowException as err:
            if err.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
                raise
            return None

    def _oldest(self, filter_string: str) -> str | None:
        """The id of the oldest model matching the filter, if any."""
        found = self._search(filter_string)
        return min(found, key=lambda m: (m.creation_timestamp, m.model_id)).model_id if found else None

    def _search(self, filter_string: str) -> list[LoggedModel]:
        """Every model of the experiment matching the filter, across all result pages."""
        models: list[LoggedModel] = []
        token: str | None = None
        while True:
            page = self.client.search_logged_models(
                [self.experiment.experiment_id], filter_string, max_results=_PAGE_SIZE, page_token=token
            )
            models.extend(page)
            token = page.token
            if not token:
                return models


class Evaluated(NamedTuple):
    """What a score run evaluated: the logged model, the benchmark's dataset input, and the study's models."""

    model: LoggedModel
    dataset: DatasetInput
    models: LoggedModels

    def link(self, run_id: str) -> MetricLink:
        """How the run's result metrics are tied to the model and dataset, with what the model holds."""
        dataset = self.dataset.dataset
        linked = self.models.run_metrics(self.model, run_id)
        return MetricLink(self.model.model_id, dataset.name, dataset.digest, linked)

    def holds(self, run: Run, metrics: dict[str, float]) -> bool:
        """Whether `run` (as a search returns it) has the dataset input and the model all linked metrics.

        A search returns no model inputs, but this code logs the model input in the same request as the
        dataset input, so the one stands for the other; a model made anew (deleted in the UI) lacks the
        linked metrics, and the run is synced again (`tracking_sync.sync_score`), reading its model inputs.
        """
        dataset = self.dataset.dataset
        inputs = run.inputs.dataset_inputs if run.inputs else []
        if not any((d.dataset.name, d.dataset.digest) == (dataset.name, dataset.digest) for d in inputs):
            return False
        link = self.link(run.info.run_id)
        return not any(link.lacks(key, float(value)) for key, value in metrics.items())
