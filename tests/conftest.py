"""Shared fixtures: real servers on loopback (moto S3, mlflow) and small study files."""

import os
import shutil
import stat
import subprocess
import sys
import tempfile
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
CLI = [sys.executable, "-m", "rpt_transfer"]
os.environ["HF_HUB_OFFLINE"] = "1"  # planning resolves Hub refs: never the real Hub; tests use servers_hub.py
DATA_ENV = "RPT_BENCHMARK_DATA"  # the same variable the benchmarks read (rpt_transfer.benchmarks.sources)
BENCHMARK_DATA = Path(os.environ.get(DATA_ENV) or REPO.parent / "shared" / "data" / "benchmarks")
"""Real benchmark files, read in place: $RPT_BENCHMARK_DATA, else ../shared/data/benchmarks beside the repo.

They are copies of public benchmark files (about 32 MB), one folder per benchmark (gsm8k/test.jsonl,
polyglot/, ...; each benchmark module's `local_files` names its own), kept outside the repository: in this
project, in its shared/data/benchmarks, whose SOURCES.md gives every file's origin. Tests that need them skip
without them, with `data_reason`; docs/setup.md says how to provide them."""
_DATA_FROM_ENV = bool(os.environ.get(DATA_ENV))  # before any fixture sets it


def data_reason(path: Path, root: Path = BENCHMARK_DATA, from_env: bool = _DATA_FROM_ENV) -> str:
    """Why a real-data test skips: what is missing, which folder was looked in, and how to provide it."""
    looked = f"{DATA_ENV}={root}" if from_env else f"{DATA_ENV} unset, so the folder beside the repo"
    return (
        f"real benchmark data not found at {path} ({looked}): these tests read copies of public benchmark"
        f" files kept outside the repository; set {DATA_ENV} to a folder holding them, one subfolder per"
        " benchmark as in the project's shared/data/benchmarks (see docs/setup.md)"
    )


def benchmark_data(relative: str = "") -> Path:
    """The real-data file or folder `relative` (e.g. "gsm8k/test.jsonl"); skips with `data_reason` if absent."""
    path = BENCHMARK_DATA / relative
    if not path.exists():
        pytest.skip(data_reason(path))
    return path


def needs_benchmark_data(relative: str = "") -> pytest.MarkDecorator:
    """A skipif mark for tests that need the real-data file or folder `relative`."""
    path = BENCHMARK_DATA / relative
    return pytest.mark.skipif(not path.exists(), reason=data_reason(path))


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


def fallback_python() -> str:
    """A Python of this version that the fallback's run uids can read; skips where there is none, or not root."""
    if os.geteuid() != 0:
        pytest.skip("the fallback mode (seccomp, own uid) needs root")
    python = sys.executable
    if closed_folder(Path(os.path.realpath(python))) is None:
        return python
    other = "/usr/bin/python3"  # this Python may live where other users cannot read (a home dir)
    version = subprocess.run(
        [other, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, check=False
    )
    if version.stdout.decode().strip() != str(sys.version_info[:2]):
        pytest.skip(f"the fallback needs a Python other users can read; {python} is not, and {other} differs")
    return other


def fallback_launcher(minimum: str = "landlock", landlock: bool = True) -> "Launcher":
    """A sandbox launcher forced into the fallback mode, with a Python the run's own uid can read.

    The fallback is below the default minimum isolation level, so the launcher accepts `minimum`
    (as RPT_SANDBOX_MIN would); skips where this machine cannot give it (no Landlock for "landlock").
    """
    from rpt_transfer.scoring import sandbox

    try:
        return sandbox.Launcher(
            namespaces=False, python=fallback_python(), minimum=minimum, landlock=landlock
        )
    except sandbox.SandboxError as err:
        if "below the minimum" not in str(err):
            raise  # a fallback that cannot start at all is a failure, not a skip
        pytest.skip(f"fallback mode unavailable: {err}")


@pytest.fixture(scope="module")
def data_root() -> Iterator[Path]:
    """The real benchmark files, with the registry pointed at them for the module; skips when absent."""
    root = benchmark_data()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(DATA_ENV, str(root))
        yield root


def closed_folder(path: Path) -> Path | None:
    """The first folder on the way to `path` that other users may not enter (no o+x), or None."""
    for folder in (*reversed(path.parents), path):
        if not folder.stat().st_mode & stat.S_IXOTH:
            return folder
    return None


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A fresh folder every user may enter and read (0755, in the system temp folder).

    For tests whose other side runs as another user (a sandbox run's throwaway uid, `nobody`) and reads host
    files: a clone under a private folder (a 0700 home, pytest's own tmp_path) is closed to that user, so
    such tests put what it must read here. Skips, naming the folder, where even the temp folder is closed.
    """
    folder = Path(tempfile.mkdtemp(prefix="rpt-open-"))
    try:
        folder.chmod(0o755)
        closed = closed_folder(folder)
        if closed is not None:
            pytest.skip(
                f"{closed} is closed to other users (mode {closed.stat().st_mode & 0o777:o}), so the"
                f" temp folder {folder} is too; set TMPDIR to a folder every user may enter"
            )
        yield folder
    finally:
        shutil.rmtree(folder)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files marked `slow` first, in their order; the rest after, in theirs.

    `make test` hands whole files to two workers (pytest-xdist, `--dist loadfile`) in this order: a
    several-minute file started last would leave one worker idle while the other finishes it.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
