"""The written report: every file present, HTML self-contained, hand-computed numbers shown."""

import base64
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from test_policies import PAIR, format_only_gain
from test_tables import PAIRS, study_scores

from rpt_transfer.analysis import accuracy_heatmap, delta_heatmap, write_report
from rpt_transfer.analysis.answer import answer_for
from rpt_transfer.analysis.headline import headline_label

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PROVENANCE = {
    "spec_hash": "abc123def456",
    "jobs": ["score-0001", "score-0002"],
    "sampling": {"temperature": 0.6, "max_tokens": 4096},
    "versions": {"rpt_transfer": "0.1.0"},
}
TABLES = (
    "accuracy",
    "deltas",
    "summary",
    "paired_tests",
    "effects",
    "domains",
    "transferability",
    "transfer",
    "transfer_by_algorithm",
    "transfer_by_backbone",
    "deltas_flexible",
    "summary_flexible",
    "paired_tests_flexible",
    "effects_flexible",
    "domains_flexible",
    "transferability_flexible",
    "transfer_flexible",
    "policy_agreement",
    "excluded",
)
FIGURES = (
    "forest_plot.png",
    "seen_unseen.png",
    "transfer_matrix.png",
    "transfer_matrix_flexible.png",
    "delta_heatmap.png",
    "accuracy_heatmap.png",
)
EXPECTED_FILES = {
    "report.md",
    "report.html",
    *FIGURES,
    *(f"{stem}.{ext}" for stem in TABLES for ext in ("csv", "parquet")),
}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("report") / "reports" / "demo"
    result = write_report(
        study="demo", scores=study_scores(), pairs=PAIRS, provenance=PROVENANCE, out_dir=out_dir
    )
    return out_dir, result


def test_all_files_are_written_and_listed(report):
    out_dir, result = report
    assert {path.name for path in result.files} == EXPECTED_FILES
    assert {path.name for path in out_dir.iterdir()} == EXPECTED_FILES
    for path in result.files:
        assert path.stat().st_size > 0, path
    deltas = pd.read_parquet(out_dir / "deltas.parquet")
    assert deltas["delta"].tolist() == pytest.approx([1 / 3, 1 / 6, -1 / 3])
    assert pd.read_csv(out_dir / "accuracy.csv")["accuracy"].tolist() == pytest.approx(
        [0.5, 0.0, 5 / 6, 1 / 6, 1 / 6]
    )


def test_metrics_and_warnings(report):
    _, result = report
    assert result.metrics["mean_delta_seen"] == pytest.approx(1 / 3)
    assert result.metrics["mean_delta_unseen"] == pytest.approx(-1 / 12)
    assert result.metrics["delta_unseen/rpt2-code"] == pytest.approx(-1 / 3)
    assert result.metrics["n_warnings"] == 3
    assert all(re.fullmatch(r"[A-Za-z0-9_./-]+", key) for key in result.metrics)
    assert len(result.warnings) == 3  # rpt2 lacks mbpp; rpt truncated on gsm; rpt errored on mbpp


def test_html_is_self_contained_with_one_valid_png_per_figure(report):
    out_dir, _ = report
    html = (out_dir / "report.html").read_text()
    assert "http" not in html
    assert not re.search(r"<(script|link)\b", html)
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", html)
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == len(FIGURES)
    for encoded in images:
        png = base64.b64decode(encoded, validate=True)
        assert png.startswith(PNG_MAGIC)
        assert len(png) > 5_000


def test_html_shows_the_numbers_and_sections(report):
    out_dir, _ = report
    html = (out_dir / "report.html").read_text()
    assert "<h1>RPT transfer report: demo</h1>" in html
    for text in ("0.833", "0.167", "+0.333", "-0.333", "+66.7%", "n/a", "-0.083"):
        assert text in html, text
    assert '<tr class="seen">' in html
    assert "<dt>sampling.temperature</dt><dd>0.6</dd>" in html
    assert "<dt>jobs</dt><dd>[&#34;score-0001&#34;, &#34;score-0002&#34;]</dd>" in html
    assert "no scores on &#39;mbpp&#39; for RPT model &#39;rpt2&#39;" in html


def test_markdown_has_tables_links_and_provenance(report):
    out_dir, _ = report
    md = (out_dir / "report.md").read_text()
    assert md.startswith("# RPT transfer report: demo\n")
    assert (
        "| pair | rpt_model | base_model | benchmark | benchmark_domain | seen "
        "| base_accuracy | rpt_accuracy | delta | relative_delta |\n"
        "| --- | --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: |\n"
        "| rpt-math | rpt | base | gsm | math | seen | 0.500 | 0.833 | +0.333 | +66.7% |\n"
        "| rpt-math | rpt | base | mbpp | code | unseen | 0.000 | 0.167 | +0.167 | n/a |\n"
        "| rpt2-code | rpt2 | base | gsm | math | unseen | 0.500 | 0.167 | -0.333 | -66.7% |\n"
    ) in md
    assert "| rpt | gsm | math | 3 | 6 | 0.833 | 16.7% | 0.0% | 0.0% |" in md
    assert "| rpt-math | seen | 1 | +0.333 | 0.500 | 0.833 |" in md
    assert "![Accuracy heatmap](accuracy_heatmap.png)" in md
    assert "(delta_heatmap.png)" in md
    assert "| sampling.max_tokens | 4096 |" in md
    assert "- model 'rpt' on 'gsm': 16.7% of samples truncated" in md


def test_html_escapes_names(tmp_path):
    scores = study_scores().assign(study="<b>x</b>")
    write_report(study="<b>x</b>", scores=scores, pairs=PAIRS, provenance={}, out_dir=tmp_path)
    html = (tmp_path / "report.html").read_text()
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html


def test_report_without_pairs_still_renders(tmp_path):
    result = write_report(study="demo", scores=study_scores(), pairs=[], provenance={}, out_dir=tmp_path)
    assert "mean_delta_seen" not in result.metrics
    assert (tmp_path / "delta_heatmap.png").read_bytes().startswith(PNG_MAGIC)
    md = (tmp_path / "report.md").read_text()
    assert "_No rows._" in md
    assert md.startswith("# RPT transfer report: demo\n\n**No RPT model was compared with its base")


def test_scores_of_another_study_are_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"also hold rows of \['demo'\]"):
        write_report(study="other", scores=study_scores(), pairs=PAIRS, provenance={}, out_dir=tmp_path)


def test_heatmaps_handle_missing_cells_and_no_data():
    acc = pd.DataFrame(
        {
            "model": ["a", "b"],
            "benchmark": ["x", "y"],
            "benchmark_domain": ["math", "code"],
            "accuracy": [0.25, 0.75],
        }
    )
    assert accuracy_heatmap(acc).startswith(PNG_MAGIC)  # a × y and b × x are missing
    empty = pd.DataFrame(columns=["pair", "benchmark", "benchmark_domain", "delta", "seen"])
    assert delta_heatmap(empty).startswith(PNG_MAGIC)


def test_importing_analysis_does_not_import_matplotlib():
    code = "import sys, rpt_transfer.analysis; sys.exit('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], check=False, cwd=Path(__file__).parent)
    assert result.returncode == 0


def test_interventional_report_adds_matrices_per_algorithm_and_backbone(tmp_path):
    result = write_report(
        study="demo",
        scores=study_scores(),
        pairs=PAIRS,
        provenance={},
        out_dir=tmp_path,
        kind="interventional",
    )
    names = {path.name for path in result.files}
    assert {"transfer_by_algorithm.png", "transfer_by_backbone.png"} <= names
    html = (tmp_path / "report.html").read_text()
    assert "<h3>Per algorithm</h3>" in html and "<h3>Per backbone</h3>" in html
    opening = html.split("<body>", 1)[1].split("<h2>", 1)[0]  # interventional studies get the answer too
    assert 'id="answer">The RPT models showed no clear gain' in opening
    assert "Study kind: interventional." in opening
    assert len(re.findall(r'src="data:image/png;base64,', html)) == len(FIGURES) + 2
    by_algorithm = pd.read_csv(tmp_path / "transfer_by_algorithm.csv")
    assert sorted(by_algorithm["value"].unique()) == ["grpo", "ppo"]


def test_different_sampling_is_never_compared_and_is_said_plainly(tmp_path):
    settings = {
        ("base", "gsm"): {"sampling.temperature": 0.6},
        ("rpt", "gsm"): {"sampling.temperature": 1.0},
        ("rpt2", "gsm"): {"sampling.temperature": 0.6},
    }
    result = write_report(
        study="demo", scores=study_scores(), pairs=PAIRS, provenance={}, out_dir=tmp_path, settings=settings
    )
    assert result.warnings[1] == (
        "pair 'rpt-math' on 'gsm': base and RPT evaluated with different settings "
        "(sampling.temperature: base 0.6 vs RPT 1.0); not compared"
    )
    for stem in ("deltas", "effects", "paired_tests"):
        frame = pd.read_csv(tmp_path / f"{stem}.csv")
        column = "group" if stem == "paired_tests" else "benchmark"
        compared = set(frame.loc[frame["pair"] == "rpt-math", column])
        assert "gsm" not in compared and "domain:math" not in compared, stem
    assert result.metrics["n_excluded_cells"] == 1
    assert "delta/rpt-math/gsm" not in result.metrics
    assert "not compared" in (tmp_path / "report.html").read_text()


def test_extra_warnings_come_first(tmp_path):
    result = write_report(
        study="demo", scores=study_scores(), pairs=PAIRS, provenance={}, out_dir=tmp_path,
        extra_warnings=["2 of 6 score jobs are not finished"],
    )  # fmt: skip
    assert result.warnings[0] == "2 of 6 score jobs are not finished"
    assert result.metrics["n_warnings"] == 4


def test_both_reports_open_with_the_answer_before_anything_else(report):
    out_dir, _ = report
    answer = answer_for(pd.read_parquet(out_dir / "domains.parquet"))
    assert answer.verdict == "no_trained_gain"  # +33.3 points on trained domains, but CMH p = 0.24
    html = (out_dir / "report.html").read_text()
    body = html.split("<body>", 1)[1]
    assert body.index(f'<p class="answer" id="answer">{answer.sentence}</p>') < body.index("<table")
    assert body.index("<h1>") < body.index('id="answer"') < body.index("<h2>")  # right under the title
    assert f'<p class="evidence">{answer.evidence}</p>' in html
    md = (out_dir / "report.md").read_text()
    assert md.startswith(f"# RPT transfer report: demo\n\n**{answer.sentence}**\n\n{answer.evidence}\n\n")
    assert md.index(answer.sentence) < md.index("## Warnings") < md.index("| ")


def test_the_answer_quotes_the_domains_table(report):
    out_dir, _ = report
    domains = pd.read_csv(out_dir / "domains.csv")
    pooled = domains[domains["pair"] == "all pairs"].set_index("group")
    md = (out_dir / "report.md").read_text()
    for name, group in (("trained domains", "seen"), ("other domains", "unseen")):
        row = pooled.loc[group]
        text = (f"{name} {row['delta_weighted'] * 100:+.1f} points (95% CI {row['delta_weighted_low'] * 100:+.1f} "
                f"to {row['delta_weighted_high'] * 100:+.1f})")  # fmt: skip
        assert text in md.split("\n")[4], text
    assert "trained domains +33.3 points (95% CI +0.7 to +66.0), CMH odds ratio 5.00, p = 0.24;" in md
    # the domain table shows the interval next to the item-weighted delta
    assert (
        "| all pairs | seen | 1 | 3 | +0.333 | 0.167 | +0.007 | +0.660 | +0.333 | +66.7% | 5.000 | 0.241 |"
        in md
    )


def test_headline_shows_labels_and_keeps_the_key_small(report):
    out_dir, _ = report
    html = (out_dir / "report.html").read_text()
    assert "<td>delta_weighted_seen</td>" not in html and "<td>n_pairs</td>" not in html
    assert (
        '<tr><td>Gain on trained domains (points, item-weighted)<span class="explain">RPT minus base accuracy '
        "over the benchmarks of the domains the RPT data covered, each benchmark weighted by its items.</span>"
        '</td><td class="num">+33.3 (95% CI +0.7 to +66.0)</td><td><code class="key">delta_weighted_seen</code>'
    ) in html
    md = (out_dir / "report.md").read_text()
    assert "| metric | value | what it is | key |" in md
    assert (
        "| Gain on other domains (points, each pair once) | -8.3 | " in md and "| `mean_delta_unseen` |" in md
    )
    assert "| RPT/base pairs compared | 2 | RPT models compared with their base models. | `n_pairs` |" in md
    assert (
        "| Odds ratio on trained domains (CMH), flexible scoring | 5 | Pooled Mantel-Haenszel odds of a correct "
        "sample, RPT over base, on the trained domains' benchmarks; above 1 favours RPT. Scored by the flexible "
        "policy. | `cmh_odds_ratio_seen_flexible` |"
    ) in md


def test_every_metric_the_study_writes_has_a_label(report, tmp_path):
    _, result = report
    policies = write_report(
        study="demo", scores=format_only_gain(), pairs=[PAIR], provenance={}, out_dir=tmp_path
    )
    keys = {*result.metrics, *policies.metrics}
    assert {
        "transfer_flexible/rpt-math/code/delta",
        "format_rate/rpt/arith",
        "delta_unseen/rpt2-code",
    } <= keys
    unlabelled = [key for key in keys if headline_label(key) == (key, "")]
    assert not unlabelled


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("ti/rpt-math", "Transferability Index of rpt-math"),
        ("ti_flexible/rpt-math", "Transferability Index of rpt-math, flexible scoring"),
        ("transfer/p/code/delta", "Gain of p on code (points)"),
        ("delta/p/gsm8k", "Gain of p on gsm8k (points)"),
        ("delta_unseen_flexible/p", "Gain of p on other domains (points, benchmarks once), flexible scoring"),
        ("format_rate/rpt/arith", "Answers in the stated format, rpt on arith"),
        ("transfer/p/code/odds", "transfer/p/code/odds"),  # unknown shape: the key itself
        ("something_flexible", "something_flexible"),
        ("_flexible", "_flexible"),
    ],
)
def test_labels_match_key_shapes(key, label):
    assert headline_label(key)[0] == label


def test_flexible_answer_is_shown_where_it_differs(tmp_path):
    write_report(study="demo", scores=format_only_gain(), pairs=[PAIR], provenance={}, out_dir=tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert md.startswith(
        "# RPT transfer report: demo\n\n**The gains transferred in this study: the RPT model"
    )
    assert "Flexible scoring answers differently: The RPT model showed no clear gain" in md
    same = tmp_path / "same"
    write_report(study="demo", scores=study_scores(), pairs=PAIRS, provenance={}, out_dir=same)
    assert "Flexible scoring answers differently" not in (same / "report.md").read_text()
