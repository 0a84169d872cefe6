"""Issue 10 §8: the faster aggregate job writes the same report as before, on a small paper-shaped store.

The store comes from benchmarks/report_scale.py (the paper study's first three pairs, 2% of each
benchmark's items, 16 samples on AIME and AMC). The job's report folder is compared byte for byte with
the report of the same rows read the first way (every column, completions included), and its permutation
p-values and bootstrap intervals with the references: scipy's `permutation_test` and the first bootstrap.
"""

import importlib.util
import sys

import numpy as np
import pandas as pd
import pytest
from test_report_scale_stats import first_resampled_means, percentiles, scipy_p_value

from conftest import REPO
from rpt_transfer.analysis import write_report
from rpt_transfer.jobs import run_job
from rpt_transfer.jobs.aggregate import (
    REPORT_METRICS,
    evaluation_settings,
    study_pairs,
    study_provenance,
)
from rpt_transfer.jobs.rows import from_parquet


def report_scale():
    """benchmarks/report_scale.py as a module (benchmarks/ is no package)."""
    if "report_scale" not in sys.modules:
        spec = importlib.util.spec_from_file_location("report_scale", REPO / "benchmarks" / "report_scale.py")
        assert spec is not None and spec.loader is not None
        sys.modules["report_scale"] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules["report_scale"]


def every_column(built) -> pd.DataFrame:
    """The score rows as the aggregate job first read them: every column, one frame per part."""
    frames = []
    for job in (built.plan.job(dep) for dep in built.aggregate.deps):
        for obj in built.store.manifest(job.key).objects:
            frame = from_parquet(built.store.read_object(job.key, obj.name)).to_pandas()
            frames.append(frame.assign(study=built.plan.study, model=job.context["model"]))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("report-scale")
    built = report_scale().build_store(root, scale=0.02, pairs=3, chars=300)
    assert run_job(built.plan, built.aggregate.id) is not None
    job_report = built.store.download(built.aggregate.key, root / "job")
    scores = every_column(built)
    jobs = [built.plan.job(dep) for dep in built.aggregate.deps]
    write_report(
        study=built.plan.study,
        scores=scores,
        pairs=study_pairs(built.aggregate),
        provenance=study_provenance(built.plan, built.aggregate, jobs),
        out_dir=root / "every-column",
        settings=evaluation_settings(built.plan, jobs),
        kind=built.aggregate.context.get("kind", "observational"),
    )
    return built, scores, job_report, root / "every-column"


def test_report_files_are_those_of_every_column(reports) -> None:
    _, scores, job_report, reference = reports
    assert "completion" in scores.columns and len(scores) > 2_000
    names = sorted(path.name for path in reference.iterdir())
    assert {"report.html", "report.md", "paired_tests.csv", "effects.parquet", "forest_plot.png"} <= set(
        names
    )
    for name in names:
        assert (job_report / name).read_bytes() == (reference / name).read_bytes(), name
    assert (job_report / REPORT_METRICS).is_file()


def per_item(scores: pd.DataFrame, model: str) -> pd.DataFrame:
    rows = scores[scores["model"] == model]
    return rows.groupby(["benchmark", "benchmark_domain", "item_id"])["correct"].mean()


def test_p_values_are_scipy_permutation_tests(reports) -> None:
    built, scores, job_report, _ = reports
    tests = pd.read_parquet(job_report / "paired_tests.parquet")
    pairs = {pair.name: pair for pair in study_pairs(built.aggregate)}
    permutation = tests[tests["test"] == "permutation"]
    assert len(permutation) >= 6 and (permutation["n_items"] > 13).any()  # random and exact tests
    for row in permutation.itertuples(index=False):
        pair = pairs[row.pair]
        both = pd.concat(
            [per_item(scores, pair.base_model), per_item(scores, pair.rpt_model)], axis=1
        ).dropna()
        level = "benchmark_domain" if row.group.startswith("domain:") else "benchmark"
        chosen = both[both.index.get_level_values(level) == row.group.removeprefix("domain:")]
        chosen = chosen.sort_index(level=["benchmark", "item_id"])
        base, rpt = chosen.iloc[:, 0].to_numpy(), chosen.iloc[:, 1].to_numpy()
        assert row.p_value == scipy_p_value(base, rpt), (row.pair, row.group)


def test_effect_intervals_are_the_first_bootstrap(reports) -> None:
    built, scores, job_report, _ = reports
    effects = pd.read_parquet(job_report / "effects.parquet")
    pairs = {pair.name: pair for pair in study_pairs(built.aggregate)}
    for row in effects.itertuples(index=False):
        pair = pairs[row.pair]
        base_items, rpt_items = per_item(scores, pair.base_model), per_item(scores, pair.rpt_model)
        both = pd.concat([base_items, rpt_items], axis=1).dropna().xs(row.benchmark, level="benchmark")
        both = both.sort_index(level="item_id")
        boot = first_resampled_means(both.to_numpy(), 2_000, 0)
        assert (row.delta_low, row.delta_high) == percentiles(boot[:, 1] - boot[:, 0]), (
            row.pair,
            row.benchmark,
        )
        if both.iloc[:, 0].mean() > 0:
            ok = boot[:, 0] > 0
            ratio = (boot[ok, 1] - boot[ok, 0]) / boot[ok, 0]
            assert (row.relative_low, row.relative_high) == percentiles(ratio)
    assert np.isfinite(effects["delta_low"]).all()
