"""Analysis: tidy tables from scores, pure statistics over them, and report rendering last.

Importing this package does not import matplotlib; the figure functions import it when called.
"""

from rpt_transfer.analysis.answer import Answer, answer_for
from rpt_transfer.analysis.cmh import CmhResult, cmh
from rpt_transfer.analysis.comparability import check_pairs
from rpt_transfer.analysis.compare import write_comparison
from rpt_transfer.analysis.domains import domain_effects, grouped_matrix, transferability
from rpt_transfer.analysis.effect_figures import forest_plot, seen_unseen_chart
from rpt_transfer.analysis.figures import accuracy_heatmap, delta_heatmap, matrix_heatmap
from rpt_transfer.analysis.headline import HEADLINE_LABELS, headline_label
from rpt_transfer.analysis.metrics import (
    Interval,
    bootstrap_ci,
    correctness_matrix,
    mean_pass_at_k,
    paired_bootstrap,
    pass_at_1,
    pass_at_k,
    standard_error,
)
from rpt_transfer.analysis.policies import policy_agreement
from rpt_transfer.analysis.report import ReportResult, write_report
from rpt_transfer.analysis.samples import excluded_table
from rpt_transfer.analysis.study import Analysis, Comparisons, analyse
from rpt_transfer.analysis.tables import (
    SEEN,
    UNSEEN,
    PairInfo,
    accuracy_table,
    domain_summary,
    headline_metrics,
    missing_cells,
    pair_deltas,
    quality_warnings,
)
from rpt_transfer.analysis.transfer import benchmark_effects, paired_test, paired_tests, transfer_matrix

__all__ = [
    "HEADLINE_LABELS",
    "SEEN",
    "UNSEEN",
    "Analysis",
    "Answer",
    "CmhResult",
    "Comparisons",
    "Interval",
    "PairInfo",
    "ReportResult",
    "accuracy_heatmap",
    "accuracy_table",
    "analyse",
    "answer_for",
    "benchmark_effects",
    "bootstrap_ci",
    "check_pairs",
    "cmh",
    "correctness_matrix",
    "delta_heatmap",
    "domain_effects",
    "domain_summary",
    "excluded_table",
    "forest_plot",
    "grouped_matrix",
    "headline_label",
    "headline_metrics",
    "matrix_heatmap",
    "mean_pass_at_k",
    "missing_cells",
    "pair_deltas",
    "paired_bootstrap",
    "paired_test",
    "paired_tests",
    "pass_at_1",
    "pass_at_k",
    "policy_agreement",
    "quality_warnings",
    "seen_unseen_chart",
    "standard_error",
    "transfer_matrix",
    "transferability",
    "write_comparison",
    "write_report",
]
