"""The paper-scale observational study: it validates and plans here, although running it needs GPUs."""

from pathlib import Path

from conftest import REPO, run_cli
from rpt_transfer.benchmarks import expand
from rpt_transfer.plan import make_plan
from rpt_transfer.spec import load_study

STUDY = REPO / "studies" / "paper-observational.yaml"


def test_paper_study_plans_with_the_expected_counts(tmp_path: Path) -> None:
    study = load_study(STUDY)
    assert len(study.pairs) == 18
    benches = expand(study.benchmarks)
    assert len(benches) == 16 and {b.domain for b in benches} == {"math", "code", "knowledge"}
    models = {name for pair in study.pairs for name in (pair.rpt, pair.base)}
    plan = make_plan(study, f"file://{tmp_path}", None)
    counts = plan.counts()
    per_model_prompts = sum(b.size() for b in benches)
    per_model_samples = sum(b.size() * (16 if b.name in ("aime24", "amc23") else 1) for b in benches)
    assert counts["score"] == len(models) * 16
    assert counts["prompts"] == len(models) * per_model_prompts
    assert counts["samples"] == len(models) * per_model_samples
    assert counts["generate"] == len(models) * 16 * 4  # 4 shards each


def test_paper_study_cli(tmp_path: Path) -> None:
    validated = run_cli("validate", str(STUDY), env={"RPT_STORE": str(tmp_path / "store")})
    assert validated.returncode == 0, validated.stderr
    assert "revision 'main' is not a 40-hex commit" in validated.stderr  # the unpinned models are flagged
    planned = run_cli("plan", str(STUDY), env={"RPT_STORE": str(tmp_path / "store")})
    assert planned.returncode == 0, planned.stderr
    assert " jobs, " in planned.stdout and " prompts, " in planned.stdout and " samples" in planned.stdout
