"""Benchmarks as MLflow dataset inputs and evaluated models as logged models, against the real server.

Two small studies are planned by the real planner from the paper study's first pair (Hub models pinned at
commits): one with Hub data (no RPT_BENCHMARK_DATA), one with local copies; each score job is committed
with made-up rows (benchmarks/report_scale.py), then synced. Everything is read back through MlflowClient.
"""

from __future__ import annotations

import importlib.util
import json
import math
import threading
import uuid
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient
from mlflow.entities import LoggedModel, Run
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT, MLFLOW_MODEL_IS_EXTERNAL

from conftest import REPO
from rpt_transfer.benchmarks.sources import DATA_ENV, pins_of
from rpt_transfer.jobs.generate import PART
from rpt_transfer.plan import Job, Plan
from rpt_transfer.plan_store import publish_plan
from rpt_transfer.planner import make_plan
from rpt_transfer.store import FileStore, Store
from rpt_transfer.tracking import open_tracker
from rpt_transfer.tracking_claims import CLAIM_TAG, PENDING
from rpt_transfer.tracking_datasets import (
    DATA_TAG,
    benchmark_dataset,
    dataset_digest,
    dataset_input,
    dataset_name,
)
from rpt_transfer.tracking_models import MODEL_TAG, LoggedModels, model_identity, model_spec
from rpt_transfer.tracking_sync import score_metrics, sync_study
from servers_mlflow import new_mlflow_db

RACERS = 4


class Built(NamedTuple):
    plan: Plan
    store: Store
    root: Path


def _report_scale() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "report_scale_rows", REPO / "benchmarks" / "report_scale.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # benchmarks/ is no package
    return module


def _build(root: Path, benchmarks: list[str], local: bool, monkeypatch: pytest.MonkeyPatch) -> Built:
    """Plan two Hub models on `benchmarks` (Hub data, or stand-in local copies) and commit every score job."""
    scale = _report_scale()
    study = scale.paper_study(1).model_copy(
        update={"study": f"dm-{uuid.uuid4().hex[:8]}", "benchmarks": benchmarks, "limit": 4}
    )
    with monkeypatch.context() as env:
        env.setenv("HF_HUB_OFFLINE", "1")
        if local:
            env.setenv(DATA_ENV, str(scale.stand_in_data(root / "data", study)))
        else:
            env.delenv(DATA_ENV, raising=False)
        plan = make_plan(study, f"file://{root / 'store'}", None)
    store = FileStore(root / "store")
    publish_plan(store, plan)
    aggregate = next(job for job in plan.jobs if job.kind == "aggregate")
    skills = scale.model_skills(aggregate, 0)
    for job in (job for job in plan.jobs if job.kind == "score"):
        table = scale.score_table(plan, job, skills[job.context["model"]], 1.0, "x" * 16, 0)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        with store.begin(job.key, job_id=job.id, kind="score", inputs=job.inputs) as writer:
            writer.put_bytes(PART, sink.getvalue().to_pybytes())
            writer.commit()
    return Built(plan, store, root)


@pytest.fixture(scope="module")
def module_patch():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def hub(tmp_path_factory, module_patch, mlflow_server: str) -> Built:
    """A study on Hub data, synced once into the server."""
    built = _build(tmp_path_factory.mktemp("hub-data"), ["gsm8k", "math500"], False, module_patch)
    sync_study(open_tracker(mlflow_server, built.store), built.plan, built.store)
    return built


@pytest.fixture(scope="module")
def local(tmp_path_factory, module_patch, mlflow_server: str) -> Built:
    """A study on local copies of the benchmark files, synced once into the server."""
    built = _build(tmp_path_factory.mktemp("local-data"), ["gsm8k", "usaco"], True, module_patch)
    sync_study(open_tracker(mlflow_server, built.store), built.plan, built.store)
    return built


def _experiment_id(client: MlflowClient, study: str) -> str:
    return client.get_experiment_by_name(f"rpt-transfer/{study}").experiment_id


def _score_runs(client: MlflowClient, study: str) -> dict[str, Run]:
    """Job id -> its score run, read with get_run (a search leaves out model inputs)."""
    runs = client.search_runs([_experiment_id(client, study)], "tags.run_type = 'result'", max_results=1000)
    return {run.data.tags["job_id"]: client.get_run(run.info.run_id) for run in runs}


def _models(client: MlflowClient, study: str) -> list[LoggedModel]:
    return list(client.search_logged_models([_experiment_id(client, study)], max_results=100))


def _scores(plan: Plan) -> list[Job]:
    return [job for job in plan.jobs if job.kind == "score"]


def _ref(plan: Plan, job: Job) -> dict:
    return plan.job(job.deps[0]).inputs["model"]


def test_each_score_run_has_its_hub_benchmark_as_one_dataset_input(hub: Built, mlflow_server: str) -> None:
    runs = _score_runs(MlflowClient(mlflow_server), hub.plan.study)

    assert runs.keys() == {job.id for job in _scores(hub.plan)}
    for job in _scores(hub.plan):
        identity = job.inputs["benchmark"]
        (given,) = runs[job.id].inputs.dataset_inputs
        dataset = given.dataset
        assert dataset.name == f"{identity['name']}@{identity['version']}" == dataset_name(identity)
        assert dataset.digest == dataset_digest(identity) and len(dataset.digest) <= 36
        assert dataset.source_type == "hugging_face"
        (pin,) = pins_of(identity["data"]).items()
        source = json.loads(dataset.source)
        assert (source["path"], source["revision"]) == pin and source["split"] == "test"
        assert json.loads(dataset.profile)["n_items"] > 0
        tags = {tag.key: tag.value for tag in given.tags}
        assert tags == {MLFLOW_DATASET_CONTEXT: "evaluation", DATA_TAG: identity["data"]}


def test_local_copies_are_named_by_their_content_not_their_path(local: Built, mlflow_server: str) -> None:
    runs = _score_runs(MlflowClient(mlflow_server), local.plan.study)

    for job in _scores(local.plan):
        identity = job.inputs["benchmark"]
        (given,) = runs[job.id].inputs.dataset_inputs
        assert identity["data"].startswith("sha256:")
        assert given.dataset.digest == identity["data"] and given.dataset.source_type == "local"
        source = json.loads(given.dataset.source)
        assert source["uri"] == identity["data"] and source["files"]
        assert str(local.root) not in given.dataset.source  # nothing of this machine's paths
    usaco = next(job for job in _scores(local.plan) if job.context["benchmark"] == "usaco")
    assert "copy_of" not in json.loads(
        runs[usaco.id].inputs.dataset_inputs[0].dataset.source
    )  # not on the Hub


def test_one_external_logged_model_per_evaluated_model(hub: Built, mlflow_server: str) -> None:
    client = MlflowClient(mlflow_server)
    experiment_id = _experiment_id(client, hub.plan.study)
    runs = _score_runs(client, hub.plan.study)
    refs = {model_identity(_ref(hub.plan, job)): _ref(hub.plan, job) for job in _scores(hub.plan)}

    assert len(refs) == 2 and len(_models(client, hub.plan.study)) == 2
    for identity, ref in refs.items():
        (model,) = client.search_logged_models([experiment_id], f"tags.`{MODEL_TAG}` = '{identity}'")
        assert identity == f"hf:{ref['hub']}@{ref['revision']}"
        assert model.params == {"model_source": ref["hub"], "revision": ref["revision"]}
        assert model.model_type == "hub" and model.status == "READY"
        assert model.tags[MLFLOW_MODEL_IS_EXTERNAL] == "true" and model.tags[CLAIM_TAG] != PENDING
        assert "MLmodel" in {info.path for info in client.list_logged_model_artifacts(model.model_id)}
        evaluating = [job for job in _scores(hub.plan) if model_identity(_ref(hub.plan, job)) == identity]
        assert {job.context["model"] for job in evaluating} == {model.tags["model"]}
        for job in evaluating:
            assert [given.model_id for given in runs[job.id].inputs.model_inputs] == [model.model_id]


def test_result_metrics_are_linked_to_the_model_per_dataset(hub: Built, mlflow_server: str) -> None:
    client = MlflowClient(mlflow_server)
    runs = _score_runs(client, hub.plan.study)

    for job in _scores(hub.plan):
        run = runs[job.id]
        (model_id,) = [given.model_id for given in run.inputs.model_inputs]
        dataset = run.inputs.dataset_inputs[0].dataset
        linked = [
            point for point in client.get_logged_model(model_id).metrics if point.run_id == run.info.run_id
        ]
        expected = {k: v for k, v in score_metrics(hub.store, job).items() if not math.isnan(v)}
        assert {point.key: point.value for point in linked} == pytest.approx(expected)
        assert {(point.dataset_name, point.dataset_digest) for point in linked} == {
            (dataset.name, dataset.digest)
        }
        assert run.data.metrics == pytest.approx(score_metrics(hub.store, job), nan_ok=True)
    dataset = benchmark_dataset(_scores(hub.plan)[0].inputs["benchmark"])
    found = client.search_logged_models(
        [_experiment_id(client, hub.plan.study)],
        "metrics.accuracy >= 0",
        datasets=[{"dataset_name": dataset.name, "dataset_digest": dataset.digest}],
    )
    assert len(found) == 2


def _snapshot(client: MlflowClient, study: str) -> dict:
    """Everything the sync writes for score runs and models, point by point, keyed by stable names."""
    runs = _score_runs(client, study)
    models = {model.model_id: model for model in _models(client, study)}
    return {
        "runs": sorted(run.info.run_id for run in runs.values()),
        "datasets": {
            job: [(d.dataset.name, d.dataset.digest) for d in run.inputs.dataset_inputs]
            for job, run in runs.items()
        },
        "model_inputs": {job: [m.model_id for m in run.inputs.model_inputs] for job, run in runs.items()},
        "points": {
            (job, key): len(client.get_metric_history(run.info.run_id, key))
            for job, run in runs.items()
            for key in run.data.metrics
        },
        "models": sorted(models),
        "model_points": Counter(
            (p.model_id, p.run_id, p.key, p.value) for model in models.values() for p in model.metrics or []
        ),
    }


def test_a_second_sync_adds_nothing(hub: Built, mlflow_server: str) -> None:
    client = MlflowClient(mlflow_server)
    before = _snapshot(client, hub.plan.study)

    synced = sync_study(open_tracker(mlflow_server, hub.store), hub.plan, hub.store)

    assert synced.score == 4 and synced.models == 2
    assert _snapshot(client, hub.plan.study) == before
    assert set(before["points"].values()) == {1} and set(before["model_points"].values()) == {1}


def test_a_model_deleted_in_the_ui_is_made_again_and_linked(local: Built, mlflow_server: str) -> None:
    client = MlflowClient(mlflow_server)
    deleted = _models(client, local.plan.study)[0]
    client.delete_logged_model(deleted.model_id)

    sync_study(open_tracker(mlflow_server, local.store), local.plan, local.store)

    models = {model.tags[MODEL_TAG]: model for model in _models(client, local.plan.study)}
    remade = models[deleted.tags[MODEL_TAG]]
    assert len(models) == 2 and remade.model_id != deleted.model_id
    runs = _score_runs(client, local.plan.study)
    mine = [
        job for job in _scores(local.plan) if model_identity(_ref(local.plan, job)) == remade.tags[MODEL_TAG]
    ]
    assert {point.run_id for point in remade.metrics} == {runs[job.id].info.run_id for job in mine}
    for job in mine:
        assert remade.model_id in {given.model_id for given in runs[job.id].inputs.model_inputs}


def test_sync_into_an_empty_tracking_store_rebuilds_it_all(
    hub: Built, mlflow_server: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    empty = f"sqlite:///{new_mlflow_db(tmp_path_factory, tmp_path / 'fresh')}"

    synced = sync_study(open_tracker(empty, hub.store), hub.plan, hub.store)

    assert synced.score == 4 and synced.models == 2
    server, fresh = MlflowClient(mlflow_server), MlflowClient(empty)
    old, new = _score_runs(server, hub.plan.study), _score_runs(fresh, hub.plan.study)
    assert old.keys() == new.keys()
    for job, run in new.items():
        assert run.data.params == old[job].data.params and run.info.run_name == old[job].info.run_name
        assert run.data.metrics == pytest.approx(old[job].data.metrics, nan_ok=True)
        (dataset,), (was,) = run.inputs.dataset_inputs, old[job].inputs.dataset_inputs
        assert (dataset.dataset.name, dataset.dataset.digest, dataset.dataset.source) == (
            was.dataset.name,
            was.dataset.digest,
            was.dataset.source,
        )

    def models(client: MlflowClient) -> dict:
        return {
            m.tags[MODEL_TAG]: (m.name, m.model_type, m.params, sorted((p.key, p.value) for p in m.metrics))
            for m in _models(client, hub.plan.study)
        }

    assert models(fresh) == models(server)


def test_racing_writers_make_one_model(hub: Built, mlflow_server: str, tmp_path: Path) -> None:
    """Writers on separate connections look for the same model at once, in a new study's experiment."""
    job = _scores(hub.plan)[0]
    spec = model_spec(hub.plan, job)
    store = FileStore(tmp_path / "claims")
    study = f"race-{uuid.uuid4().hex[:8]}"
    trackers = [open_tracker(mlflow_server, store) for _ in range(RACERS)]
    start = threading.Barrier(RACERS)
    found: list[str] = []
    failed: list[BaseException] = []

    def race(index: int) -> None:
        models = LoggedModels(trackers[index], store, study)
        start.wait()
        try:
            found.append(models.model_for(spec).model_id)
        except BaseException as err:  # reported below, with the thread's error
            failed.append(err)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not failed and len(found) == RACERS and len(set(found)) == 1, failed
    client = MlflowClient(mlflow_server)
    (model,) = _models(client, study)  # the losers deleted theirs
    assert model.model_id == found[0] and model.tags[MODEL_TAG] == spec.identity


def test_a_long_data_identity_becomes_a_short_digest_and_every_hub_dataset_is_named() -> None:
    identity = {
        "name": "finben",
        "version": "1",
        "data": f"hf:TheFinAI/flare-cfa@{'a' * 40},TheFinAI/x@{'b' * 40}",
    }

    dataset = benchmark_dataset(identity)

    assert len(dataset.digest) == 16 and dataset.digest == dataset_digest(dict(identity))
    assert dataset_digest({**identity, "options": {"subsets": ["x"]}}) != dataset.digest
    source = json.loads(dataset.source)
    assert (source["path"], source["revision"]) == ("TheFinAI/flare-cfa", "a" * 40)
    assert source["datasets"] == [
        {"path": "TheFinAI/flare-cfa", "revision": "a" * 40},
        {"path": "TheFinAI/x", "revision": "b" * 40},
    ]


def test_pending_models_of_writers_that_died_are_removed_when_old(mlflow_server: str, tmp_path: Path) -> None:
    store = FileStore(tmp_path / "claims")
    models = LoggedModels(open_tracker(mlflow_server, store), store, f"pending-{uuid.uuid4().hex[:8]}")
    client = MlflowClient(mlflow_server)
    experiment_id = models.experiment.experiment_id
    dead = client.create_logged_model(experiment_id, name="dead", tags={CLAIM_TAG: PENDING})

    assert models.remove_pending(older_than_s=3600) == 0  # a young one may still be claimed
    assert models.remove_pending(older_than_s=0) == 1
    assert dead.model_id not in {model.model_id for model in client.search_logged_models([experiment_id])}


def test_runs_adding_one_new_dataset_at_once_all_get_it(mlflow_server: str, tmp_path: Path) -> None:
    """Score runs of one benchmark finishing together: the server refuses all but one new dataset row."""
    store = FileStore(tmp_path / "claims")
    study = f"inputs-{uuid.uuid4().hex[:8]}"
    trackers = [open_tracker(mlflow_server, store) for _ in range(RACERS * 2)]
    runs = [
        tracker.job_run(study, f"job-{i}", run_name=f"r{i}", run_type="result", tags={})
        for i, tracker in enumerate(trackers)
    ]
    client = MlflowClient(mlflow_server)
    model = client.create_logged_model(runs[0].info.experiment_id, name="m")
    given = dataset_input({"name": "gsm8k", "version": "1", "data": f"hf:openai/gsm8k@{uuid.uuid4().hex}"})
    start = threading.Barrier(len(trackers))
    failed: list[BaseException] = []

    def log(index: int) -> None:
        start.wait()
        try:
            trackers[index].log_inputs(runs[index], given, model.model_id)
        except BaseException as err:  # reported below
            failed.append(err)

    threads = [threading.Thread(target=log, args=(i,)) for i in range(len(trackers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not failed, failed
    for run in runs:
        now = client.get_run(run.info.run_id)
        assert [(d.dataset.name, d.dataset.digest) for d in now.inputs.dataset_inputs] == [
            (given.dataset.name, given.dataset.digest)
        ]
        assert [m.model_id for m in now.inputs.model_inputs] == [model.model_id]
