"""Argo's limits: the paper-scale study fits every one with room to spare, and an oversized study is refused.

The paper study is planned as tests/test_paper_study.py plans it (the loopback fake Hub, stand-in benchmark
files), through that module's own helpers.
"""

from pathlib import Path

import pytest
import yaml

import test_paper_study
from conftest import tiny_study
from rpt_transfer.argo import limits, render, templates
from rpt_transfer.argo.limits import Sizes
from rpt_transfer.argo.params import defaults
from rpt_transfer.fanout import plan_parts
from rpt_transfer.plan import Plan
from rpt_transfer.planner import make_plan
from rpt_transfer.spec import parse_study
from servers_hub import FakeHub
from test_paper_study import plan_here, stand_in_data

hub, branches = test_paper_study.hub, test_paper_study.branches  # its fixtures, used here by name

PAPER_JOBS = 2241


@pytest.fixture
def paper_plan(
    tmp_path: Path, hub: FakeHub, branches: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Plan:
    plan = plan_here(stand_in_data(tmp_path / "data"), monkeypatch, tmp_path / "store")
    assert plan.counts()["jobs"] == PAPER_JOBS
    return plan


def tiny_plan(tmp_path: Path) -> Plan:
    store = f"file://{tmp_path / 'store'}"
    return make_plan(parse_study(yaml.safe_dump(tiny_study(store)), "mini.yaml"), store, None)


def test_the_paper_study_fits_every_argo_limit(paper_plan: Plan) -> None:
    sizes = limits.study_sizes(paper_plan)
    parts = plan_parts(paper_plan)
    chunks = sum(len(item["score"]) for item in parts["models"])
    expected_pods = 1 + len(parts["pretrain"]) + len(parts["train"]) + len(parts["models"]) + chunks + 2
    assert (
        sizes.pods == expected_pods
    )  # prepare, pretrain, train, a generate pod per group, chunks, aggregate, exit
    assert all(size <= limits.RESULT_CAP_BYTES for size in sizes.outputs.values()), sizes.outputs
    assert sizes.argument_bytes <= limits.ARGUMENT_CAP_BYTES
    assert sizes.templates <= limits.MAX_TEMPLATES and sizes.steps <= limits.MAX_STEPS
    assert sizes.parameters <= limits.MAX_PARAMETERS
    assert sizes.status_bytes <= limits.OBJECT_CAP_BYTES, sizes
    assert limits.check(paper_plan) is None
    unretried = limits.study_sizes(paper_plan, retries=0)
    assert unretried.pods == sizes.pods and unretried.status_bytes < sizes.status_bytes
    # the numbers docs/argo-templates.md quotes (pytest -s)
    print(
        f"paper study ({PAPER_JOBS} jobs): {sizes}; "
        f"no retry: {unretried.nodes} nodes, {unretried.status_bytes} bytes"
    )


def test_sizes_of_a_small_study_count_each_pod_and_every_retry(tmp_path: Path) -> None:
    plan = tiny_plan(tmp_path)
    sizes = limits.study_sizes(plan)
    parts = plan_parts(plan)
    groups = len(parts["models"])
    chunks = sum(len(item["score"]) for item in parts["models"])
    assert parts["train"] == [] and parts["pretrain"] == ["pretrain"] and groups == 2
    assert sizes.pods == 1 + 1 + groups + chunks + 1 + 1
    attempts = 1 + int(defaults(study="s3://b/spec.yaml")["retries"])
    assert attempts == 4
    # nodes: per pod its attempts and the retry node; a steps node per group; step groups; skipped branches
    study_groups, model_groups = 5, 2
    skipped = groups  # the CPU groups skip generate-gpu
    empty = 3  # train is [] here: Argo records train-gpu, train-cpu and train-ray as skipped, "empty params"
    expected = (
        sizes.pods * (attempts + 1) + (1 + groups) + study_groups + groups * model_groups + skipped + empty
    )
    assert sizes.nodes == expected
    assert sizes.outputs["plan"] == len(f"{plan.store.rstrip('/')}/{plan.key}")
    assert limits.check(plan) is None
    fewer = limits.study_sizes(plan, retries=0)
    assert fewer.pods == sizes.pods and fewer.nodes == expected - sizes.pods * (attempts - 1)


def test_a_bigger_score_chunk_shrinks_the_status(paper_plan: Plan) -> None:
    one, eight = limits.study_sizes(paper_plan, 1), limits.study_sizes(paper_plan, 8)
    assert one.pods > eight.pods and one.status_bytes > eight.status_bytes


def test_template_counts_are_those_of_the_generated_template() -> None:
    spec = render.to_dict(templates.workflow_template())["spec"]
    count, steps, parameters = limits.template_counts(spec)
    assert count == len(spec["templates"]) == 14
    assert steps == 7  # study: prepare, pretrain, train-gpu, train-cpu, train-ray, models, aggregate
    assert parameters == len(spec["arguments"]["parameters"])


FITS = Sizes(
    outputs={"plan": 80, "models.json": 5_000},
    pods=100,
    nodes=500,
    status_bytes=400_000,
    templates=11,
    steps=6,
    parameters=22,
    argument_bytes=90,
)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            {"status_bytes": limits.OBJECT_CAP_BYTES + 1},
            "the Workflow object would reach about 1,048,577 bytes",
        ),
        ({"outputs": {"models.json": limits.RESULT_CAP_BYTES + 1}}, "prepare's output models.json would be"),
        ({"templates": 201}, "the WorkflowTemplate's templates: 201 templates, over Argo's limit of 200"),
        ({"steps": 201}, "steps of one steps template: 201 steps"),
        ({"parameters": 501}, "501 parameters, over Argo's limit of 500"),
        ({"argument_bytes": limits.ARGUMENT_CAP_BYTES + 1}, "a pod's longest argument"),
    ],
)
def test_first_exceeded_names_the_limit_in_one_line(change: dict, words: str) -> None:
    assert limits.first_exceeded(FITS) is None
    message = limits.first_exceeded(FITS._replace(**change))
    assert message is not None and words in message and "\n" not in message, message


def test_an_oversized_study_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = tiny_plan(tmp_path)
    real = limits.study_sizes(plan)
    monkeypatch.setattr(limits, "OBJECT_CAP_BYTES", real.status_bytes - 1)  # as if the study were that big
    message = limits.check(plan)
    assert message is not None and message.startswith("the Workflow object would reach about"), message
    assert f"{real.status_bytes:,} bytes" in message and "raise --score-chunk or split the study" in message


def test_a_multi_node_run_walks_its_check_pod_and_its_rayjob(tmp_path: Path) -> None:
    """A train item over several nodes: the train-ray steps node, its check pod and its RayJob's pod."""
    data = tmp_path / "train.jsonl"
    data.write_text(
        "".join(f'{{"id": "q{i}", "prompt": "{i} + 1?", "reference": "{i + 1}"}}\n' for i in range(16))
    )
    study = {
        "study": "trained", "kind": "interventional", "trainer": "openrlhf",
        "openrlhf": {"nodes": 2, "gpus_per_node": 8},
        "models": {"base": {"tiny": {"corpus": {"smoke_arith": 8}, "steps": 1, "seed": 0}}}, "base": "base",
        "training": {"learning_rate": 0.001, "steps": 1, "max_new_tokens": 4, "rollouts_per_prompt": 2,
                     "prompts_per_step": 8},  # a sample for each of the 16 GPUs
        "train": [{"name": "a", "domain": "math", "seed": 0, "data": {"path": str(data), "scorer": "math"}}],
        "benchmarks": ["smoke_arith"], "limit": 1, "sampling": {"max_tokens": 4, "n": 1},
    }  # fmt: skip
    store = f"file://{tmp_path / 'store'}"
    plan = make_plan(parse_study(yaml.safe_dump(study), "s.yaml"), store, None)
    assert plan_parts(plan)["train"] == [{"part": "train/0", "gpus": 8, "nodes": 2}]
    sizes = limits.study_sizes(plan)
    groups = plan_parts(plan)["models"]
    chunks = sum(len(item["score"]) for item in groups)
    assert sizes.pods == 1 + 1 + 2 + len(groups) + chunks + 1 + 1  # train-ray-check and train-ray-job
    assert limits.check(plan) is None
