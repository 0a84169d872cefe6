"""Analysis: tidy tables from scores, pure statistics over them, and report rendering last.

Importing this package does not import matplotlib; the figure functions import it when called.
"""

from rpt_transfer.analysis.figures import accuracy_heatmap, delta_heatmap
from rpt_transfer.analysis.report import ReportResult, write_report
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

__all__ = [
    "SEEN",
    "UNSEEN",
    "PairInfo",
    "ReportResult",
    "accuracy_heatmap",
    "accuracy_table",
    "delta_heatmap",
    "domain_summary",
    "headline_metrics",
    "missing_cells",
    "pair_deltas",
    "quality_warnings",
    "write_report",
]
