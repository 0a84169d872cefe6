"""Figures of effects with their uncertainty: a per-benchmark forest plot and the seen/unseen summary.

Like `figures.py`, matplotlib is imported inside each function and drawn on an explicit Agg canvas.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from rpt_transfer.analysis.figures import png_bytes
from rpt_transfer.analysis.tables import SEEN, UNSEEN

_SEEN_COLOUR, _UNSEEN_COLOUR = "#1b6ca8", "#d95f02"
_COLUMNS = 3


def forest_plot(effects: pd.DataFrame) -> bytes:
    """One panel per pair: each benchmark's RPT - base delta with its paired 95% interval.

    Seen benchmarks are blue squares, unseen ones orange circles; a filled marker means the paired test
    gives p < 0.05. Panels share the x axis so effect sizes compare across pairs.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    pairs = list(dict.fromkeys(effects["pair"]))
    if not pairs:
        return _placeholder("no pair has a benchmark scored for both models")
    cols = min(_COLUMNS, len(pairs))
    rows = math.ceil(len(pairs) / cols)
    per_panel = max(effects.groupby("pair").size())
    fig = Figure(figsize=(4.6 * cols, 0.6 + rows * max(1.8, 0.9 + 0.24 * per_panel)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    finite = effects[["delta_low", "delta_high", "delta"]].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    limit = max(float(np.abs(finite).max()) if finite.size else 0.0, 0.05) * 1.1
    for ax, pair in zip(axes.flat, pairs, strict=False):
        rows_of = effects[effects["pair"] == pair].sort_values(["seen", "benchmark_domain", "benchmark"])
        y = np.arange(len(rows_of))[::-1]
        for kind, colour, marker in ((SEEN, _SEEN_COLOUR, "s"), (UNSEEN, _UNSEEN_COLOUR, "o")):
            mask = (rows_of["seen"] == kind).to_numpy()
            if not mask.any():
                continue
            part = rows_of[mask]
            significant = (part["p_value"] < 0.05).to_numpy()
            ax.hlines(y[mask], part["delta_low"], part["delta_high"], colors=colour, lw=1.2)
            ax.scatter(part["delta"], y[mask], marker=marker, s=28, edgecolors=colour, label=kind,
                       facecolors=[colour if s else "white" for s in significant], zorder=3)  # fmt: skip
        ax.axvline(0, color="#555555", lw=0.8)
        ax.set_yticks(y, list(rows_of["benchmark"]), fontsize=7)
        ax.set_ylim(-0.7, len(rows_of) - 0.3)
        ax.set_xlim(-limit, limit)
        ax.set_title(pair, fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    for ax in list(axes.flat)[len(pairs) :]:
        ax.set_axis_off()
    fig.legend(*axes.flat[0].get_legend_handles_labels(), fontsize=8, loc="outside lower center", ncols=2)
    fig.suptitle("RPT − base per benchmark, 95% paired bootstrap interval (filled: p < 0.05)", fontsize=10)
    return png_bytes(fig)


def seen_unseen_chart(domains: pd.DataFrame) -> bytes:
    """Per pair (and all pairs): item-weighted delta on seen and on unseen benchmarks, side by side.

    '†' after a bar marks a CMH p < 0.05 for that group.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = domains[domains["group"].isin((SEEN, UNSEEN))]
    pairs = list(dict.fromkeys(rows["pair"]))
    if not pairs:
        return _placeholder("no seen or unseen benchmark to summarise")
    grid = rows.pivot(index="pair", columns="group", values="delta_weighted").reindex(
        index=pairs, columns=[SEEN, UNSEEN]
    )
    p_values = rows.pivot(index="pair", columns="group", values="cmh_p_value").reindex(
        index=pairs, columns=[SEEN, UNSEEN]
    )
    fig = Figure(figsize=(8.0, 1.5 + 0.42 * len(pairs)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    y = np.arange(len(pairs))[::-1]
    height = 0.38
    for offset, kind, colour in ((height / 2, SEEN, _SEEN_COLOUR), (-height / 2, UNSEEN, _UNSEEN_COLOUR)):
        values = grid[kind].to_numpy(dtype=float)
        ax.barh(y + offset, np.nan_to_num(values), height=height, color=colour, label=kind)
        for yi, value, p in zip(y + offset, values, p_values[kind].to_numpy(dtype=float), strict=True):
            if np.isfinite(value):
                mark = "†" if np.isfinite(p) and p < 0.05 else ""
                ax.text(value, yi, f" {value:+.3f}{mark} ", va="center", fontsize=7,
                        ha="left" if value >= 0 else "right")  # fmt: skip
    ax.axvline(0, color="#555555", lw=0.8)
    ax.set_yticks(y, pairs, fontsize=8)
    finite = grid.to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    limit = max(float(np.abs(finite).max()) if finite.size else 0.0, 0.05) * 1.35
    ax.set_xlim(-limit, limit)
    ax.set_xlabel("item-weighted RPT − base accuracy")
    fig.legend(*ax.get_legend_handles_labels(), fontsize=8, loc="outside lower center", ncols=2)
    ax.set_title("Seen versus unseen domains († CMH p < 0.05)", fontsize=10)
    return png_bytes(fig)


def _placeholder(message: str) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=11, transform=ax.transAxes)
    return png_bytes(fig)
