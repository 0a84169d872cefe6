"""The local executor through the real CLI: failures block dependents, are reported, and lose nothing."""

from pathlib import Path

from conftest import run_cli, write_study


def test_failed_job_blocks_its_dependents_and_keeps_the_rest(tmp_path: Path) -> None:
    store = tmp_path / "store"
    study = {
        "study": "broken",
        "kind": "observational",
        "store": str(store),
        "tracking_uri": "none",
        "models": {
            "base": {"path": "checkpoints/does-not-exist"},
            "rpt": {"path": "checkpoints/also-missing"},
        },
        "pairs": [{"name": "p", "rpt": "rpt", "base": "base", "domains": ["math"], "algorithm": "grpo"}],
        "benchmarks": ["smoke_arith"],
        "limit": 2,
    }
    keep = store / "generations" / "unrelated" / "MANIFEST.json"
    keep.parent.mkdir(parents=True)
    keep.write_text("{}")
    result = run_cli(
        "run", str(write_study(tmp_path / "s.yaml", study)), env={"RPT_CACHE": str(tmp_path / "c")}
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout
    assert "FAILED generate base × smoke_arith" in result.stderr
    assert "checkpoints/does-not-exist: no checkpoint there" in result.stderr
    assert "│ generate  │    0 │      0 │      2 │       0 │" in result.stdout
    assert "│ score     │    0 │      0 │      0 │       2 │" in result.stdout
    assert "some jobs failed" in result.stdout
    assert keep.read_text() == "{}"  # nothing already stored is touched
    assert not list(store.glob("scores/*/MANIFEST.json"))
    logs = list((store / "logs" / "broken").glob("generate-*.log"))
    assert len(logs) == 2 and "no checkpoint there" in logs[0].read_text()
