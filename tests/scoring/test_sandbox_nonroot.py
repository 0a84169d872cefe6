"""The sandbox as a restricted pod runs it: not root, no capabilities, no_new_privs (issue 10 section 5).

The hostile suite and the isolation checks run again in a subprocess under `setpriv` as `nobody`, with
every capability dropped and no_new_privs set, so the launchers take the user-namespace mode. Where this
Python or the clone sits behind a folder other users cannot enter (a 0700 home), that subprocess gets a
private mount namespace in which those folders are opened (a tmpfs with only the needed paths bound
back), so it runs this very interpreter and virtual environment without copying anything.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import REPO, closed_folder

NOBODY = 65534
SETPRIV = [
    "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=-all",
    "--bounding-set=-all", "--no-new-privs",
]  # fmt: skip
STATUS = """
import sys
from rpt_transfer.scoring import sandbox
fields = dict(line.split(':', 1) for line in open('/proc/self/status'))
print('status', fields['Uid'].split()[0], fields['CapEff'].strip(), fields['CapBnd'].strip(), fields['NoNewPrivs'].strip())
print('level', sandbox.isolation())
"""
TESTS = [
    "tests/scoring/test_sandbox_hostile.py",
    "tests/scoring/test_sandbox.py::test_a_minimum_above_this_machine_is_refused_in_one_line",
    "tests/scoring/test_sandbox.py::test_programs_that_end_with_exit_or_quit_exit_as_in_python",
]


def _opening_script(paths: list[Path]) -> list[str]:
    """Shell lines that, in a private mount namespace, open each closed folder above `paths` to everyone.

    A tmpfs (mode 0755) covers the closed folder, and each needed path below it is bound back at its place.
    """
    closed: dict[Path, set[Path]] = {}
    for path in paths:
        folder = closed_folder(path)
        if folder == path:
            pytest.skip(f"{path} itself is closed to other users; nothing to run from as {NOBODY}")
        if folder is not None:
            closed.setdefault(folder, set()).add(path)
    lines = ["set -e", "umask 022"]
    for number, (folder, needed) in enumerate(sorted(closed.items())):
        inner = sorted(needed)
        lines += [f"mkdir -p /tmp/.rpt-open-{number}-{index}" for index in range(len(inner))]
        lines += [
            f"mount --rbind '{path}' /tmp/.rpt-open-{number}-{index}" for index, path in enumerate(inner)
        ]
        lines.append(f"mount -t tmpfs -o mode=0755 tmpfs '{folder}'")
        for index, path in enumerate(inner):
            lines += [f"mkdir -p '{path}'", f"mount --rbind /tmp/.rpt-open-{number}-{index} '{path}'"]
    return lines


def test_the_hostile_suite_passes_as_a_restricted_pod_runs_the_scorer() -> None:
    if os.geteuid() != 0:
        pytest.skip("already not root: the hostile suite itself ran as a restricted pod would run it")
    for tool in ("setpriv", "unshare"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} (util-linux) is not installed")
    needed = [Path(os.path.realpath(path)) for path in (sys.executable, sys.prefix, sys.base_prefix, REPO)]
    needed = [path.parent if path.is_file() else path for path in needed]
    home = Path(tempfile.mkdtemp(prefix="rpt-nobody-"))
    try:
        os.chown(home, NOBODY, NOBODY)
        home.chmod(0o700)
        python = [sys.executable, "-c", STATUS]
        pytest_run = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={home}/t"]
        script = _opening_script(sorted(set(needed)))
        script += [
            f"cd '{REPO}'",
            " ".join([*SETPRIV, *map(_quote, python)]),
            "exec " + " ".join([*SETPRIV, *map(_quote, pytest_run), *TESTS]),
        ]
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "PYTHONDONTWRITEBYTECODE": "1",
            "LANG": "C.UTF-8",
        }
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(script)]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    output = done.stdout + done.stderr
    if "allow user namespaces" in output and "level " not in output:
        pytest.skip(f"unprivileged user namespaces are not available here: {output[-500:]}")
    assert done.returncode == 0, output[-4000:]
    assert f"status {NOBODY} 0000000000000000 0000000000000000 1\n" in output  # no capabilities, no_new_privs
    assert "level userns\n" in output
    summary = output.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, output[-4000:]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
