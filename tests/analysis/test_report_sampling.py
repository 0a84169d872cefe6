"""The report says how each model was sampled, and where `sampling_defaults: model` found its values.

The generate, score and aggregate jobs run for real on stored checkpoints (committed through the store
API, one with a generation_config.json); only the model is the fake backend.
"""

import json
from pathlib import Path

import pytest
import yaml

from conftest import tiny_study
from jobs.stored_generations import answers, right_answer, store_generations
from rpt_transfer.jobs import run_job
from rpt_transfer.plan import Plan
from rpt_transfer.planner import make_plan
from rpt_transfer.spec import parse_study
from rpt_transfer.store import Store

CONFIG = "generation_config.json"
OWN = {"temperature": 0.6, "top_p": 0.95, "top_k": 20}


def plan_of(store_uri: str, sampling_defaults: str) -> Plan:
    """Checkpoints `rpt` (with its own sampling) and `base` (without) on smoke_arith."""
    store = Store.from_uri(store_uri)
    for name, files in {"rpt": {CONFIG: json.dumps(OWN).encode()}, "base": {}}.items():
        key = f"checkpoints/{name}"
        if not store.is_done(key):
            with store.begin(key, job_id=name, kind="train", inputs={}) as writer:
                writer.put_bytes("config.json", b"{}")
                for file, data in files.items():
                    writer.put_bytes(file, data)
    study = tiny_study(
        store_uri,
        models={"base": {"path": "checkpoints/base"}, "rpt": {"path": "checkpoints/rpt"}},
        benchmarks=["smoke_arith"],
        limit=3,
        sampling={"temperature": 1.0, "n": 1, "max_tokens": 64},
        sampling_defaults=sampling_defaults,
    )
    return make_plan(parse_study(yaml.safe_dump(study), "s.yaml"), store_uri, None)


def report_of(plan: Plan) -> tuple[str, str]:
    """Generate (fake backend), score and aggregate; the report's Markdown and HTML."""
    store_generations(plan, answers(right_answer, {}))
    for job in plan.jobs:
        if job.kind in ("score", "aggregate"):
            assert run_job(plan, job.id) is not None
    (aggregate,) = [job for job in plan.jobs if job.kind == "aggregate"]
    store = Store.from_uri(plan.store)
    return tuple(store.read_object(aggregate.key, name).decode() for name in ("report.md", "report.html"))


@pytest.fixture
def store_uri(tmp_path: Path) -> str:
    return f"file://{tmp_path / 'store'}"


def test_each_models_own_sampling_and_its_source_are_in_the_provenance(store_uri: str) -> None:
    markdown, html = report_of(plan_of(store_uri, "model"))
    provenance = markdown.split("## Provenance", 1)[1]
    own = f"temperature=0.6, top_p=0.95, top_k=20 from {store_uri}/checkpoints/rpt/{CONFIG}"
    absent = f"none: {store_uri}/checkpoints/base: no {CONFIG}; the study's sampling applies"
    assert f"| sampling_defaults.rpt | {own} |" in provenance
    assert f"| sampling_defaults.base | {absent} |" in provenance
    # the sampling each model ran with, per benchmark: the study's for base, its own for rpt
    assert "| sampling.smoke_arith.rpt | " in provenance and "'top_k': 20" in provenance
    assert "| sampling.smoke_arith.base | " in provenance
    assert "<dt>sampling_defaults.rpt</dt><dd>" + own.replace("'", "&#39;") + "</dd>" in html
    # sampling at each model's own settings is the study's design: the pair is still compared
    warnings = markdown.split("## Warnings", 1)[1].split("\n## ", 1)[0]
    assert "evaluated with different settings" not in warnings and "not compared" not in warnings, warnings
    assert "compared although own_sampling.temperature" in warnings  # named, as prompt modes are


def test_a_study_sampling_every_model_alike_shows_no_model_sampling(store_uri: str) -> None:
    markdown, _ = report_of(plan_of(store_uri, "spec"))
    provenance = markdown.split("## Provenance", 1)[1]
    assert "sampling_defaults" not in provenance
    assert "| sampling.smoke_arith | " in provenance  # one sampling for both models, as before
