"""Figures as deterministic PNGs: same data, same bytes (no timestamps or version in metadata)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

DPI = 110
#: PNG text chunks matplotlib would otherwise fill with its version.
PNG_METADATA = {"Software": None}


def new_figure(
    width: float = 6.4, height: float = 4.0, layout: str | None = "constrained"
) -> Figure:
    """A figure on the Agg canvas, independent of pyplot's global state. ``layout=None`` keeps
    matplotlib's fixed margins, for single-panel figures drawn once per run (constrained layout
    costs ~0.07 s a figure)."""
    figure = Figure(figsize=(width, height), layout=layout)
    FigureCanvasAgg(figure)
    return figure


def save_png(figure: Figure, path: Path) -> Path:
    """Write ``figure`` to ``path`` with fixed metadata; returns the path."""
    figure.savefig(path, dpi=DPI, format="png", metadata=PNG_METADATA)
    return path


def log_cost_axes(axes, ylabel: str, title: str) -> None:
    """A cost panel's axes: log y with plain tick labels (0.01, not mathtext) and no minor ticks,
    epochs on x, a light grid."""
    axes.set_yscale("log")
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.3g}"))
    axes.yaxis.set_minor_locator(NullLocator())
    axes.set_xlabel("epoch")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(True, alpha=0.3)


def cost_curve(
    epochs: np.ndarray, train_cost: np.ndarray, test_cost: np.ndarray, title: str, path: Path
) -> Path:
    """Train and test cost against epoch on a log scale. Drawn once per run, so kept lean: plain
    tick labels (0.01, 0.02, 0.05: no mathtext), no minor ticks, the legend at a fixed place."""
    figure = new_figure(layout=None)
    figure.subplots_adjust(left=0.13, right=0.97, top=0.92, bottom=0.12)
    axes = figure.add_subplot()
    axes.plot(epochs, train_cost, label="train_cost", color="tab:blue")
    if np.isfinite(test_cost).any():
        axes.plot(epochs, test_cost, label="test_cost", color="tab:orange")
    log_cost_axes(axes, "cost C", title)
    axes.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axes.legend(loc="upper right")
    return save_png(figure, path)


def cost_curves(curves: list[tuple[np.ndarray, np.ndarray]], title: str, path: Path) -> Path:
    """Test cost against epoch of many runs in one panel (log scale): a sweep's children, each
    (epochs, test_cost) a thin line."""
    figure = new_figure(layout=None)
    figure.subplots_adjust(left=0.13, right=0.97, top=0.92, bottom=0.12)
    axes = figure.add_subplot()
    for epochs, test_cost in curves:
        axes.plot(epochs, test_cost, color="tab:orange", alpha=0.4, linewidth=0.8)
    log_cost_axes(axes, "test cost C", title)
    return save_png(figure, path)


def objective_by_key(
    values: list[dict[str, str]], objective: list[float], keys: list[str], path: Path
) -> Path:
    """Final test_cost against each swept key, one panel per key (log x for wide numeric ranges)."""
    figure = new_figure(4.0 * len(keys), 3.6)
    for index, key in enumerate(keys):
        axes = figure.add_subplot(1, len(keys), index + 1)
        column = [row.get(key, "") for row in values]
        numbers = as_numbers(column)
        if numbers is not None:
            numeric = np.array(numbers)
            axes.scatter(numeric, objective, color="tab:orange")
            positive = numeric[numeric > 0]
            if len(positive) == len(numeric) and positive.max() > 10 * positive.min():
                axes.set_xscale("log")
        else:
            labels = sorted(set(column))
            axes.scatter([labels.index(v) for v in column], objective, color="tab:orange")
            axes.set_xticks(range(len(labels)), labels)
        axes.set_xlabel(key)
        axes.set_ylabel("final test_cost")
        axes.set_yscale("log")
        axes.grid(True, which="both", alpha=0.3)
    return save_png(figure, path)


def as_numbers(values: list[str]) -> list[float] | None:
    """Param values as floats, or None when any of them is not a number."""
    try:
        return [float(v) for v in values]
    except ValueError:
        return None
