"""Parts of a plan (`fanout.py`), `prepare --outputs` and `job run --part`: what the Argo templates call.

Plans are real (planned from tiny specs); jobs run for real in subprocesses, against a file store or the
moto S3 server, or against a closed loopback port for a store that does not answer (exit 75).
"""

import json
from pathlib import Path

import pytest
import yaml
from botocore.exceptions import ClientError

from conftest import run_cli, tiny_study, write_study
from rpt_transfer.errors import (
    JobError,
    PlanError,
    StoreError,
    TransientError,
    TransientJobError,
    TransientStoreError,
)
from rpt_transfer.fanout import part_jobs, plan_parts, train_gpus, train_nodes
from rpt_transfer.generation import GenResult
from rpt_transfer.jobs import Ran, exit_code
from rpt_transfer.jobs.generate import refuse_transient_failures
from rpt_transfer.plan import Job, Plan
from rpt_transfer.planner import make_plan
from rpt_transfer.runner import load_and_resolve, read_plan
from rpt_transfer.spec import parse_study
from rpt_transfer.store import Store
from rpt_transfer.store.s3 import S3Store
from servers_s3 import free_port
from test_prepare import commit_generations, path_study

DATA = "".join(
    json.dumps({"id": f"q{i}", "prompt": f"{i} + 1?", "reference": str(i + 1)}) + "\n" for i in range(4)
)


def kinds(plan: Plan, ids: list[str]) -> list[str]:
    return [plan.job(i).kind for i in ids]


@pytest.fixture(scope="module")
def tiny_plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    """Two tiny models (one built on the other: a pretrain → pretrain edge), the smoke suite, 2 shards."""
    folder = tmp_path_factory.mktemp("fanout")
    spec = write_study(folder / "s.yaml", tiny_study(str(folder / "store"), tracking_uri="none"))
    return load_and_resolve(spec, check_store=False).plan()


def test_parts_cover_every_job_once_in_an_order_the_deps_allow(tiny_plan: Plan) -> None:
    parts = plan_parts(tiny_plan, score_chunk=1)
    assert parts["pretrain"] == ["pretrain"] and parts["train"] == []
    models = parts["models"]
    assert [m["model"] for m in models] == ["base", "rpt"] and all(m["gpus"] == 0 for m in models)
    assert [m["generate"] for m in models] == ["generate/0", "generate/1"]
    names = ["pretrain", *(p for m in models for p in (m["generate"], *m["score"])), "aggregate"]
    ran: list[str] = []
    for name in names:  # in the workflow's order: every dep is in an earlier part or earlier in this one
        ids = part_jobs(tiny_plan, name)
        for job_id in ids:
            assert set(tiny_plan.job(job_id).deps) <= set(ran), (name, job_id)
            ran.append(job_id)
    assert sorted(ran) == sorted(job.id for job in tiny_plan.jobs)  # each job in exactly one part
    assert kinds(tiny_plan, part_jobs(tiny_plan, "pretrain")) == ["pretrain", "pretrain"]
    groups = tiny_plan.groups()
    assert part_jobs(tiny_plan, "generate/1") == [job.id for job in groups[1]]
    score_ids = part_jobs(tiny_plan, "score/1/0:2")
    assert kinds(tiny_plan, score_ids) == ["score", "score"]
    assert all(set(tiny_plan.job(i).deps) <= {job.id for job in groups[1]} for i in score_ids)


def test_mapping_every_part_to_its_jobs_groups_the_plan_once(
    tiny_plan: Plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`status` maps each pod's part to jobs on every poll: the groups (a hash per job) are made once."""
    from rpt_transfer import plan as plan_module

    fresh = Plan.model_validate_json(tiny_plan.to_json())  # no groups made yet
    keyed: list[str] = []
    real = plan_module.group_key
    monkeypatch.setattr(plan_module, "group_key", lambda job: keyed.append(job.id) or real(job))
    parts = plan_parts(fresh, score_chunk=1)
    names = [name for item in parts["models"] for name in (item["generate"], *item["score"])]
    for name in names * 3:
        part_jobs(fresh, name)
    assert len(names) > 4 and sorted(keyed) == sorted(job.id for job in fresh.jobs)  # each job keyed once
    assert fresh.groups() == tiny_plan.groups() and fresh.groups() is not fresh.groups()  # copies out


def test_score_chunks_split_each_groups_score_jobs(tiny_plan: Plan) -> None:
    per_group = [len(part_jobs(tiny_plan, f"score/{g}/0:1")) for g in range(2)]
    assert per_group == [1, 1]
    count = sum(1 for job in tiny_plan.jobs if job.kind == "score") // 2  # two models, the same benchmarks
    chunks = plan_parts(tiny_plan, score_chunk=2)["models"][0]["score"]
    expected = [f"score/0/{a}:{min(a + 2, count)}" for a in range(0, count, 2)]
    assert chunks == expected
    assert sum(len(part_jobs(tiny_plan, c)) for c in chunks) == count


@pytest.mark.parametrize(
    ("part", "why"),
    [
        ("generate/2", "model group 2 is out of range (the plan has 2)"),
        ("generate/x", "'x' is not an index"),
        ("score/0/0:99", "range 0:99 is not within group 0's"),
        ("score/0/3:3", "range 3:3 is not within"),
        ("score/0/1", "'1' is not a range A:B"),
        ("train/0", "train job 0 is out of range (the plan has 0)"),
        ("pretrain/0", "not a part"),
        ("evaluate", "not a part"),
    ],
)
def test_a_bad_part_is_one_line_naming_it_and_what_is_accepted(tiny_plan: Plan, part: str, why: str) -> None:
    with pytest.raises(PlanError) as error:
        part_jobs(tiny_plan, part)
    message = str(error.value)
    assert message.startswith(f"part {part!r} of study 'mini': ") and why in message, message
    assert message.endswith("accepted: pretrain, train/I, generate/G, score/G/A:B, aggregate")
    assert "\n" not in message


def test_train_parts_ask_for_the_gpus_the_trainer_uses(tmp_path: Path) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text(DATA)
    study = {
        "study": "trained", "kind": "interventional",
        "models": {"base": {"tiny": {"corpus": {"smoke_arith": 8}, "steps": 1, "seed": 0}}}, "base": "base",
        "training": {"learning_rate": 0.001, "steps": 1, "max_new_tokens": 4, "rollouts_per_prompt": 2,
                     "prompts_per_step": 2},
        "train": [{"name": n, "domain": "math", "seed": i, "data": {"path": str(data), "scorer": "math"}}
                  for i, n in enumerate("ab")],
        "benchmarks": ["smoke_arith"], "limit": 1, "sampling": {"max_tokens": 4, "n": 1},
    }  # fmt: skip
    cpu = make_plan(parse_study(yaml.safe_dump(study), "s.yaml"), str(tmp_path / "store"), None)
    assert plan_parts(cpu)["train"] == [
        {"part": "train/0", "gpus": 0, "nodes": 1},
        {"part": "train/1", "gpus": 0, "nodes": 1},
    ]
    assert kinds(cpu, part_jobs(cpu, "train/1")) == ["train"]
    gpu_study = {**study, "resources": {"backend": "hf", "gpus_per_job": 1}}
    gpu = make_plan(parse_study(yaml.safe_dump(gpu_study), "s.yaml"), str(tmp_path / "store"), None)
    trl = [(item["gpus"], item["nodes"]) for item in plan_parts(gpu)["train"]]
    assert trl == [(1, 1), (1, 1)]  # TRL trains on one GPU, whatever gpus_per_job
    for nodes, gpus in ((1, 8), (4, 2)):  # OpenRLHF: its own placement, whatever the generate jobs ask
        placed = {**gpu_study, "trainer": "openrlhf", "openrlhf": {"nodes": nodes, "gpus_per_node": gpus}}
        placed["training"] = {**study["training"], "prompts_per_step": 4}  # a sample for each of 8 GPUs
        plan = make_plan(parse_study(yaml.safe_dump(placed), "s.yaml"), str(tmp_path / "store"), None)
        assert [job.context["resources"] for job in plan.jobs if job.kind == "train"] == [
            {"nodes": nodes, "gpus_per_node": gpus}
        ] * 2
        assert plan_parts(plan)["train"] == [
            {"part": f"train/{i}", "gpus": gpus, "nodes": nodes} for i in range(2)
        ]


def test_a_train_job_without_a_placement_keeps_the_one_pod_rule(tiny_plan: Plan) -> None:
    """Plans made before OpenRLHF placements (no `resources` in the context): one pod, gpus_per_job."""
    job = Job(
        id="0123456789abcdef", kind="train", key="checkpoints/x", deps=[], inputs={"trainer": {"backend": "openrlhf"}},
        context={},
    )  # fmt: skip
    assert (train_gpus(tiny_plan, job), train_nodes(job)) == (0, 1)
    bad = job.model_copy(update={"context": {"resources": {"nodes": 0, "gpus_per_node": 8}}})
    with pytest.raises(PlanError, match="not 1 or more nodes"):
        train_nodes(bad)


def test_prepare_outputs_and_job_run_part_run_a_real_plan(tmp_path: Path) -> None:
    store = tmp_path / "store"
    spec = write_study(tmp_path / "s.yaml", path_study(str(store)))
    outputs = tmp_path / "outputs"
    prepared = run_cli("prepare", str(spec), "--outputs", str(outputs), "--score-chunk", "1")
    assert prepared.returncode == 0, prepared.stderr
    uri = prepared.stdout.strip()
    assert sorted(p.name for p in outputs.iterdir()) == [
        "gpu-resource", "models.json", "plan", "pretrain.json", "train.json"
    ]  # fmt: skip
    assert (outputs / "gpu-resource").read_text() == "nvidia.com/gpu"
    assert (outputs / "plan").read_text() == uri  # no newline: Argo passes the file's text as it is
    assert json.loads((outputs / "pretrain.json").read_text()) == []
    assert json.loads((outputs / "train.json").read_text()) == []
    models = json.loads((outputs / "models.json").read_text())
    assert models == [
        {"model": "base", "gpus": 0, "generate": "generate/0", "score": ["score/0/0:1"]},
        {"model": "rpt", "gpus": 0, "generate": "generate/1", "score": ["score/1/0:1"]},
    ]
    plan = read_plan(uri)
    commit_generations(Store.from_uri(str(store)), plan, "base")
    scored = run_cli("job", "run", "--plan", uri, "--part", "score/0/0:1")
    assert scored.returncode == 0, scored.stderr
    (score_id,) = part_jobs(plan, "score/0/0:1")
    assert f"job {score_id}: done, " in scored.stderr, scored.stderr
    again = run_cli("job", "run", "--plan", uri, "--part", "score/0/0:1")
    assert again.returncode == 0 and f"job {score_id}: already done" in again.stderr, again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["0123456789abcdef", "--part", "aggregate"], "give job ids or --part PART, not both"),
        ([], "give job ids or --part PART, not both"),
        (["--part", "generate/7"], "part 'generate/7' of study 'prep': model group 7 is out of range"),
    ],
)
def test_job_run_refuses_ids_with_a_part_and_bad_parts_in_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    spec = write_study(tmp_path / "s.yaml", path_study(str(tmp_path / "store")))
    uri = run_cli("prepare", str(spec)).stdout.strip()
    result = run_cli("job", "run", "--plan", uri, *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_a_store_that_does_not_answer_makes_a_part_exit_75(tmp_path: Path) -> None:
    """The plan is at hand, the store (the pod's `RPT_STORE`) refuses connections: every job of the part
    fails transiently, each with its line, and the exit code asks Argo to try the pod again."""
    spec = write_study(tmp_path / "s.yaml", path_study(str(tmp_path / "store")))
    uri = run_cli("prepare", str(spec)).stdout.strip()
    closed = f"http://127.0.0.1:{free_port()}"
    env = {"RPT_STORE": "s3://bucket/store", "AWS_ENDPOINT_URL": closed, "AWS_ACCESS_KEY_ID": "k",
           "AWS_SECRET_ACCESS_KEY": "k", "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"}  # fmt: skip
    result = run_cli("job", "run", "--plan", uri, "--part", "generate/0", env=env)
    assert result.returncode == 75, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("job ")]
    assert len(lines) == len(part_jobs(read_plan(uri), "generate/0")) >= 1
    assert all(f"cannot reach S3 endpoint {closed}" in line for line in lines), lines
    (one,) = part_jobs(read_plan(uri), "score/0/0:1")
    single = run_cli("job", "run", one, "--plan", uri, env=env)  # one id: the command's own error, 75
    assert single.returncode == 75 and single.stderr.startswith("error: cannot reach S3"), single.stderr
    plan_uri = f"s3://bucket/store/{uri.split('/store/', 1)[1]}"  # the plan itself behind the closed port
    unread = run_cli("job", "run", "--plan", plan_uri, "--part", "generate/0", env=env)
    assert unread.returncode == 75 and unread.stderr.count("\n") == 1, unread.stderr


def test_the_exit_code_of_several_jobs(tiny_plan: Plan) -> None:
    """75 only when every failure is transient; a failure caused by an earlier one in the list follows it."""
    first, second = (tiny_plan.job(i) for i in part_jobs(tiny_plan, "pretrain"))
    assert second.deps == [first.id]
    transient, other = TransientStoreError("cannot reach S3"), JobError("too many failed items")
    needs = JobError(f"job {second.id} (pretrain) needs pretrain {first.id} first")
    assert exit_code([Ran(first), Ran(second)]) == 0
    assert exit_code([Ran(first, error=transient), Ran(second, error=needs)]) == 75
    assert exit_code([Ran(first, error=transient), Ran(second, error=transient)]) == 75
    assert exit_code([Ran(first), Ran(second, error=other)]) == 1
    assert exit_code([Ran(first, error=other), Ran(second, error=needs)]) == 1
    assert exit_code([Ran(first, error=RuntimeError("bug")), Ran(second, error=needs)]) == 1


@pytest.mark.parametrize(
    ("code", "status", "transient"),
    [("SlowDown", 503, True), ("InternalError", 500, True), ("Whatever", 502, True),
     ("AccessDenied", 403, False), ("InvalidArgument", 400, False)],
)  # fmt: skip
def test_s3_answers_that_may_pass_are_transient(code: str, status: int, transient: bool) -> None:
    answer = {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    error = S3Store("bucket", "p")._client_error(ClientError(answer, "GetObject"), "read", "s3://b/k", "e")
    assert isinstance(error, StoreError) and isinstance(error, TransientError) is transient


def test_samples_that_failed_after_every_retry_fail_the_job_transiently() -> None:
    rows = [GenResult("q1", 0, "p", "", "error", 0, 0, error="HTTP 503: warming up", transient=True)]
    with pytest.raises(TransientJobError, match="1 of 1 samples failed after every retry"):
        refuse_transient_failures(rows)


@pytest.mark.parametrize("bad", ['nvidia.com/gpu": "1"}, "hostPID": true, "x": {"a', "", "a b", "x/"])
def test_prepare_refuses_a_gpu_resource_that_is_not_a_resource_name(tmp_path: Path, bad: str) -> None:
    """The name reaches the GPU pods' podSpecPatch unescaped: prepare, the Workflow's first step, stops it."""
    spec = write_study(tmp_path / "s.yaml", tiny_study(str(tmp_path / "store"), tracking_uri="none"))
    result = run_cli("prepare", str(spec), "--outputs", str(tmp_path / "out"), "--gpu-resource", bad)
    assert result.returncode == 2 and result.stdout == "", result.stderr
    assert result.stderr.startswith("error: --gpu-resource ") and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "store").exists()  # nothing written
