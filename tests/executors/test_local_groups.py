"""The local executor runs a model's generate jobs as one process, and still reports every job on its own."""

from pathlib import Path

from conftest import run_cli, tiny_study, write_study
from rpt_transfer.executors import JobState, LocalExecutor
from rpt_transfer.runner import load_and_resolve, prepare


def test_each_model_group_runs_as_one_process(tmp_path: Path) -> None:
    store = tmp_path / "store"
    spec = write_study(tmp_path / "s.yaml", tiny_study(str(store), tracking_uri="none"))
    result = run_cli("run", str(spec), "--workers", "2", env={"RPT_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr[-3000:]
    plan = load_and_resolve(spec, check_store=False).plan()
    generate = [job for job in plan.jobs if job.kind == "generate"]
    assert len(generate) == 8  # 2 models × 2 benchmarks × 2 shards
    logs = sorted((store / "logs" / "mini").glob("generate-*.log"))
    assert [log.name.startswith("generate-group-") for log in logs] == [True, True]  # one process per model
    for log in logs:
        text = log.read_text()
        assert sum(f"job {job.id}: done, 1 objects" in text for job in generate) == 4
    assert sum(line.startswith("done generate ") for line in result.stderr.splitlines()) == 8
    assert all((store / job.key / "MANIFEST.json").is_file() for job in generate)
    assert len(list((store / "logs" / "mini").glob("score-*.log"))) == 4  # other kinds: one job a process


def test_groups_split_only_for_idle_workers(tmp_path: Path) -> None:
    spec = write_study(tmp_path / "s.yaml", tiny_study(str(tmp_path / "store"), tracking_uri="none"))
    loaded = load_and_resolve(spec, check_store=False)
    plan = loaded.plan()

    def generate_units(workers: int) -> list[int]:
        executor = LocalExecutor(loaded.store, workers=workers, log_dir=tmp_path / "logs")
        executor.submit(plan, "unused")
        assert sorted(job.id for unit in executor.units for job in unit) == sorted(
            job.id for job in plan.jobs
        )
        return [len(unit) for unit in executor.units if unit[0].kind == "generate"]

    assert generate_units(1) == generate_units(2) == [4, 4]
    assert generate_units(4) == [2, 2, 2, 2]
    assert generate_units(16) == [1] * 8


def test_a_group_that_fails_fails_each_of_its_jobs_with_the_reason(tmp_path: Path) -> None:
    store = tmp_path / "store"
    study = tiny_study(
        str(store),
        tracking_uri="none",
        models={"base": {"path": "checkpoints/does-not-exist"}, "rpt": {"path": "checkpoints/also-missing"}},
        resources={"shards": 1},
    )
    prepared = prepare(write_study(tmp_path / "s.yaml", study))
    executor = LocalExecutor(prepared.store, workers=2, log_dir=tmp_path / "logs")
    executor.submit(prepared.plan, prepared.uri)
    outcomes = {outcome.job.id: outcome for outcome in executor.wait()}
    generate = [job for job in prepared.plan.jobs if job.kind == "generate"]
    assert len(generate) == 4
    for job in generate:
        outcome = outcomes[job.id]
        assert outcome.state is JobState.FAILED
        assert outcome.message.endswith("no checkpoint there (no MANIFEST.json); accepted: a finished job")
        assert outcome.log is not None and outcome.log.name.startswith("generate-group-")
    assert len({outcomes[job.id].log for job in generate}) == 2
    assert {o.state for o in outcomes.values() if o.job.kind != "generate"} == {JobState.BLOCKED}
