"""CPU sizing: cgroup v1/v2 bandwidth limits from files written under tmp_path, affinity, RPT_CPUS, pools."""

import os
from pathlib import Path

import pytest

from rpt_transfer import cpus
from rpt_transfer.cpus import CPUS_ENV, available_cpus, cgroup_cpu_limit
from rpt_transfer.errors import RptError

AFFINITY = cpus.affinity_cpus()


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")


def machine(tmp_path: Path, proc: str, files: dict[str, str]) -> tuple[Path, Path]:
    """A cgroup root and a /proc/self/cgroup file, as the kernel would show them."""
    root = tmp_path / "cgroup"
    root.mkdir()
    write(root, files)
    (tmp_path / "proc-cgroup").write_text(proc)
    return root, tmp_path / "proc-cgroup"


CASES = {
    "v2 fractional limit": ("0::/kubepods/pod1/ctr\n", {"kubepods/pod1/ctr/cpu.max": "150000 100000"}, 1.5),
    "v2 no limit": ("0::/kubepods/pod1/ctr\n", {"kubepods/pod1/ctr/cpu.max": "max 100000"}, None),
    "v2 ancestor binds": (
        "0::/kubepods/pod1/ctr\n",
        {"kubepods/pod1/ctr/cpu.max": "400000 100000", "kubepods/pod1/cpu.max": "250000 100000"},
        2.5,
    ),
    "v2 namespaced root": ("0::/\n", {"cpu.max": "300000 100000"}, 3.0),
    "v2 host path not under the mount": (
        "0::/system.slice/docker-abc.scope\n",
        {"cpu.max": "200000 50000"},
        4.0,
    ),
    "v2 garbage": ("0::/\n", {"cpu.max": "lots"}, None),
    "v2 no files": ("0::/a/b\n", {}, None),
    "v1 cpu,cpuacct": (
        "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n",
        {
            "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "300000",
            "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000",
        },
        3.0,
    ),
    "v1 unlimited": (
        "4:cpu,cpuacct:/\n",
        {"cpu,cpuacct/cpu.cfs_quota_us": "-1", "cpu,cpuacct/cpu.cfs_period_us": "100000"},
        None,
    ),
    "v1 separate cpu mount, hybrid with v2": (
        "2:cpuacct:/\n1:cpu:/job\n0::/\n",
        {
            "cpu/job/cpu.cfs_quota_us": "50000",
            "cpu/job/cpu.cfs_period_us": "100000",
            "unified/cpu.max": "1 1",
        },
        0.5,
    ),
    "v1 container sees its own cgroup at the mount": (
        "4:cpu,cpuacct:/kubepods/burstable/pod9/abc\n",
        {"cpu,cpuacct/cpu.cfs_quota_us": "150000", "cpu,cpuacct/cpu.cfs_period_us": "100000"},
        1.5,
    ),
    "v1 controller not mounted": ("4:cpu,cpuacct:/x\n", {}, None),
    "neither": ("", {}, None),
}


@pytest.mark.parametrize("case", CASES)
def test_cgroup_limit(tmp_path: Path, case: str) -> None:
    proc, files, expected = CASES[case]
    assert cgroup_cpu_limit(*machine(tmp_path, proc, files)) == expected


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        ("150000 100000", 1),
        ("50000 100000", 1),
        ("1000 100000", 1),
        ("200000 100000", 2),
        ("290000 100000", 2),
    ],
)
def test_fractional_limits_round_down_never_below_one(tmp_path: Path, limit: str, expected: int) -> None:
    root, proc = machine(tmp_path, "0::/\n", {"cpu.max": limit})
    assert available_cpus(environ={}, cgroup_root=root, proc_cgroup=proc) == min(expected, AFFINITY)


def test_limit_is_intersected_with_affinity(tmp_path: Path) -> None:
    root, proc = machine(tmp_path, "0::/\n", {"cpu.max": "12800000 100000"})  # 128 CPUs
    assert available_cpus(environ={}, cgroup_root=root, proc_cgroup=proc) == AFFINITY
    assert len(os.sched_getaffinity(0)) == AFFINITY


def test_missing_proc_file_means_affinity(tmp_path: Path) -> None:
    assert available_cpus(environ={}, cgroup_root=tmp_path, proc_cgroup=tmp_path / "absent") == AFFINITY


def test_override_wins_over_cgroup(tmp_path: Path) -> None:
    root, proc = machine(tmp_path, "0::/\n", {"cpu.max": "100000 100000"})
    assert available_cpus(environ={CPUS_ENV: " 7 "}, cgroup_root=root, proc_cgroup=proc) == 7


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_bad_override_is_one_line_naming_the_variable(value: str) -> None:
    with pytest.raises(RptError) as err:
        available_cpus(environ={CPUS_ENV: value})
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"RPT_CPUS={value!r}") and "whole number" in message


def test_this_machine() -> None:
    assert 1 <= available_cpus(environ={}) <= (os.cpu_count() or 1)


# ---- every pool sizes itself from `available_cpus` --------------------------------------------------------


def test_sandbox_pool_is_two_workers_per_available_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from rpt_transfer.scoring import sandbox

    monkeypatch.setenv(CPUS_ENV, "3")
    with sandbox.SandboxPool() as pool:
        assert pool.workers == 6


def test_math_workers_follow_available_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    from rpt_transfer.scoring import math

    monkeypatch.setenv(CPUS_ENV, "3")
    pool = math.new_pool()
    try:
        assert pool.size == min(3, math.MAX_WORKERS)
    finally:
        pool.close()


def test_local_executor_shares_available_cpus_among_its_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rpt_transfer.executors.local import LocalExecutor
    from rpt_transfer.store import Store

    monkeypatch.setenv(CPUS_ENV, "9")
    executor = LocalExecutor(Store.from_uri(f"file://{tmp_path}"), workers=2, log_dir=tmp_path)
    env = executor._child_env()
    assert (env["OMP_NUM_THREADS"], env["MKL_NUM_THREADS"], env[CPUS_ENV]) == ("4", "4", "4")
