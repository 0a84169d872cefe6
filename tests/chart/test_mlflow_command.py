"""The chart's MLflow server, run here as the dev profile renders it: its init container's script, then its
`mlflow server` command and environment, against a real moto S3 for the proxied artifacts.

Only what a cluster supplies is swapped: the Secrets' values (test values), the volume paths (temporary
folders), the listening address (127.0.0.1 and a free port) and the S3 endpoint (moto's).
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from chart_render import NAMESPACE, one, profile_objects

from servers_mlflow import _stop, _wait_healthy, free_port
from servers_s3 import REGION, TEST_KEY

SECRETS = {
    ("rpt-transfer-mlflow-auth", "admin-username"): "admin",
    ("rpt-transfer-mlflow-auth", "admin-password"): "a-long-test-password-7c1e",
    ("rpt-transfer-mlflow-auth", "flask-secret-key"): "test-flask-secret",
    ("rpt-transfer-credentials", "AWS_ACCESS_KEY_ID"): TEST_KEY,
    ("rpt-transfer-credentials", "AWS_SECRET_ACCESS_KEY"): TEST_KEY,
}
"""The values the cluster's Secrets would give (the test's own)."""


def resolve_env(container: dict[str, Any], paths: dict[str, str]) -> dict[str, str]:
    """The container's environment as the kubelet builds it, Secrets from SECRETS, paths moved to `paths`."""
    env = {}
    for var in container.get("env", []):
        if "valueFrom" in var:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = SECRETS[(ref["name"], ref["key"])]
        else:
            env[var["name"]] = moved(var["value"], paths)
    return env


def moved(text: str, paths: dict[str, str]) -> str:
    """`text` with each mount path (a whole path prefix, longest first) in one pass moved to its folder."""
    mounts = "|".join(re.escape(mount) for mount in sorted(paths, key=len, reverse=True))
    return re.sub(rf"(?<![\w.-])({mounts})(?=/|$)", lambda match: paths[match.group(1)], text)


def deployment() -> dict[str, Any]:
    return one(profile_objects("dev"), "Deployment", "rpt-transfer-mlflow")["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def chart_mlflow(s3_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    spec = deployment()
    root = tmp_path_factory.mktemp("chart-mlflow")
    paths = {
        mount["mountPath"]: str(root / mount["name"])
        for c in spec["initContainers"] + spec["containers"]
        for mount in c.get("volumeMounts", [])
    }
    for folder in paths.values():
        Path(folder).mkdir(exist_ok=True)
    base = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    init = spec["initContainers"][0]
    subprocess.run(
        [
            sys.executable if init["command"][0] == "python" else init["command"][0],
            *init["command"][1:],
            *init["args"],
        ],
        env={**base, **resolve_env(init, paths)},
        check=True,
    )
    boto3.client("s3", endpoint_url=s3_server, region_name=REGION, aws_access_key_id=TEST_KEY,
                 aws_secret_access_key=TEST_KEY).create_bucket(Bucket="rpt-transfer")  # fmt: skip
    main = spec["containers"][0]
    port = free_port()
    args = [
        a.replace("--host=0.0.0.0", "--host=127.0.0.1").replace("--port=5000", f"--port={port}")
        for a in main["args"]
    ]
    env = {**base, **resolve_env(main, paths), "MLFLOW_S3_ENDPOINT_URL": s3_server}
    url = f"http://127.0.0.1:{port}"
    log = root / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / main["command"][0]), *main["command"][1:], *args],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        _wait_healthy(url, process, log)
        yield {"url": url, "port": str(port), "s3": s3_server, "root": str(root)}
    finally:
        _stop(process)


def get(url: str, host: str | None = None, login: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(url)
    if host:
        request.add_header("Host", host)
    if login:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(login).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


ADMIN = (
    SECRETS[("rpt-transfer-mlflow-auth", "admin-username")],
    SECRETS[("rpt-transfer-mlflow-auth", "admin-password")],
)
SEARCH = "/api/2.0/mlflow/experiments/search?max_results=1"


def test_the_server_asks_for_the_admin_login_from_the_secret(chart_mlflow: dict[str, str]) -> None:
    assert get(chart_mlflow["url"] + SEARCH) == 401
    assert get(chart_mlflow["url"] + SEARCH, login=("admin", "wrong")) == 401
    assert get(chart_mlflow["url"] + SEARCH, login=ADMIN) == 200


def test_the_server_answers_its_service_names_and_refuses_other_hosts(chart_mlflow: dict[str, str]) -> None:
    for host in ("rpt-transfer-mlflow:5000", f"rpt-transfer-mlflow.{NAMESPACE}.svc:5000", "127.0.0.1:5000"):
        assert get(chart_mlflow["url"] + SEARCH, host=host, login=ADMIN) == 200, host
    assert get(chart_mlflow["url"] + SEARCH, host="attacker.example:5000", login=ADMIN) in (400, 403)


def test_artifacts_go_through_mlflow_to_the_store_bucket(chart_mlflow: dict[str, str]) -> None:
    """A client with only MLflow's address and login logs an artifact; it lands in S3 under the destination."""
    script = (
        "import mlflow\n"
        "mlflow.set_experiment('chart-check')\n"
        "with mlflow.start_run() as run:\n"
        "    mlflow.log_text('hello from a pod', 'note.txt')\n"
        "print(run.info.artifact_uri)\n"
    )
    env = {
        "PATH": os.environ["PATH"],
        "MLFLOW_TRACKING_URI": chart_mlflow["url"],
        "MLFLOW_TRACKING_USERNAME": ADMIN[0],
        "MLFLOW_TRACKING_PASSWORD": ADMIN[1],
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "AWS_EC2_METADATA_DISABLED": "true",
    }  # no AWS credentials or endpoint: the client reaches S3 only through MLflow
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1].startswith("mlflow-artifacts:/")
    s3 = boto3.client("s3", endpoint_url=chart_mlflow["s3"], region_name=REGION, aws_access_key_id=TEST_KEY,
                      aws_secret_access_key=TEST_KEY)  # fmt: skip
    keys = [
        o["Key"] for o in s3.list_objects_v2(Bucket="rpt-transfer", Prefix="mlflow-artifacts/")["Contents"]
    ]
    assert any(key.endswith("/artifacts/note.txt") for key in keys), keys


def test_the_auth_database_uri_survives_the_ini_file(tmp_path: Path) -> None:
    """A URI with a percent-encoded password reaches MLflow's auth app unchanged (ConfigParser reads '%%')."""
    init = deployment()["initContainers"][0]
    uri = "postgresql://mlflow:p%40ss%25word@db.example:5432/mlflow_auth"
    ini = tmp_path / "basic_auth.ini"
    env = {"AUTH_DATABASE_URI": uri, "DEFAULT_PERMISSION": "READ", "MLFLOW_AUTH_CONFIG_PATH": str(ini)}
    subprocess.run([sys.executable, "-c", init["args"][0]], env={**os.environ, **env}, check=True)
    read = subprocess.run(
        [sys.executable, "-c", "import json; from mlflow.server.auth.config import read_auth_config as r; "
         "c = r(); print(json.dumps([c.database_uri, c.default_permission]))"],
        env={**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(ini)}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(read.stdout) == [uri, "READ"]
