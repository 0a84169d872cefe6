"""What a run may read besides the system: extra `readable` host paths, and a Python that lives under /tmp."""

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import fallback_python
from rpt_transfer.scoring import sandbox
from rpt_transfer.scoring.sandbox import PYTHON

pytestmark = pytest.mark.usefixtures("sandbox_ready")  # skips with the sandbox's reason where it cannot run


def namespaces_only() -> None:
    if not sandbox.run(["/bin/true"], timeout=10).isolation.startswith("netns"):
        pytest.skip("paths behind a closed parent need the namespaces (the fallback keeps host permissions)")


def closed_tool(parent: Path) -> Path:
    """A toolchain-like folder `parent/closed/tool` whose parent only its owner may enter."""
    tool = parent / "closed" / "tool"
    tool.mkdir(parents=True)
    (tool / "f.txt").write_text("tool file\n")
    tool.chmod(0o755)
    (parent / "closed").chmod(0o700)
    return tool


@pytest.fixture
def home_dir() -> Iterator[Path]:
    """A fresh folder in the home directory (under /root, mode 700, like ~/.cargo), outside /tmp."""
    try:
        folder = Path(tempfile.mkdtemp(dir=Path.home()))
    except OSError as err:
        pytest.skip(f"cannot write to the home directory: {err}")
    yield folder
    shutil.rmtree(folder)


@pytest.mark.parametrize("where", ["tmp", "home"])
def test_readable_paths_are_visible_read_only_even_behind_a_closed_parent(
    where: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    namespaces_only()
    tool = closed_tool(tmp_path if where == "tmp" else request.getfixturevalue("home_dir"))
    read = f"print(open({str(tool / 'f.txt')!r}).read(), end='')"
    assert not sandbox.run(["cat", str(tool / "f.txt")], timeout=10).success  # not without asking
    assert not sandbox.run((*PYTHON, "-c", read), timeout=10).success

    result = sandbox.run(["cat", str(tool / "f.txt")], timeout=10, readable=[str(tool)])
    assert result.success and result.stdout == "tool file\n", result.stderr
    write = f"open({str(tool / 'new')!r}, 'w')"
    result = sandbox.run((*PYTHON, "-c", f"{read}\n{write}"), timeout=10, readable=[str(tool)])
    assert result.stdout == "tool file\n" and "Read-only file system" in result.stderr
    assert not (tool / "new").exists()
    parents = sandbox.run(["ls", str(tool.parent.parent)], timeout=10, readable=[str(tool)])
    assert parents.stdout.split() == ["closed"]  # only the path itself, not its neighbours


def test_a_readable_symlink_brings_its_target(tmp_path: Path) -> None:
    namespaces_only()
    tool = closed_tool(tmp_path)
    (tmp_path / "link").symlink_to(tool)
    result = sandbox.run(
        ["cat", str(tmp_path / "link" / "f.txt")], timeout=10, readable=[str(tmp_path / "link")]
    )
    assert result.stdout == "tool file\n", result.stderr


def test_a_readable_path_under_tmp_shows_its_top_folder_in_the_working_directory(tmp_path: Path) -> None:
    tool = closed_tool(tmp_path)
    result = sandbox.run(
        (*PYTHON, "main.py"), files={"main.py": "import os; print(os.listdir('.'))"}, timeout=10,
        readable=[str(tool / "f.txt")],
    )  # fmt: skip
    assert result.success, result.stderr
    tmp = {path.split("/")[2] for path in sandbox._interpreter_paths() if path.startswith("/tmp/")}
    if tmp_path.parts[1] == "tmp":
        tmp.add(tmp_path.parts[2])
    expected = {"main.py"} if result.isolation.startswith("seccomp") else {"main.py", *tmp}
    assert set(eval(result.stdout)) == expected  # /tmp/<top>/...: the only way to mirror it there


def test_a_missing_readable_path_is_named() -> None:
    with pytest.raises(sandbox.SandboxError, match="/no/such/toolchain"):
        sandbox.run(["/bin/true"], timeout=10, readable=["/no/such/toolchain"])


@pytest.mark.parametrize("path", ["relative/dir", "/", "/tmp", "/proc/1", "/dev", "/sys/kernel", "//"])
def test_paths_that_cannot_be_offered_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="readable path"):
        sandbox.run(["/bin/true"], timeout=10, readable=[path])


def test_a_string_is_not_a_list_of_paths() -> None:
    with pytest.raises(ValueError, match="sequence of paths"):
        sandbox.run(["/bin/true"], timeout=10, readable="/usr")


def test_each_set_of_paths_keeps_its_own_launcher_per_thread(tmp_path: Path) -> None:
    tool = closed_tool(tmp_path)
    plain = sandbox._thread_launcher()
    sandbox.run(["/bin/true"], timeout=10, readable=[str(tool)])
    with_tool = sandbox._thread_launcher(frozenset([str(tool)]))
    assert with_tool is not plain and with_tool.readable == {str(tool)}
    sandbox.run(["/bin/true"], timeout=10)
    sandbox.run(["/bin/true"], timeout=10, readable=[str(tool) + "/"])  # the same path, normalised
    assert sandbox._thread_launcher() is plain
    assert sandbox._thread_launcher(frozenset([str(tool)])) is with_tool
    extra = [tmp_path / f"extra{index}" for index in range(sandbox._LAUNCHERS_PER_THREAD)]
    for folder in extra:
        folder.mkdir()
        sandbox.run(["/bin/true"], timeout=10, readable=[str(folder)])
    assert not plain.usable() and not with_tool.usable()  # the least recently used were closed
    assert sandbox.run(["/bin/true"], timeout=10).success


def test_fallback_mode_adds_readable_paths_to_landlock(open_dir: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the fallback mode (seccomp, own uid) needs root")
    shown = open_dir / "shown.txt"  # world-readable on the host, wherever the clone lives (a 0700 home too)
    shown.write_text("host file\n")
    shown.chmod(0o644)
    launchers = []
    try:
        for readable in ((), (str(open_dir),)):
            python = fallback_python()  # this Python may be closed to other users (a home directory)
            launchers.append(sandbox.Launcher(False, python, readable, minimum="landlock"))
        results = [launcher.run(["cat", str(shown)], timeout=10) for launcher in launchers]
    except sandbox.SandboxError as err:
        pytest.skip(f"fallback mode unavailable: {err}")
    finally:
        for launcher in launchers:
            launcher.close()
    if "landlock ABI" not in results[0].isolation:
        pytest.skip("no Landlock here: the fallback cannot hide host files")
    assert not results[0].success and "Permission denied" in results[0].stderr
    assert results[1].stdout == "host file\n", results[1].stderr  # world-readable: Landlock lets it through


# ---------------------------------------------------------------------------------------------------------
# A Python environment under /tmp (a fresh clone there with its .venv): the launcher's root is built
# from what it read before covering /tmp, and each run's private /tmp gets the environment back on top.


@pytest.fixture(scope="module")
def tmp_venv() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="rpt-sandbox-venv-"))  # 0700, under /tmp
    venv = folder / "clone" / ".venv"
    made = subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], capture_output=True, text=True
    )
    if made.returncode != 0:
        shutil.rmtree(folder)
        pytest.skip(f"cannot make a virtual environment: {made.stderr[-300:]}")
    yield venv
    shutil.rmtree(folder)


def test_a_python_environment_under_tmp_runs_warm_and_cold(tmp_venv: Path) -> None:
    """A fresh clone in /tmp with its .venv: the launcher starts, and runs find the environment there."""
    namespaces_only()  # the fallback needs a Python other users can read: a fresh temp dir (0700) is not
    python = str(tmp_venv / "bin" / "python")
    launcher = sandbox.Launcher(python=python)
    try:
        code = "import sys; print(sys.executable, sys.prefix)"
        warm = launcher.run((*PYTHON, "-c", code), timeout=10)  # runs in the launcher's interpreter
        cold = launcher.run([python, "-I", "-c", code], timeout=10)  # starts it from its path
        write = launcher.run([python, "-c", f"open({str(tmp_venv / 'x')!r}, 'w')"], timeout=10)
    finally:
        launcher.close()
    assert warm.success and cold.success, (warm.stderr, cold.stderr)
    assert warm.stdout.split()[0] == python
    assert cold.stdout.split() == [python, str(tmp_venv)]  # with site: the environment is found
    assert "Read-only file system" in write.stderr and not (tmp_venv / "x").exists()
