"""`rpt-transfer prepare STUDY-URI`: what a workflow's first pod runs. It reads the spec through the store,
reuses the plan made from the same bytes (no planning in the pod), plans other bytes from a temporary copy
with messages naming the URI, and exits 75 when the store does not answer. Real moto S3 server.
"""

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml

from conftest import run_cli, tiny_study, write_study
from rpt_transfer.hashing import sha256_hex
from rpt_transfer.plan import latest_plan_key
from rpt_transfer.runner import current_plan, read_plan
from rpt_transfer.store import Store
from servers_s3 import REGION, TEST_KEY, free_port, new_bucket_name, s3_server, set_s3_env  # noqa: F401
from test_prepare import path_study

ROWS = "".join(
    json.dumps({"id": f"q{i}", "prompt": f"{i} + 1?", "reference": str(i + 1)}) + "\n" for i in range(4)
)


def trained_study(store: str, data: str) -> dict:
    """A tiny base model and one train job on a local training file: planning reads that file."""
    return {
        "study": "pod", "kind": "interventional", "store": store, "tracking_uri": "none",
        "models": {"base": {"tiny": {"corpus": {"smoke_arith": 8}, "steps": 1, "seed": 0}}}, "base": "base",
        "training": {"learning_rate": 0.001, "steps": 1, "max_new_tokens": 4, "rollouts_per_prompt": 2,
                     "prompts_per_step": 2},
        "train": [{"name": "m", "domain": "math", "data": {"path": data, "scorer": "math"}}],
        "benchmarks": ["smoke_arith"], "limit": 1, "sampling": {"max_tokens": 4, "n": 1},
    }  # fmt: skip


@pytest.fixture(scope="module")
def bucket_store(s3_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:  # noqa: F811
    """A bucket of its own on the session's moto server, with the AWS environment pointing at it."""
    with pytest.MonkeyPatch.context() as patch:
        set_s3_env(patch, s3_server, TEST_KEY, TEST_KEY)
        patch.delenv("RPT_STORE", raising=False)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        bucket = new_bucket_name()
        boto3.client("s3", endpoint_url=s3_server, region_name=REGION).create_bucket(Bucket=bucket)
        yield f"s3://{bucket}/root"


@pytest.fixture(scope="module")
def laptop(bucket_store: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """What `submit` does on a laptop: prepare the spec (its training file is only there) into S3."""
    folder = tmp_path_factory.mktemp("laptop")
    data = folder / "train.jsonl"
    data.write_text(ROWS)
    spec = write_study(folder / "pod.yaml", trained_study(bucket_store, str(data)))
    prepared = run_cli("prepare", str(spec))
    assert prepared.returncode == 0, prepared.stderr
    uri = prepared.stdout.strip()
    data.unlink()  # the pod has no such file: planning there would fail
    return {"uri": uri, "spec_uri": f"{bucket_store}/{read_plan(uri).spec}", "spec": spec}


def plan_keys(store: str, study: str) -> list[str]:
    return Store.from_uri(store).list_keys(f"studies/{study}/plans")


def test_a_spec_uri_reuses_the_plan_made_from_its_bytes(
    laptop: dict, bucket_store: str, tmp_path: Path
) -> None:
    before = plan_keys(bucket_store, "pod")
    outputs = tmp_path / "out"
    result = run_cli("prepare", laptop["spec_uri"], "--outputs", str(outputs), "--score-chunk", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout == laptop["uri"] + "\n"  # the laptop's plan, not planned again
    assert plan_keys(bucket_store, "pod") == before
    assert (outputs / "plan").read_text() == laptop["uri"]
    assert json.loads((outputs / "pretrain.json").read_text()) == ["pretrain"]
    assert json.loads((outputs / "train.json").read_text()) == [{"part": "train/0", "gpus": 0, "nodes": 1}]
    models = json.loads((outputs / "models.json").read_text())
    assert [(m["model"], m["generate"], m["score"]) for m in models] == [
        ("base", "generate/0", ["score/0/0:1"]),
        ("m", "generate/1", ["score/1/0:1"]),
    ]
    assert not [p for p in outputs.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_file_uri_works_as_an_s3_one(tmp_path: Path) -> None:
    store = tmp_path / "store"
    spec = write_study(tmp_path / "s.yaml", path_study(str(store)))
    uri = run_cli("prepare", str(spec)).stdout.strip()
    spec_uri = f"{store.as_uri()}/{read_plan(uri).spec}"
    again = run_cli("prepare", spec_uri, env={"RPT_STORE": "", "MLFLOW_TRACKING_URI": ""})  # "": unset
    assert again.returncode == 0 and again.stdout == uri + "\n", again.stderr
    # in a Workflow's pod a store outside S3 is refused: the pods after prepare would never see the plan
    pod = run_cli("prepare", spec_uri, "--workflow", "wf", env={"RPT_STORE": "", "MLFLOW_TRACKING_URI": ""})
    assert pod.returncode == 2 and pod.stdout == "", pod.stderr
    assert pod.stderr.startswith(f"error: {spec_uri}: store {store.as_uri()} is not on S3;"), pod.stderr
    assert len(pod.stderr.splitlines()) == 1


def test_other_bytes_at_a_uri_are_planned_and_become_the_current_plan(
    bucket_store: str, tmp_path: Path
) -> None:
    bucket, _, root = bucket_store.removeprefix("s3://").partition("/")
    text = yaml.safe_dump(path_study(bucket_store), sort_keys=False)
    s3 = boto3.client("s3")
    s3.put_object(Bucket=bucket, Key="incoming/prep.yaml", Body=text.encode())
    first = run_cli("prepare", f"s3://{bucket}/incoming/prep.yaml")
    assert first.returncode == 0, first.stderr
    changed = text + "# a comment changes the bytes, so the spec key, so the plan\n"
    s3.put_object(Bucket=bucket, Key="incoming/prep.yaml", Body=changed.encode())
    second = run_cli("prepare", f"s3://{bucket}/incoming/prep.yaml")
    assert second.returncode == 0, second.stderr
    assert second.stdout != first.stdout and second.stdout.startswith(f"{bucket_store}/studies/prep/plans/")
    plan = current_plan(Store.from_uri(bucket_store), "prep")
    assert f"{bucket_store}/{plan.key}" == second.stdout.strip()
    assert plan.spec == f"studies/prep/specs/{sha256_hex(changed.encode())[:16]}.yaml"
    assert s3.get_object(Bucket=bucket, Key=f"{root}/{plan.spec}")["Body"].read() == changed.encode()
    stored = s3.get_object(Bucket=bucket, Key=f"{root}/{latest_plan_key('prep')}")["Body"].read()
    assert stored.decode().strip() == plan.key


@pytest.mark.parametrize("problem", ["absent", "malformed", "relative training file", "not a store URI"])
def test_a_bad_spec_uri_is_one_line_naming_the_uri(bucket_store: str, problem: str) -> None:
    bucket = bucket_store.removeprefix("s3://").partition("/")[0]
    uri = f"s3://{bucket}/bad/{problem.replace(' ', '-')}.yaml"
    if problem == "malformed":
        boto3.client("s3").put_object(Bucket=bucket, Key=uri.split("/", 3)[3], Body=b"study: x\nmodels: [\n")
    elif problem == "relative training file":  # resolved against the temporary copy: named as the URI
        body = yaml.safe_dump(trained_study(bucket_store, "train.jsonl"))
        boto3.client("s3").put_object(Bucket=bucket, Key=uri.split("/", 3)[3], Body=body.encode())
    elif problem == "not a store URI":
        uri = "s3://spec.yaml"
    result = run_cli("prepare", uri)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and uri in lines[0], lines
    assert "rpt-spec-" not in result.stderr and result.stdout == ""


def test_a_store_that_does_not_answer_exits_75(laptop: dict) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    result = run_cli("prepare", laptop["spec_uri"], env={"AWS_ENDPOINT_URL": closed, "AWS_MAX_ATTEMPTS": "1"})
    assert result.returncode == 75, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot reach S3 endpoint {closed}"), lines


def test_a_pod_plans_a_study_whose_backend_only_the_gpu_image_has(tmp_path: Path) -> None:
    """The prepare pod runs the runner image: planning a vLLM study there must not ask for vLLM itself."""
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here, so this machine cannot show a planner without it")
    store = tmp_path / "store"
    study = tiny_study(store.as_uri(), tracking_uri="none", resources={"backend": "vllm", "gpus_per_job": 1})
    spec = write_study(tmp_path / "uploaded.yaml", study)
    here = run_cli("prepare", str(spec))  # this machine would run it: refused without vllm installed
    assert here.returncode == 2 and "needs vllm, which is not installed" in here.stderr, here.stderr
    pod = run_cli("prepare", spec.as_uri(), env={"RPT_STORE": "", "MLFLOW_TRACKING_URI": ""})
    assert pod.returncode == 0, pod.stderr
    plan = read_plan(pod.stdout.strip())
    assert {job.inputs["backend"] for job in plan.jobs if job.kind == "generate"} == {"vllm"}
