"""Several studies side by side: their headline numbers and per-pair seen/unseen deltas in one view.

Each study is analysed on its own (its own pairs, warnings and exclusions); this module only lines up
results that already exist, so a comparison never pools items across studies.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from rpt_transfer.analysis.domains import ALL_PAIRS
from rpt_transfer.analysis.effect_figures import seen_unseen_chart
from rpt_transfer.analysis.headline import headline_text
from rpt_transfer.analysis.report import display_table, template_environment
from rpt_transfer.analysis.study import Analysis
from rpt_transfer.analysis.tables import SEEN, UNSEEN

COMPARED_METRICS = (
    "n_pairs",
    "mean_delta_seen",
    "mean_delta_unseen",
    "delta_weighted_seen",
    "delta_weighted_unseen",
    "cmh_odds_ratio_seen",
    "cmh_p_value_seen",
    "cmh_odds_ratio_unseen",
    "cmh_p_value_unseen",
    "mean_delta_seen_flexible",
    "mean_delta_unseen_flexible",
    "delta_weighted_seen_flexible",
    "delta_weighted_unseen_flexible",
    "n_policy_disagreements",
    "n_excluded_samples",
    "n_excluded_cells",
    "n_warnings",
)
COMPARE_PNG = "compare_seen_unseen.png"


def headline_table(metrics: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """Metric x study; a metric a study lacks (e.g. no unseen benchmark) is NaN."""
    rows = {name: [study.get(name, float("nan")) for study in metrics.values()] for name in COMPARED_METRICS}
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(metrics))
    return frame.rename_axis("metric").reset_index()


def pair_table(analyses: Mapping[str, Analysis]) -> pd.DataFrame:
    """Pair x seen/unseen, one item-weighted delta column per study (pairs of one study leave others NaN)."""
    frames = []
    for study, analysis in analyses.items():
        rows = analysis.domains[analysis.domains["group"].isin((SEEN, UNSEEN))]
        frames.append(rows.set_index(["pair", "group"])["delta_weighted"].rename(study))
    if not frames:
        return pd.DataFrame(columns=["pair", "group"])
    return pd.concat(frames, axis=1).reset_index()


def study_summary(analyses: Mapping[str, Analysis]) -> pd.DataFrame:
    """Each study's pooled seen and unseen rows (all pairs, or its only pair), labelled by study."""
    frames = []
    for study, analysis in analyses.items():
        domains = analysis.domains
        if (domains["pair"] == ALL_PAIRS).any():
            domains = domains[domains["pair"] == ALL_PAIRS]
        frames.append(domains[domains["group"].isin((SEEN, UNSEEN))].assign(pair=study))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["pair", "group"])


def write_comparison(
    analyses: Mapping[str, Analysis],
    metrics: Mapping[str, Mapping[str, float]],
    reports: Mapping[str, str],
    out_dir: Path,
) -> list[Path]:
    """Write compare.md, compare.html (self-contained), the tables and the figure into `out_dir`.

    `reports` maps each study to its own report.html, relative to `out_dir`, for links.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    headline = headline_table(metrics)
    by_pair = pair_table(analyses)
    figure = seen_unseen_chart(study_summary(analyses))
    files = []
    for stem, frame in (("compare_headline", headline), ("compare_pairs", by_pair)):
        files += [out_dir / f"{stem}.csv", out_dir / f"{stem}.parquet"]
        frame.to_csv(files[-2], index=False)
        frame.to_parquet(files[-1], index=False)
    files.append(out_dir / COMPARE_PNG)
    files[-1].write_bytes(figure)
    shown = headline.copy()
    for study in metrics:
        values = zip(shown["metric"], shown[study], strict=True)
        shown[study] = [headline_text(m, v) if pd.notna(v) else "n/a" for m, v in values]
    context = {
        "studies": list(analyses),
        "reports": reports,
        "headline": display_table(shown),
        "pairs": display_table(_signed(by_pair, list(analyses))),
        "figure": COMPARE_PNG,
        "image": base64.b64encode(figure).decode("ascii"),
    }
    for name in ("compare.md", "compare.html"):
        files.append(out_dir / name)
        template = template_environment().get_template(f"{name}.j2")
        files[-1].write_text(template.render(context), encoding="utf-8")
    return files


def _signed(frame: pd.DataFrame, studies: list[str]) -> pd.DataFrame:
    """Study columns as signed three-decimal deltas, 'n/a' where a study lacks the pair."""
    shown = frame.copy()
    for study in studies:
        shown[study] = [f"{v:+.3f}" if pd.notna(v) else "n/a" for v in shown[study]]
    return shown.rename(columns={study: f"{study}: delta_weighted" for study in studies})
