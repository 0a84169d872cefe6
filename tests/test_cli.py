"""Bad input through the real command: one line naming the problem, a non-zero exit, no traceback."""

import json
import socket
from pathlib import Path

import pytest

from conftest import run_cli, tiny_study, write_study
from servers_s3 import AuthS3, s3_auth_server  # noqa: F401 - fixture


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    warnings = [line for line in lines if line.startswith("warning: ")]  # e.g. no MLflow for an S3 store
    lines = [line for line in lines if line not in warnings]
    assert len(lines) == 1, lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_validate_reports_every_problem(tmp_path: Path) -> None:
    study = tiny_study(str(tmp_path / "store"), sampling={"n": 0, "colour": "red"})
    result = run_cli("validate", str(write_study(tmp_path / "s.yaml", study)))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith(f"error: {tmp_path}/s.yaml: sampling.") for line in lines)


def test_validate_ok(tmp_path: Path) -> None:
    result = run_cli("validate", str(write_study(tmp_path / "s.yaml", tiny_study(str(tmp_path / "store")))))
    assert result.returncode == 0, result.stderr
    assert "ok (observational, 2 models, 2 benchmarks" in result.stdout


@pytest.mark.parametrize("command", ["validate", "plan", "run"])
def test_malformed_yaml(tmp_path: Path, command: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("study: smoke\nmodels: [unclosed\n")
    assert_one_line_error(run_cli(command, str(path)), f"{path}: malformed YAML at line")


def test_unknown_benchmark(tmp_path: Path) -> None:
    study = tiny_study(str(tmp_path / "store"), benchmarks=["gsm9k"])
    result = run_cli("run", str(write_study(tmp_path / "s.yaml", study)))
    assert_one_line_error(result, "benchmarks[0]: unknown benchmark 'gsm9k'", "accepted: ")


def test_unreachable_s3_endpoint(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    result = run_cli("run", str(write_study(tmp_path / "s.yaml", tiny_study("s3://bucket/prefix"))), env=env)
    assert_one_line_error(result, endpoint, "AWS_ENDPOINT_URL")


def test_missing_bucket(tmp_path: Path, s3_store_uri: str) -> None:
    study = write_study(
        tmp_path / "s.yaml", tiny_study(s3_store_uri.replace("s3://", "s3://no-such-bucket-"))
    )
    assert_one_line_error(run_cli("validate", str(study)), "no-such-bucket-")


def test_wrong_s3_credentials(tmp_path: Path, s3_auth_server: AuthS3) -> None:  # noqa: F811 - fixture
    env = {
        "AWS_ENDPOINT_URL": s3_auth_server.endpoint,
        "AWS_ACCESS_KEY_ID": s3_auth_server.access_key,
        "AWS_SECRET_ACCESS_KEY": "wrong-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    study = write_study(tmp_path / "s.yaml", tiny_study(f"s3://{s3_auth_server.bucket}/root"))
    assert_one_line_error(run_cli("run", str(study), env=env), s3_auth_server.bucket, "AWS_SECRET_ACCESS_KEY")


def test_unwritable_store_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run_cli("run", str(write_study(tmp_path / "s.yaml", tiny_study(str(blocker / "store")))))
    assert_one_line_error(result, str(blocker / "store"))


def test_unreachable_mlflow(tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{closed_port()}"
    study = tiny_study(str(tmp_path / "store"), tracking_uri=uri)
    result = run_cli("run", str(write_study(tmp_path / "s.yaml", study)))
    assert_one_line_error(result, uri)
    assert not list((tmp_path / "store").glob("*/*/MANIFEST.json"))


def test_job_from_a_plan_of_another_study(tmp_path: Path) -> None:
    store = tmp_path / "store"
    plan_json = run_cli("plan", str(write_study(tmp_path / "s.yaml", tiny_study(str(store)))), "--json")
    assert plan_json.returncode == 0, plan_json.stderr
    payload = json.loads(plan_json.stdout)
    foreign = store / "studies" / "other" / "plan.json"
    foreign.parent.mkdir(parents=True)
    from rpt_transfer.planner import make_plan
    from rpt_transfer.spec import load_study

    foreign.write_text(make_plan(load_study(tmp_path / "s.yaml"), f"file://{store}", None).to_json())
    job = payload["stages"]["pretrain"][0]["id"]
    assert_one_line_error(
        run_cli("job", "run", job, "--plan", str(foreign)), "holds the plan of study 'mini'"
    )
    own = store / "studies" / "mini" / "plan.json"
    own.parent.mkdir(parents=True)
    own.write_text(foreign.read_text())
    assert_one_line_error(run_cli("job", "run", "0000", "--plan", str(own)), "job '0000' is not in the plan")
    assert_one_line_error(
        run_cli("job", "run", job, "--plan", str(tmp_path / "nope.json")), "no such plan file"
    )


def test_job_before_its_dependencies(tmp_path: Path) -> None:
    store = tmp_path / "store"
    study = write_study(tmp_path / "s.yaml", tiny_study(str(store)))
    from rpt_transfer.planner import make_plan
    from rpt_transfer.spec import load_study

    plan = make_plan(load_study(study), f"file://{store}", None)
    path = store / "studies" / "mini" / "plan.json"
    path.parent.mkdir(parents=True)
    path.write_text(plan.to_json())
    generate = next(job for job in plan.jobs if job.kind == "generate")
    assert_one_line_error(run_cli("job", "run", generate.id, "--plan", str(path)), "needs pretrain")


def test_plan_json_kind_filter(tmp_path: Path) -> None:
    study = write_study(tmp_path / "s.yaml", tiny_study(str(tmp_path / "store")))
    items = json.loads(run_cli("plan", str(study), "--json", "--kind", "score").stdout)
    assert len(items) == 4 and all(item["key"].startswith("scores/") for item in items)
    assert_one_line_error(run_cli("plan", str(study), "--json", "--kind", "trian"), "--kind 'trian'")


@pytest.mark.parametrize(
    ("args", "expected"),
    [(("validate",), "Missing argument 'study_file'"), (("plan", "--bogus", "x"), "No such option: --bogus")],
)
def test_usage_errors_are_one_line(args: tuple[str, ...], expected: str) -> None:
    assert_one_line_error(run_cli(*args), expected, "--help")


def test_benchmarks_list() -> None:
    result = run_cli("benchmarks", "list")
    assert result.returncode == 0 and "smoke_arith" in result.stdout and "suite smoke" in result.stdout
