"""`rpt-transfer report`: re-render from a real store (stored plan, committed score parquet), compare
studies, and fail with one line when there is nothing to report. Score rows are made up; nothing is run.
"""

from pathlib import Path

import pandas as pd
import pytest

from conftest import tiny_study, write_study
from rpt_transfer.cli import main
from rpt_transfer.jobs.rows import SCORE_SCHEMA, to_parquet
from rpt_transfer.plan_store import publish_plan
from rpt_transfer.runner import load_and_resolve

ITEMS, SAMPLES = 4, 2


def stored_study(tmp_path: Path, name: str, *, finish: int | None = None, rpt_right: int = 2) -> Path:
    """Write a study's spec, its plan into the store, and committed score jobs (the first `finish`)."""
    spec = write_study(tmp_path / f"{name}.yaml", tiny_study(str(tmp_path / f"{name}-store"), study=name))
    loaded = load_and_resolve(spec, check_store=False)
    plan, store = loaded.plan(), loaded.store
    publish_plan(store, plan)
    scores = [job for job in plan.jobs if job.kind == "score"]
    for job in scores[:finish]:
        model, benchmark = job.context["model"], job.context["benchmark"]
        right = rpt_right if model == "rpt" else 1  # correct samples per item
        rows = [
            {**dict.fromkeys(SCORE_SCHEMA.names), "study": name, "model": model, "benchmark": benchmark,
             "item_id": f"{benchmark}-{i}", "sample_index": s, "finish_reason": "stop", "job": job.id,
             "benchmark_domain": "math" if benchmark == "smoke_arith" else "knowledge", "correct": float(s < right)}
            for i in range(ITEMS)
            for s in range(SAMPLES)
        ]  # fmt: skip
        with store.begin(job.key, job_id=job.id, kind="score", inputs=job.inputs) as writer:
            writer.put_bytes("part-00000.parquet", to_parquet(rows, SCORE_SCHEMA))
            writer.commit()
    return spec


def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.argv", ["rpt-transfer", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_report_rerenders_finished_scores_and_warns_about_the_rest(tmp_path, monkeypatch, capsys) -> None:
    spec = stored_study(tmp_path, "mini", finish=3)  # the last score job never finished
    code, out, err = cli(monkeypatch, capsys, "report", str(spec))
    report = tmp_path / "mini-store" / "reports" / "mini" / "rendered" / "report.html"
    assert code == 0, err
    assert out.strip() == f"report mini: {report}"
    assert "warning: mini: 1 of 4 score jobs are not finished and left out: rpt × smoke_facts" in err
    accuracy = pd.read_csv(report.parent / "accuracy.csv")
    assert accuracy["accuracy"].tolist() == pytest.approx([0.5, 0.5, 1.0])  # base arith/facts, rpt arith
    html = report.read_text()
    assert "1 of 4 score jobs are not finished" in html and "rendered_by" in html
    effects = pd.read_csv(report.parent / "effects.csv")
    assert effects[["benchmark", "delta"]].values.tolist() == [["smoke_arith", 0.5]]


def test_report_compares_studies_side_by_side(tmp_path, monkeypatch, capsys) -> None:
    first = stored_study(tmp_path, "mini")
    second = stored_study(tmp_path, "other", rpt_right=1)
    out_dir = tmp_path / "side"
    code, out, err = cli(monkeypatch, capsys, "report", str(first), str(second), "--out", str(out_dir))
    assert code == 0, err
    assert f"comparison: {out_dir / 'compare.html'}" in out
    assert (out_dir / "mini" / "report.html").is_file() and (out_dir / "other" / "report.html").is_file()
    headline = pd.read_csv(out_dir / "compare_headline.csv").set_index("metric")
    assert headline.loc["mean_delta_seen"].tolist() == pytest.approx([0.5, 0.0])
    html = (out_dir / "compare.html").read_text()
    assert 'href="mini/report.html"' in html and "data:image/png;base64," in html
    assert "<td>mean_delta_seen</td>" not in html  # labels first, the key small beside them
    assert '<tr><td>Gain on trained domains (points, each pair once)<span class="explain">' in html
    assert (
        '<td class="num">+50.0</td><td class="num">+0.0</td><td><code class="key">mean_delta_seen</code>'
        in html
    )
    md = (out_dir / "compare.md").read_text()
    assert (
        "| metric | mini | other | key |\n| --- | ---: | ---: | --- |\n| RPT/base pairs compared | 1 | 1 | `n_pairs` |"
        in md
    )
    assert "| Gain on trained domains (points, each pair once) | +50.0 | +0.0 | `mean_delta_seen` |" in md


def test_nothing_to_report_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys) -> None:
    spec = stored_study(tmp_path, "mini", finish=0)
    code, out, err = cli(monkeypatch, capsys, "report", str(spec))
    assert code == 2 and out == ""
    assert err.strip() == (
        f"error: study 'mini': none of its 4 score jobs is finished in store {(tmp_path / 'mini-store').as_uri()}; "
        "nothing to report (run the study first)"
    )
    fresh = write_study(tmp_path / "fresh.yaml", tiny_study(str(tmp_path / "empty"), study="fresh"))
    code, _, err = cli(monkeypatch, capsys, "report", str(fresh))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "study 'fresh' has no plan in store" in err and "run `rpt-transfer run" in err
