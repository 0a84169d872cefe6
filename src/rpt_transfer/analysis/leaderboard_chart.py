"""The leaderboard's chart: each row's gain on trained domains against its gain on other domains.

The paper's question at a glance: points right of x = 0 gained where they were trained, points above
y = 0 gained elsewhere too, and points on the diagonal gained as much elsewhere as where they trained.
Like `figures.py`, matplotlib is imported inside the function and drawn on an explicit Agg canvas.
"""

from __future__ import annotations

from collections.abc import Sequence

from rpt_transfer.analysis.figures import png_bytes
from rpt_transfer.analysis.leaderboard_rows import Row

_COLOUR, _DIAGONAL = "#1b6ca8", "#888888"


def gain_chart(rows: Sequence[Row]) -> bytes:
    """PNG of gain on trained (x) against gain on other domains (y) in points, with 95 % interval bars.

    Rows lacking either gain (no benchmark of that kind evaluated) cannot be placed and are left out;
    the table still lists them.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    placed = [row for row in rows if row.gain_trained is not None and row.gain_other is not None]
    fig = Figure(figsize=(7.5, 6.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.set_xlabel("Gain on trained domains (points)")
    ax.set_ylabel("Gain on other domains (points)")
    ax.set_title("Did the gains transfer? One point per RPT model and setting")
    if not placed:
        ax.text(0.5, 0.5, "no row has gains on both trained and other domains", ha="center", va="center",
                transform=ax.transAxes, color="#555555")  # fmt: skip
        return png_bytes(fig)
    ends: list[float] = []
    for row in placed:
        x, y = 100 * row.gain_trained, 100 * row.gain_other  # type: ignore[operator]
        xerr = _error(x, row.gain_trained_low, row.gain_trained_high)
        yerr = _error(y, row.gain_other_low, row.gain_other_high)
        ax.errorbar([x], [y], xerr=xerr, yerr=yerr, fmt="o", color=_COLOUR, ecolor=_COLOUR, elinewidth=1,
                    capsize=3, markersize=6)  # fmt: skip
        label = row.rpt_model + (f" ({row.setting})" if row.setting else "")
        ax.annotate(label, (x, y), xytext=(6, 6), textcoords="offset points", fontsize=8)
        ends += [abs(x), abs(y)]
        ends += [abs(100 * v) for v in (row.gain_trained_low, row.gain_trained_high) if v is not None]
        ends += [abs(100 * v) for v in (row.gain_other_low, row.gain_other_high) if v is not None]
    limit = max(max(ends), 1.0) * 1.15
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.axhline(0, color="black", lw=0.8)
    ax.axvline(0, color="black", lw=0.8)
    ax.plot([-limit, limit], [-limit, limit], ls="--", color=_DIAGONAL, lw=0.8, label="same gain on both")
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=8)
    return png_bytes(fig)


def _error(centre: float, low: float | None, high: float | None) -> list[list[float]] | None:
    """Asymmetric error bar lengths in points, or None when the report has no interval."""
    if low is None or high is None:
        return None
    return [[max(centre - 100 * low, 0.0)], [max(100 * high - centre, 0.0)]]
