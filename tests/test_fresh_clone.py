"""What a newcomer meets on a fresh clone: tests that need what a clone lacks say so, wherever it lives.

Real-data tests read benchmark files kept outside the repository; without them they must skip with a
reason that names the missing path, the folder looked in and how to provide it. Sandbox tests hand work
to other users (the runs' throwaway uids, `nobody`); a clone inside a private folder (a 0700 home) must
not turn that into "Permission denied" failures.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from conftest import DATA_ENV, REPO, data_reason

REAL_DATA_TESTS = sorted(
    str(path.relative_to(REPO))
    for path in (REPO / "tests").rglob("test_*.py")
    if path.name != Path(__file__).name
    and re.search(r"\b(BENCHMARK_DATA|data_root|benchmark_data|needs_benchmark_data)\b", path.read_text())
)
"""Every test module that reads the real benchmark files (through conftest's names for them)."""
OTHER_SKIPS = re.compile(r"set RPT_POLYGLOT_ALL|no sandbox on this machine")
"""Skip reasons in those modules that do not depend on the data."""
SKIPPED = re.compile(r"^SKIPPED \[(\d+)\] (\S+?:\d+): (.*)$", re.MULTILINE)


def test_every_real_data_test_skips_naming_the_folder_and_how_to_provide_it(tmp_path: Path) -> None:
    absent = tmp_path / "absent"
    report = tmp_path / "report.xml"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'inner'}",
         f"--junitxml={report}", *REAL_DATA_TESTS],
        env={**os.environ, DATA_ENV: str(absent)}, cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    skips = [
        (case.get("classname"), case.get("name"), skipped.get("message", ""))
        for case in ElementTree.parse(report).iter("testcase")
        for skipped in case.iter("skipped")
    ]
    data = [(module, name, reason) for module, name, reason in skips if str(absent) in reason]
    modules = {module.replace(".", "/") + ".py" for module, _, _ in data}
    assert len(REAL_DATA_TESTS) >= 8 and modules == set(REAL_DATA_TESTS)  # each skips for want of data
    for module, name, reason in data:
        missing = re.match(r"real benchmark data not found at (\S+) \(", reason)
        assert missing and reason == data_reason(Path(missing[1]), absent, from_env=True), (module, name)
    unexplained = [skip for skip in skips if str(absent) not in skip[2] and not OTHER_SKIPS.search(skip[2])]
    assert not unexplained


def test_the_reason_says_where_it_looked_and_how_to_provide_the_files(tmp_path: Path) -> None:
    path = tmp_path / "gsm8k" / "test.jsonl"
    for from_env, looked in (
        (True, f"{DATA_ENV}={tmp_path}"),
        (False, f"{DATA_ENV} unset, so the folder beside the repo"),
    ):
        reason = data_reason(path, tmp_path, from_env=from_env)
        assert f"not found at {path} ({looked}" in reason
        assert f"set {DATA_ENV} to a folder" in reason and "shared/data/benchmarks" in reason
        assert "docs/setup.md" in reason and "\n" not in reason


def test_sandbox_tests_pass_in_a_clone_inside_a_private_folder(tmp_path: Path) -> None:
    """The tests that hand host files to other users, run from a copy of the repo in a 0700 folder."""
    if os.geteuid() != 0:
        pytest.skip("only root hands runs to other users (throwaway uids, nobody)")
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    clone = home / "clone"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for part in ("src", "tests"):
        shutil.copytree(REPO / part, clone / part, ignore=ignore)
    shutil.copy(REPO / "pyproject.toml", clone)
    env = {**os.environ, "PYTHONPATH": str(clone / "src")}
    where = subprocess.run(
        [sys.executable, "-c", "import rpt_transfer; print(rpt_transfer.__file__)"],
        env=env, cwd=clone, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert where.stdout.startswith(str(clone))  # the copy is under test, not this tree
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-rs", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'inner'}",
         "tests/scoring/test_sandbox_paths.py", "tests/scoring/test_sandbox.py",
         "-k", "paths or fallback or unprivileged or interpreter"],
        env=env, cwd=clone, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]
    for test in (
        "test_unprivileged_user_namespace_mode",
        "test_fallback_mode_adds_readable_paths_to_landlock",
    ):
        assert re.search(rf"::{test} (PASSED|SKIPPED)", result.stdout), result.stdout[-4000:]
    assert "Permission denied" not in "".join(reason for *_, reason in SKIPPED.findall(result.stdout))
