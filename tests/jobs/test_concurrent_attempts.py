"""Two attempts of one job at once (an Argo retry while the first pod still runs): both end well, one commits.

Real `rpt-transfer job run` subprocesses on one pre-training job of a tiny model; the loser of the commit
race must say the job is done (exit 0), not fail the pod with a conflict.
"""

import subprocess
from pathlib import Path

from conftest import CLI, run_cli, tiny_study, write_study
from rpt_transfer.runner import read_plan
from rpt_transfer.store import Store
from store_checks import check_store


def test_two_attempts_of_one_job_both_exit_zero_and_one_commits(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    spec = write_study(tmp_path / "s.yaml", tiny_study(str(store_dir), tracking_uri="none"))
    prepared = run_cli("prepare", str(spec))
    assert prepared.returncode == 0, prepared.stderr
    plan_uri = prepared.stdout.strip()
    plan = read_plan(plan_uri)
    job = next(j for j in plan.jobs if j.kind == "pretrain" and not j.deps)
    argv = [*CLI, "job", "run", job.id, "--plan", plan_uri]
    attempts = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in attempts]
    for code, stderr in results:
        assert code == 0, stderr
    said = " | ".join(stderr.strip().splitlines()[-1] for _, stderr in results)
    assert "done" in said
    store = Store.from_uri(str(store_dir))
    assert store.is_done(job.key)
    assert check_store(store) >= 1
