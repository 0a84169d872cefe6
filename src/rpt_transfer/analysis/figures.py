"""Heatmaps of the accuracy and delta tables, rendered to PNG bytes.

matplotlib is imported inside each function, and figures are drawn on an explicit Agg canvas instead of
through pyplot, so `import rpt_transfer` stays light and no global backend state is touched.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap, Normalize
    from matplotlib.figure import Figure

_DPI = 110


def accuracy_heatmap(acc: pd.DataFrame) -> bytes:
    """Models × benchmarks accuracy on a 0..1 scale, each cell annotated, as PNG bytes.

    Benchmarks are grouped by domain so a model's profile across domains reads left to right; a cell
    the model lacks is grey and marked 'n/a'.
    """
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    columns = _benchmark_columns(acc)
    grid = acc.pivot(index="model", columns="benchmark", values="accuracy").reindex(columns=columns)
    fig, ax = _figure(grid.shape)
    if grid.empty:
        return _empty(fig, ax, "no scores")
    cmap = colormaps["viridis"].with_extremes(bad="#dddddd")
    norm = Normalize(vmin=0.0, vmax=1.0)
    image = ax.imshow(grid.to_numpy(dtype=float), cmap=cmap, norm=norm, aspect="auto")
    _annotate(ax, grid, cmap, norm, lambda v: f"{v:.2f}")
    _label_axes(ax, grid, _domain_labels(acc, columns))
    ax.set_title("Accuracy (mean over items of per-item sample mean)")
    fig.colorbar(image, ax=ax, label="accuracy", shrink=0.8)
    return png_bytes(fig)


def delta_heatmap(deltas: pd.DataFrame) -> bytes:
    """Pairs × benchmarks RPT − base accuracy, diverging around 0, seen cells boxed and starred.

    The colour scale is symmetric around zero so equal gains and losses look equally strong; seen
    cells get a bold border, bold text and a '*' so the mark survives grey-scale printing.
    """
    from matplotlib.patches import Rectangle

    columns = _benchmark_columns(deltas)
    pair_order = list(dict.fromkeys(deltas["pair"]))
    grid = deltas.pivot(index="pair", columns="benchmark", values="delta")
    grid = grid.reindex(index=pair_order, columns=columns)
    seen = deltas.pivot(index="pair", columns="benchmark", values="seen")
    seen = seen.reindex(index=pair_order, columns=columns)
    fig, ax = _figure(grid.shape)
    if grid.empty:
        return _empty(fig, ax, "no pair has a benchmark scored for both models")
    image, cmap, norm = _diverging(ax, grid)
    is_seen = seen.eq("seen").to_numpy()
    _annotate(ax, grid, cmap, norm, lambda v: f"{v:+.2f}", bold=is_seen)
    for i, j in zip(*is_seen.nonzero(), strict=True):
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2.5))
    _label_axes(ax, grid, _domain_labels(deltas, columns))
    ax.set_title("RPT − base accuracy (boxed, * = seen domain)")
    fig.colorbar(image, ax=ax, label="delta", shrink=0.8)
    return png_bytes(fig)


def matrix_heatmap(matrix: pd.DataFrame) -> bytes:
    """Trained model (its domain) × evaluated domain: item-pooled delta with significance marks.

    The trained domain's own column is boxed; '†' marks p < 0.05 and '‡' p < 0.01 (paired tests).
    """
    from matplotlib.patches import Rectangle

    labels = matrix.assign(row=matrix["pair"] + " (" + matrix["train_domain"] + ")")
    order = list(dict.fromkeys(labels["row"]))
    columns = sorted(labels["eval_domain"].unique())
    grid = labels.pivot(index="row", columns="eval_domain", values="delta").reindex(
        index=order, columns=columns
    )
    p_values = labels.pivot(index="row", columns="eval_domain", values="p_value").reindex(
        index=order, columns=columns
    )
    fig, ax = _figure(grid.shape)
    if grid.empty:
        return _empty(fig, ax, "no single-domain pair to show")
    image, cmap, norm = _diverging(ax, grid)
    marks = np.vectorize(lambda p: "" if pd.isna(p) else "‡" if p < 0.01 else "†" if p < 0.05 else "")
    _annotate(ax, grid, cmap, norm, lambda v: f"{v:+.2f}", suffix=marks(p_values.to_numpy(dtype=float)))
    trained = dict(zip(labels["row"], labels["train_domain"], strict=False))
    for i, row in enumerate(order):
        if trained[row] in columns:
            j = columns.index(trained[row])
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2.5))
    _label_axes(ax, grid, columns)
    ax.set_title("Transfer: RPT − base by evaluated domain\n(boxed = trained domain; † p<.05, ‡ p<.01)")
    fig.colorbar(image, ax=ax, label="delta", shrink=0.8)
    return png_bytes(fig)


def _diverging(ax: Axes, grid: pd.DataFrame) -> tuple[Any, Colormap, Normalize]:
    """Draw a grid of deltas on a red-blue scale symmetric around zero (gains and losses look alike)."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    values = grid.to_numpy(dtype=float)
    finite = values[~pd.isna(values)]
    limit = max(float(np.abs(finite).max()) if finite.size else 0.0, 0.01)
    cmap = colormaps["RdBu"].with_extremes(bad="#dddddd")
    norm = Normalize(vmin=-limit, vmax=limit)
    return ax.imshow(values, cmap=cmap, norm=norm, aspect="auto"), cmap, norm


def _benchmark_columns(frame: pd.DataFrame) -> list[str]:
    """Benchmarks ordered by domain, then name, so domains form blocks of columns."""
    pairs = frame[["benchmark_domain", "benchmark"]].drop_duplicates()
    return list(pairs.sort_values(["benchmark_domain", "benchmark"])["benchmark"])


def _domain_labels(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    """Column labels that carry the domain, since seen/unseen depends on it."""
    domain = dict(zip(frame["benchmark"], frame["benchmark_domain"], strict=True))
    return [f"{name}\n({domain[name]})" for name in columns]


def _figure(shape: tuple[int, int]) -> tuple[Figure, Axes]:
    """Size the figure to the grid so labels and annotations stay readable as the study grows."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows, cols = shape
    fig = Figure(figsize=(max(6.0, 2.5 + 1.0 * cols), max(3.0, 1.6 + 0.5 * rows)), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _annotate(
    ax: Axes,
    grid: pd.DataFrame,
    cmap: Colormap,
    norm: Normalize,
    fmt: Callable[[float], str],
    bold: np.ndarray | None = None,
    suffix: np.ndarray | None = None,
) -> None:
    """Write each value in its cell, in black or white depending on the cell colour's lightness.

    `bold` cells are bold and starred; `suffix` (strings) is appended to each cell's text.
    """
    values = grid.to_numpy(dtype=float)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            value = values[i, j]
            is_bold = bool(bold[i, j]) if bold is not None else False
            if math.isnan(value):
                ax.text(j, i, "n/a", ha="center", va="center", fontsize=8, color="#555555")
                continue
            red, green, blue, _ = cmap(norm(value))
            light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5
            text = fmt(value) + ("*" if is_bold else "") + (str(suffix[i, j]) if suffix is not None else "")
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=9,
                color="black" if light else "white",
                fontweight="bold" if is_bold else "normal",
            )


def _label_axes(ax: Axes, grid: pd.DataFrame, column_labels: list[str]) -> None:
    """Tick every row and column; slanted column labels keep long benchmark names apart."""
    ax.set_xticks(range(grid.shape[1]), column_labels, rotation=30, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(grid.shape[0]), list(grid.index))
    ax.tick_params(labelsize=9)


def _empty(fig: Figure, ax: Axes, message: str) -> bytes:
    """Draw a placeholder, so the report keeps its shape when there is nothing to plot."""
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=11, transform=ax.transAxes)
    return png_bytes(fig)


def png_bytes(fig: Figure) -> bytes:
    """Encode without the software-version metadata, so identical tables give identical bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()
