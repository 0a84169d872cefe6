"""Shared fixtures: real servers on loopback (moto S3, mlflow) and small study files."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

if TYPE_CHECKING:
    from rpt_transfer.scoring.sandbox import Launcher

from servers_mlflow import mlflow_server  # noqa: F401 - fixture
from servers_s3 import s3_server, s3_store_uri  # noqa: F401 - fixtures

REPO = Path(__file__).resolve().parents[1]
BENCHMARK_DATA = Path(os.environ.get("RPT_BENCHMARK_DATA") or REPO.parent / "shared" / "data" / "benchmarks")
"""Real benchmark files, read in place: $RPT_BENCHMARK_DATA, else ../shared/data/benchmarks beside the repo."""
CLI = [sys.executable, "-m", "rpt_transfer"]


def tiny_study(store: str, **changes: object) -> dict:
    """A small observational study with two tiny models, quick enough for end-to-end tests."""
    study = {
        "study": "mini",
        "kind": "observational",
        "store": store,
        "models": {
            "base": {"tiny": {"corpus": {"smoke_arith": 64, "smoke_facts": 64}, "steps": 4, "seed": 0}},
            "rpt": {"tiny": {"init": "base", "corpus": {"smoke_arith": 32}, "steps": 2, "seed": 1}},
        },
        "pairs": [{"name": "p", "rpt": "rpt", "base": "base", "domains": ["math"], "algorithm": "grpo"}],
        "benchmarks": ["smoke"],
        "limit": 4,
        "sampling": {"temperature": 0.8, "max_tokens": 6, "n": 2, "seed": 3},
        "resources": {"shards": 2},
    }
    study.update(changes)
    return study


def write_study(path: Path, study: dict) -> Path:
    """Write a study dict as YAML and return its path."""
    path.write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
    return path


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run `rpt-transfer` in a subprocess, as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=full_env, timeout=timeout, cwd=REPO, check=False
    )


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private checkpoint cache, so tests never share downloaded weights."""
    path = tmp_path / "cache"
    monkeypatch.setenv("RPT_CACHE", str(path))
    return path


@pytest.fixture(scope="session")
def sandbox_ready() -> None:
    """Skip, with the sandbox's own reason, where this machine cannot isolate code (see scoring/sandbox/)."""
    from rpt_transfer.scoring import sandbox

    try:
        sandbox.run(["/bin/true"], timeout=10)
    except sandbox.SandboxError as err:
        pytest.skip(f"no sandbox on this machine: {err}")


def fallback_launcher() -> "Launcher":
    """A sandbox launcher forced into the fallback mode, with a Python the run's own uid can read."""
    from rpt_transfer.scoring import sandbox

    if os.geteuid() != 0:
        pytest.skip("the fallback mode (seccomp, own uid) needs root")
    try:
        return sandbox.Launcher(namespaces=False)
    except sandbox.SandboxError as err:
        other = "/usr/bin/python3"  # this Python may live where other users cannot read (a home dir)
        version = subprocess.run(
            [other, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, check=False
        )
        if version.stdout.decode().strip() != str(sys.version_info[:2]):
            pytest.skip(f"fallback mode unavailable: {err}")
        return sandbox.Launcher(namespaces=False, python=other)


@pytest.fixture(scope="module")
def data_root() -> Iterator[Path]:
    """The real benchmark files, with the registry pointed at them for the module; skips when absent."""
    from rpt_transfer.benchmarks.sources import DATA_ENV

    if not BENCHMARK_DATA.is_dir():
        pytest.skip(
            f"benchmark data not found at {BENCHMARK_DATA} (set {DATA_ENV} to run the real-data tests)"
        )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(DATA_ENV, str(BENCHMARK_DATA))
        yield BENCHMARK_DATA
