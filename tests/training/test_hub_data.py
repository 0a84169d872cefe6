"""Training data from a Hub dataset: planned by commit (no data read), loaded at exactly that commit in the job.

The Hub is the loopback fake of servers_hub.py; its files are parquet or JSON Lines written here. The fake
answers `dataset_info` and file downloads; the one call it lacks, the repo tree (`list_repo_tree`, used to
find a split's files), is added per test by `serve_trees`.
"""

import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from pydantic import ValidationError

import servers_hub
from rpt_transfer.errors import JobError, RptError
from rpt_transfer.jobs import run_job
from rpt_transfer.plan import Job, Plan
from rpt_transfer.planner import make_plan
from rpt_transfer.scoring.code import stdio_reference
from rpt_transfer.spec import parse_study
from rpt_transfer.store import Store
from rpt_transfer.training.config import TrainData
from rpt_transfer.training.data import (
    REFERENCE_FORMATS,
    data_identity,
    data_label,
    data_source_field,
    load_examples,
    stdio_tests_reference,
)
from servers_hub import FakeHub, commit_of

fake_hub = servers_hub.fake_hub  # the loopback fake Hub fixture


@pytest.fixture(autouse=True)
def own_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Hub cache per test: huggingface_hub reads HF_HOME at import, and commits here repeat across tests."""
    cache = tmp_path / "hub-cache"
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    return cache


REPO_ID = "org/math-rl"
FILE = "data/train-00000-of-00001.parquet"
OTHER = "1234567890abcdef1234567890abcdef12345678"


def verl_rows(count: int, source: str = "numina", ability: str = "math") -> list[dict[str, Any]]:
    """Rows shaped like the verl/PRIME RL sets: chat prompt, nested ground truth, source and ability."""
    return [
        {
            "data_source": source,
            "ability": ability,
            "prompt": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": f"What is {i} + 1? Put the answer in \\boxed{{}}."},
            ],
            "reward_model": {"style": "rule", "ground_truth": str(i + 1)},
        }
        for i in range(count)
    ]


def parquet(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def serve_trees(hub: FakeHub) -> None:
    """Teach the fake Hub `GET /api/datasets/{repo}/tree/{revision}`: the files `add_file` put there."""
    answer = hub.answer

    def with_trees(method: str, raw_path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        parts = raw_path.split("?")[0].strip("/").split("/")
        if len(parts) >= 6 and parts[:2] == ["api", "datasets"] and parts[4] == "tree":
            repo, revision = "/".join(parts[2:4]), parts[5]
            commit = hub.repos.get(("dataset", repo), {}).get(revision, revision)
            files = hub.files.get(("dataset", repo, commit), {})
            listing = [{"type": "file", "path": n, "size": len(c), "oid": "0" * 40} for n, c in files.items()]
            hub.requests.append(servers_hub.Request(method, raw_path.split("?")[0], headers))
            return 200, {"Content-Type": "application/json"}, json.dumps(listing).encode()
        return answer(method, raw_path, headers)

    hub.answer = with_trees  # type: ignore[method-assign]


def hub_data(**changes: Any) -> dict[str, Any]:
    data = {
        "hub": REPO_ID,
        "revision": "main",
        "prompt_field": "prompt",
        "reference_field": "reward_model.ground_truth",
        "scorer": "math",
        "files": [FILE],
    }
    return {**data, **changes}


def study_of(data: dict[str, Any], steps: int = 1) -> dict[str, Any]:
    return {
        "study": "hub-data",
        "kind": "interventional",
        "models": {"base": {"tiny": {"corpus": {"smoke_arith": 8}, "steps": 1, "seed": 0}}},
        "base": "base",
        "training": {
            "learning_rate": 0.001,
            "steps": steps,
            "max_new_tokens": 4,
            "rollouts_per_prompt": 2,
            "prompts_per_step": 2,
            "checkpoint_every": 1,
        },
        "train": [{"name": "m", "domain": "math", "data": data}],
        "benchmarks": ["smoke_arith"],
        "limit": 1,
        "sampling": {"max_tokens": 4, "n": 1},
    }


def plan_of(data: dict[str, Any], store: str = "file:///nowhere/store") -> Plan:
    return make_plan(parse_study(yaml.safe_dump(study_of(data)), "s.yaml"), store, None)


def train_job(plan: Plan) -> Job:
    return next(job for job in plan.jobs if job.kind == "train")


def identity_of(data: dict[str, Any]) -> dict[str, Any]:
    return data_identity(TrainData.model_validate(data))


def test_planning_resolves_the_branch_to_a_commit_and_reads_no_data(fake_hub: FakeHub) -> None:
    fake_hub.add_file(REPO_ID, FILE, parquet(verl_rows(4)), kind="dataset")
    job = train_job(plan_of(hub_data()))
    data = job.inputs["data"]
    assert data["hub"] == REPO_ID and data["revision"] == commit_of(REPO_ID, "main")
    assert data["scorer"]["name"] == "math" and data["split"] == "train"
    assert "main" not in json.dumps(data)  # the moving name is not part of the id
    assert fake_hub.file_requests() == []  # the planner downloads no data file
    assert fake_hub.resolutions() == {f"/api/datasets/{REPO_ID}/revision/main": 1}
    pinned = fake_hub.requests.copy()
    assert (
        data_identity(TrainData.model_validate(hub_data(revision=data["revision"])))["revision"]
        == data["revision"]
    )
    assert fake_hub.requests == pinned  # a commit is not asked about at all


def test_the_job_loads_exactly_the_planned_commit(fake_hub: FakeHub, tmp_path: Path) -> None:
    old = fake_hub.add_file(REPO_ID, FILE, parquet(verl_rows(4)), kind="dataset")
    fake_hub.add_file(
        REPO_ID, FILE, parquet(verl_rows(4, ability="other")[::-1]), revision=OTHER, kind="dataset"
    )
    identity = train_job(plan_of(hub_data())).inputs["data"]
    fake_hub.repos[("dataset", REPO_ID)]["main"] = OTHER  # the branch moves after planning
    examples, scorer = load_examples(identity, Store.from_uri(str(tmp_path / "store")))
    assert scorer == "math"
    assert [tuple(e) for e in examples] == [
        (f"train-{i}", f"What is {i} + 1? Put the answer in \\boxed{{}}.", str(i + 1)) for i in range(4)
    ]
    assert {r.path for r in fake_hub.file_requests()} == {f"/datasets/{REPO_ID}/resolve/{old}/{FILE}"}


def test_filters_and_the_shuffle_match_the_datasets_library(fake_hub: FakeHub) -> None:
    datasets = pytest.importorskip("datasets")
    rows = [
        {
            **row,
            "data_source": ["taco", "apps", "codeforces", "lcbv5"][i % 4],
            "ability": ["code", "math"][i % 5 == 0],
        }
        for i, row in enumerate(verl_rows(60))
    ]
    commit = fake_hub.add_file(REPO_ID, FILE, parquet(rows), kind="dataset")
    spec = hub_data(
        revision=commit,
        where={"ability": "code"},
        exclude={"data_source": ["apps", "lcbv5"]},
        shuffle=True,
        seed=42,
        examples=10,
    )
    examples, _ = load_examples(identity_of(spec), Store.from_uri("file:///unused"))
    expected = (
        datasets.Dataset.from_list([{**row, "number": i} for i, row in enumerate(rows)])
        .filter(lambda r: r["ability"] == "code" and r["data_source"] not in ("apps", "lcbv5"))
        .shuffle(seed=42)
    )
    assert [e.id for e in examples] == [f"train-{n}" for n in expected["number"][:10]]
    in_order = {key: value for key, value in spec.items() if key not in ("shuffle", "seed")}
    unshuffled, _ = load_examples(identity_of(in_order), Store.from_uri("file:///x"))
    assert [e.id for e in unshuffled] == [f"train-{n}" for n in sorted(expected["number"])[:10]]


def test_a_missing_field_names_the_row_the_field_and_what_exists(fake_hub: FakeHub) -> None:
    rows = verl_rows(3)
    rows[2]["reward_model"] = {"style": "rule", "answer": "3"}
    commit = fake_hub.add_file(REPO_ID, FILE, parquet(rows), kind="dataset")
    with pytest.raises(JobError) as err:
        load_examples(identity_of(hub_data(revision=commit)), Store.from_uri("file:///unused"))
    (line,) = str(err.value).splitlines()
    assert f"hub dataset {REPO_ID}@{commit[:12]} train row 2" in line
    assert "no field 'reward_model.ground_truth'" in line and "reward_model has: answer, style" in line
    with pytest.raises(JobError, match=r"no column 'solution' \(needed by reference_field 'solution'\); its "
                       r"columns: data_source, ability, prompt, reward_model"):  # fmt: skip
        load_examples(
            identity_of(hub_data(revision=commit, reference_field="solution")), Store.from_uri("file:///u")
        )
    with pytest.raises(JobError, match=r"row 0: field 'reward_model' is an object; accepted: text, or chat"):
        load_examples(
            identity_of(hub_data(revision=commit, prompt_field="reward_model")), Store.from_uri("file:///u")
        )


def test_ids_follow_the_commit_not_the_cache(
    fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = fake_hub.add_file(REPO_ID, FILE, parquet(verl_rows(4)), kind="dataset")
    fake_hub.add_file(REPO_ID, FILE, parquet(verl_rows(5)), revision=OTHER, kind="dataset")
    at_main = train_job(plan_of(hub_data())).id
    assert train_job(plan_of(hub_data(revision=first))).id == at_main  # the branch is only a name for it
    assert train_job(plan_of(hub_data(revision=OTHER))).id != at_main
    loaded = []
    for cache in ("cache-a", "cache-b"):
        monkeypatch.setenv("HF_HOME", str(tmp_path / cache))
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / cache / "hub"))
        assert train_job(plan_of(hub_data())).id == at_main
        examples, _ = load_examples(identity_of(hub_data(revision=first)), Store.from_uri("file:///unused"))
        loaded.append(examples)
        assert list((tmp_path / cache / "hub").glob(f"datasets--org--math-rl/snapshots/{first}/{FILE}"))
    assert loaded[0] == loaded[1]
    assert str(tmp_path) not in json.dumps(train_job(plan_of(hub_data())).inputs)


def test_a_split_is_found_among_the_repo_files_in_order(fake_hub: FakeHub) -> None:
    serve_trees(fake_hub)
    rows = verl_rows(7)
    for name, part in (
        ("data/train-00001-of-00002.parquet", parquet(rows[4:])),
        ("data/train-00000-of-00002.parquet", parquet(rows[:4])),
        ("data/test-00000-of-00001.parquet", parquet(verl_rows(2, ability="x"))),
        ("README.md", "# card"),
    ):
        commit = fake_hub.add_file(REPO_ID, name, part, kind="dataset")
    examples, _ = load_examples(
        identity_of(hub_data(revision=commit, files=None)), Store.from_uri("file:///u")
    )
    assert [e.reference for e in examples] == [str(i + 1) for i in range(7)]
    assert [e.id for e in examples] == [f"train-{i}" for i in range(7)]
    with pytest.raises(JobError, match=r"no 'validation' data file \(parquet or jsonl\) at that commit; its data "
                       r"files: data/test-00000-of-00001.parquet, data/train-00000"):  # fmt: skip
        load_examples(
            identity_of(hub_data(revision=commit, files=None, split="validation")),
            Store.from_uri("file:///u"),
        )


def test_jsonl_files_string_prompts_suffix_and_id_field(fake_hub: FakeHub) -> None:
    rows = [{"uid": f"q{i}", "question": f"Capital of country {i}?", "answer": f"City {i}"} for i in range(3)]
    commit = fake_hub.add_file(REPO_ID, "train.jsonl", jsonl(rows), kind="dataset")
    spec = hub_data(
        revision=commit,
        files=["train.jsonl"],
        prompt_field="question",
        reference_field="answer",
        prompt_suffix=" Let's think step by step.",
        id_field="uid",
    )
    examples, _ = load_examples(identity_of(spec), Store.from_uri("file:///u"))
    assert [tuple(e) for e in examples] == [
        (f"q{i}", f"Capital of country {i}? Let's think step by step.", f"City {i}") for i in range(3)
    ]
    duplicated = [*rows, {**rows[0], "question": "again"}]
    commit = fake_hub.add_file(REPO_ID, "train.jsonl", jsonl(duplicated), revision=OTHER, kind="dataset")
    with pytest.raises(JobError, match=r"row 3: id 'q0' \(field 'uid'\) is also row 0's"):
        load_examples(identity_of({**spec, "revision": commit}), Store.from_uri("file:///u"))


def test_too_few_rows_for_examples_fail_in_one_line(fake_hub: FakeHub) -> None:
    commit = fake_hub.add_file(REPO_ID, FILE, parquet(verl_rows(5)), kind="dataset")
    with pytest.raises(JobError) as err:
        load_examples(
            identity_of(hub_data(revision=commit, examples=6, where={"ability": "math"})),
            Store.from_uri("file:///u"),
        )
    assert "`examples` asks for 6, but only 5 rows pass the filters and convert" in str(err.value)
    assert "\n" not in str(err.value)


def test_stdio_tests_become_code_stdio_references_and_other_tests_are_left_out(
    fake_hub: FakeHub, capsys: pytest.CaptureFixture
) -> None:
    listed = json.dumps([{"input": "1 2\n", "output": "3\n", "type": "stdin_stdout"}])
    taco = json.dumps({"inputs": ["4\n", ["5", "6"]], "outputs": ["8\n", ["11"]]})
    call = json.dumps({"inputs": [[1, 2]], "outputs": [3], "fn_name": "add"})
    rows = [
        {"problem": "Add two numbers.", "tests": listed, "data_source": "codeforces"},
        {"problem": "Double it.", "tests": call, "data_source": "taco"},
        {"problem": "Sum lines.", "tests": taco, "data_source": "taco"},
        {"problem": "Nothing.", "tests": "[]", "data_source": "taco"},
    ]
    commit = fake_hub.add_file(REPO_ID, FILE, parquet(rows), kind="dataset")
    spec = hub_data(
        revision=commit, prompt_field="problem", reference_field="tests", reference_format="stdio_tests",
        scorer="code_stdio",
    )  # fmt: skip
    examples, scorer = load_examples(identity_of(spec), Store.from_uri("file:///u"))
    assert scorer == "code_stdio" and [e.id for e in examples] == ["train-0", "train-2"]
    assert examples[0].reference == stdio_reference([{"input": "1 2\n", "output": "3\n"}])
    assert examples[1].reference == stdio_reference(
        [{"input": "4\n", "output": "8\n"}, {"input": "5\n6\n", "output": "11"}]
    )
    err = capsys.readouterr().err
    assert "2 used (2 left out by reference_format: 1 function-call tests (fn_name), 1 no tests)" in err
    assert set(REFERENCE_FORMATS) == {"text", "stdio_tests"}
    with pytest.raises(ValueError, match="functional tests"):
        stdio_tests_reference([{"input": "[1]", "output": "2", "testtype": "functional"}])


def test_hub_identity_records_what_makes_the_examples(fake_hub: FakeHub) -> None:
    fake_hub.add("dataset", REPO_ID)
    identity = identity_of(hub_data(examples=40, where={"ability": "math"}, shuffle=True, seed=42))
    assert identity == {
        "hub": REPO_ID,
        "revision": commit_of(REPO_ID, "main"),
        "split": "train",
        "files": [FILE],
        "prompt_field": "prompt",
        "prompt_suffix": "",
        "reference_field": "reward_model.ground_truth",
        "reference_format": {"name": "text", "version": 1},
        "id_field": None,
        "where": {"ability": "math"},
        "exclude": {},
        "shuffle_seed": 42,
        "examples": 40,
        "scorer": {"name": "math", "version": identity["scorer"]["version"]},
        "loader": 1,
    }
    data = TrainData.model_validate(hub_data())
    assert (data_source_field(data), data_label(data)) == ("hub", f"{REPO_ID}@main (train)")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"hub": REPO_ID, "path": "x.jsonl", "scorer": "math"},
            "give exactly one of `benchmark`, `path` or `hub`",
        ),
        (
            {"hub": REPO_ID, "scorer": "math"},
            "`hub` data needs `revision`, `prompt_field`, `reference_field`",
        ),
        ({**hub_data(), "scorer": None}, "`hub` data needs `scorer`"),
        ({"path": "x.jsonl", "scorer": "math", "split": "test"}, "`split` apply only to `hub` data"),
        ({**hub_data(), "seed": 42}, "`seed` orders `hub` data only with `shuffle: true`"),
        ({**hub_data(), "exclude": {"data_source": []}}, "`exclude` needs at least one value per field"),
        ({**hub_data(), "files": ["../x.parquet"]}, "`files` are paths inside the dataset repo"),
        ({**hub_data(), "reference_format": "json"}, "reference_format"),
        ({**hub_data(), "hub": "not a repo"}, "hub"),
    ],
)
def test_bad_hub_data_is_one_clear_line(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        TrainData.model_validate(data)
    assert message in str(err.value)


def test_a_spec_with_bad_hub_data_fails_in_one_line_naming_the_run() -> None:
    for data, message in (
        (hub_data(scorer=None), "`hub` data needs `scorer`"),
        (
            {**hub_data(), "path": "x.jsonl"},
            "give exactly one of `benchmark`, `path` or `hub` (given: path, hub)",
        ),
    ):
        with pytest.raises(RptError) as err:
            parse_study(yaml.safe_dump(study_of(data)), "s.yaml")
        assert str(err.value) == f"s.yaml: train[0].data: Value error, {message}"


def test_a_train_job_runs_on_hub_data(
    fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job code path end to end, in process: plan by branch, pretrain the tiny base, train one step."""
    monkeypatch.setenv("RPT_CACHE", str(tmp_path / "cache"))
    fake_hub.add_file(REPO_ID, FILE, parquet(verl_rows(4)), kind="dataset")
    store = f"file://{tmp_path / 'store'}"
    plan = plan_of(hub_data(examples=4), store)
    for job in plan.jobs:
        if job.kind in ("pretrain", "train"):
            assert run_job(plan, job.id) is not None
    assert (tmp_path / "store" / train_job(plan).key / "MANIFEST.json").is_file()
    commit = commit_of(REPO_ID, "main")
    assert {r.path for r in fake_hub.file_requests()} == {f"/datasets/{REPO_ID}/resolve/{commit}/{FILE}"}
