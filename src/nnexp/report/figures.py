"""The report's figures as deterministic PNGs (nnexp.plots): cost curves coloured by a swept
key, a heatmap of the final test cost over two keys, final costs against each key, seed bands."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm
from matplotlib.ticker import MaxNLocator

from nnexp import plots
from nnexp.report.groups import SeedGroup, ordered, short, value_order
from nnexp.report.records import SPLITS, Curve, RunRecord

SPLIT_COLOURS = {"train": "tab:blue", "test": "tab:orange"}


def palette(values: list[str]) -> dict[str, tuple]:
    """One viridis colour per value, dark to light in the values' order."""
    colours = colormaps["viridis"](np.linspace(0.0, 0.85, max(len(values), 1)))
    return {value: tuple(colour) for value, colour in zip(values, colours, strict=False)}


def cost_curves(
    records: list[RunRecord], colour_key: str | None, facet_key: str | None, path: Path
) -> Path:
    """Train and test cost against epoch, log scale, one line per run coloured by
    ``colour_key``: side by side, or with ``facet_key`` train above test, one column per value."""
    facets = ordered({r.params.get(facet_key, "") for r in records}) if facet_key else [None]
    colour_of = _colour_key(records, colour_key)
    colours = palette(ordered(set(colour_of.values())))
    if facet_key is None:
        figure = plots.new_figure(10.0, 4.0)
        grid = figure.subplots(1, 2, sharey=True).reshape(2, 1)
    else:
        figure = plots.new_figure(3.4 * len(facets) + 1.2, 6.4)
        grid = figure.subplots(2, len(facets), sharex=True, sharey="row", squeeze=False)
    for column, facet in enumerate(facets):
        shown = [r for r in records if facet is None or r.params.get(facet_key) == facet]
        for row, split in enumerate(SPLITS):
            axes = grid[row][column]
            for record in sorted(shown, key=lambda r: value_order(colour_of[r.run_id])):
                curve = record.curves.get(split)
                if curve is not None and len(curve.steps):
                    label = colour_of[record.run_id]
                    axes.plot(curve.steps, curve.values, color=colours[label], label=label)
            axes.set_yscale("log")
            axes.grid(True, which="both", alpha=0.3)
            axes.set_title(f"{split}_cost" + (f", {facet_key}={facet}" if facet else ""))
            if column == 0 or facet is None:
                axes.set_ylabel("cost C")
            if row == 1 or facet is None:
                epoch_axis(axes)
    _legend(figure, grid[0][0], short(colour_key) if colour_key else "run")
    return plots.save_png(figure, path)


def epoch_axis(axes) -> None:
    """Label the x axis "epoch" with at most five whole-number ticks, so they never collide."""
    axes.set_xlabel("epoch")
    axes.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))


def _colour_key(records: list[RunRecord], key: str | None) -> dict[str, str]:
    """Each run's colour label: its ``key`` value, or its name without a key."""
    return {r.run_id: r.params.get(key, "") if key else r.name for r in records}


def _legend(figure, axes, title: str) -> None:
    """One legend for the figure, right of the panels, from ``axes``' labelled lines."""
    handles, labels = axes.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    if len(unique) > MAX_TICKS:  # a long legend: every n-th entry, first and last kept
        names = list(unique)
        step = math.ceil(len(names) / MAX_TICKS)
        unique = {n: unique[n] for n in [*names[:-1:step], names[-1]]}
    figure.legend(unique.values(), unique.keys(), title=title, loc="outside right upper")


def heatmap(
    records: list[RunRecord], row_key: str, col_key: str, path: Path, facet_key: str | None = None
) -> Path:
    """Final test cost (mean over the runs in each cell) over two swept keys, log colour scale,
    one panel per ``facet_key`` value (other keys averaged over); a cell without a finished value
    reads "—"."""
    rows = ordered({r.params.get(row_key, "") for r in records})
    cols = ordered({r.params.get(col_key, "") for r in records})
    facets = ordered({r.params.get(facet_key, "") for r in records}) if facet_key else [""]
    cells: dict[tuple[str, str, str], list[float]] = {}
    for r in records:
        value = r.final("test")
        if math.isfinite(value):
            where = (r.params.get(facet_key, "") if facet_key else "", *_cell(r, row_key, col_key))
            cells.setdefault(where, []).append(value)
    grids = np.full((len(facets), len(rows), len(cols)), np.nan)
    for (facet, row, col), values in cells.items():
        grids[facets.index(facet), rows.index(row), cols.index(col)] = np.mean(values)
    finite = grids[np.isfinite(grids)]
    spread = len(finite) and 0 < finite.min() < finite.max()
    norm = LogNorm(finite.min(), finite.max()) if spread else None
    across = len(cols) * len(facets)
    cell_width = 1.1 if across <= 12 else max(0.25, 13.0 / across)
    cell_height = 0.7 if len(rows) <= 12 else max(0.15, 8.0 / len(rows))
    width = (cell_width * len(cols) + 1.2) * len(facets) + 1.4
    figure = plots.new_figure(width, cell_height * len(rows) + 1.6 + (0.3 if facet_key else 0))
    written = len(rows) * len(cols) <= MAX_CELL_LABELS
    panels = figure.subplots(1, len(facets), sharey=True, squeeze=False)[0]
    for axes, facet, grid in zip(panels, facets, grids, strict=True):
        image = axes.imshow(np.ma.masked_invalid(grid), cmap="viridis_r", norm=norm, aspect="auto")
        for (i, j), value in np.ndenumerate(grid if written else np.empty((0, 0))):
            text = f"{value:.3g}" if math.isfinite(value) else "—"
            dark = math.isfinite(value) and _luminance(image.cmap(image.norm(value))) < 0.5
            axes.text(j, i, text, ha="center", va="center", color="white" if dark else "black")
        _thin_ticks(axes.set_xticks, cols)
        _thin_ticks(axes.set_yticks, rows)
        axes.set_xlabel(col_key)
        if facet_key:
            axes.set_title(f"{facet_key}={facet}")
    panels[0].set_ylabel(row_key)
    figure.colorbar(image, ax=list(panels), label="final test_cost")
    return plots.save_png(figure, path)


#: Past this many cells a heatmap shows colours only; past MAX_TICKS values, every n-th tick.
MAX_CELL_LABELS, MAX_TICKS = 150, 12


def _thin_ticks(set_ticks, values: list[str], at: list[float] | None = None) -> None:
    """Ticks at ``at`` (default 0, 1, …) labelled by ``values``, at most MAX_TICKS of them."""
    step = math.ceil(len(values) / MAX_TICKS) if values else 1
    places = list(at) if at is not None else list(range(len(values)))
    set_ticks(places[::step], values[::step])


def _cell(record: RunRecord, row_key: str, col_key: str) -> tuple[str, str]:
    return record.params.get(row_key, ""), record.params.get(col_key, "")


def _luminance(rgba: tuple) -> float:
    red, green, blue = rgba[:3]
    return 0.299 * red + 0.587 * green + 0.114 * blue


def final_by_key(records: list[RunRecord], keys: list[str], path: Path) -> Path:
    """Final train and test cost against each swept key, one panel per key; a batched run's
    points carry its std over seeds as error bars."""
    figure = plots.new_figure(3.8 * len(keys) + 0.6, 3.6)
    panels = figure.subplots(1, len(keys), sharey=True, squeeze=False)[0]
    for axes, key in zip(panels, keys, strict=True):
        values = ordered({r.params.get(key, "") for r in records})
        numeric = plots.as_numbers(values)
        for split in SPLITS:
            xs, ys, errs = [], [], []
            for record in records:
                value = record.params.get(key, "")
                xs.append(numeric[values.index(value)] if numeric else values.index(value))
                ys.append(record.final(split))
                errs.append(record.final_std(split))
            err = np.nan_to_num(np.array(errs)) if np.isfinite(errs).any() else None
            colour = SPLIT_COLOURS[split]
            axes.errorbar(xs, ys, yerr=err, fmt="o", color=colour, label=f"{split}_cost")
            means = [
                np.nanmean([y for x, y in zip(xs, ys, strict=True) if x == at] or [np.nan])
                for at in sorted(set(xs))
            ]
            axes.plot(sorted(set(xs)), means, color=colour, alpha=0.6, lw=1)
        if numeric and min(numeric) > 0 and max(numeric) > 10 * min(numeric):
            axes.set_xscale("log")
        _thin_ticks(axes.set_xticks, values, numeric)
        axes.minorticks_off()
        axes.set_xlabel(key)
        axes.set_yscale("log")
        axes.grid(True, which="both", alpha=0.3)
    panels[0].set_ylabel("final cost")
    panels[0].legend()
    return plots.save_png(figure, path)


def seed_bands(groups: list[SeedGroup], path: Path) -> Path:
    """Mean ± std over seeds of the train and test cost, one colour per setting."""
    figure = plots.new_figure(10.0, 4.0)
    panels = figure.subplots(1, 2, sharey=True)
    colours = palette([g.label for g in groups])
    for axes, split in zip(panels, SPLITS, strict=True):
        for group in groups:
            curve = group.curves.get(split)
            if curve is None or not len(curve.steps):
                continue
            colour = colours[group.label]
            axes.plot(curve.steps, curve.values, color=colour, label=group.label)
            if curve.std is not None:
                low = np.clip(curve.values - curve.std, curve.values * 1e-3, None)
                axes.fill_between(
                    curve.steps, low, curve.values + curve.std, color=colour, alpha=0.25, lw=0
                )
        axes.set_yscale("log")
        epoch_axis(axes)
        axes.set_title(f"{split}_cost, mean ± std over seeds")
        axes.grid(True, which="both", alpha=0.3)
    _legend(figure, panels[0], "setting")
    return plots.save_png(figure, path)


def parallel_coordinates(records: list[RunRecord], keys: list[str], path: Path) -> Path:
    """One vertical axis per swept key and a last one for the final test cost (log), one line
    per run coloured by that cost; a numeric key whose values span more than a decade, all
    positive, sits on a log axis, others are evenly spaced by value order."""
    shown = [r for r in records if math.isfinite(r.final("test")) and r.final("test") > 0]
    costs = np.array([r.final("test") for r in shown])
    columns, labels = [], []
    for key in keys:
        values = ordered({r.params.get(key, "") for r in shown})
        position, ticks = _axis_positions(values)
        columns.append([position[r.params.get(key, "")] for r in shown])
        labels.append(ticks)
    low, high = (costs.min(), costs.max()) if len(costs) else (1.0, 1.0)
    logs = np.log10(costs)
    span = (np.log10(high) - np.log10(low)) or 1.0
    columns.append(((logs - np.log10(low)) / span).tolist())
    figure = plots.new_figure(1.8 * (len(keys) + 1) + 1.6, 4.2)
    axes = figure.add_subplot()
    norm = LogNorm(low, high) if low < high else None
    lines = np.stack([np.arange(len(columns)), np.zeros(len(columns))], axis=-1)
    segments = np.repeat(lines[None], len(shown), axis=0)
    segments[:, :, 1] = np.array(columns, dtype=float).T
    alpha = min(1.0, max(0.05, 30.0 / max(len(shown), 1)))
    collection = LineCollection(segments, cmap="viridis_r", norm=norm, alpha=alpha, linewidths=1)
    collection.set_array(costs)
    axes.add_collection(collection)
    for index, ticks in enumerate(labels):
        axes.axvline(index, color="black", lw=0.8)
        for at, text in ticks:
            axes.text(index - 0.05, at, text, ha="right", va="center", fontsize=8)
    axes.axvline(len(keys), color="black", lw=0.8)
    for at in np.linspace(0.0, 1.0, 5):
        value = 10 ** (np.log10(low) + at * span)
        axes.text(len(keys) + 0.03, at, f"{value:.3g}", ha="left", va="center", fontsize=8)
    axes.set_xticks(range(len(keys) + 1), [*keys, "final test_cost"])
    axes.set_xlim(-0.4, len(keys) + 0.4)
    axes.set_ylim(-0.05, 1.05)
    axes.set_yticks([])
    for side in ("left", "right", "top"):
        axes.spines[side].set_visible(False)
    figure.colorbar(collection, ax=axes, label="final test_cost").solids.set_alpha(1.0)
    return plots.save_png(figure, path)


def _axis_positions(values: list[str]) -> tuple[dict[str, float], list[tuple[float, str]]]:
    """Each value's height in [0, 1] on its key's axis, and the (height, label) ticks."""
    numbers = plots.as_numbers(values)
    if numbers and min(numbers) > 0 and max(numbers) > 10 * min(numbers):
        logs = np.log10(numbers)
        heights = (logs - logs.min()) / (logs.max() - logs.min())
    elif len(values) > 1:
        heights = np.linspace(0.0, 1.0, len(values))
    else:
        heights = np.array([0.5])
    position = dict(zip(values, heights.tolist(), strict=True))
    step = max(1, len(values) // 12)
    return position, [(position[v], v) for v in values[::step]]


def importance_bars(shares: list[tuple[str, float]], path: Path) -> Path:
    """The shares of the variance of the final test cost, one horizontal bar per term."""
    figure = plots.new_figure(6.4, 0.35 * len(shares) + 1.2)
    axes = figure.add_subplot()
    names = [name for name, _ in shares][::-1]
    values = [value for _, value in shares][::-1]
    colours = ["tab:grey" if name == "residual" else "tab:blue" for name in names]
    axes.barh(range(len(names)), values, color=colours)
    axes.set_yticks(range(len(names)), names)
    for index, value in enumerate(values):
        axes.text(value + 0.01, index, f"{value:.1%}", va="center", fontsize=8)
    axes.set_xlim(0.0, 1.1)
    axes.set_xlabel("share of the variance of the final test_cost")
    axes.grid(True, axis="x", alpha=0.3)
    return plots.save_png(figure, path)


def overlay(
    drawn: dict[str, list[tuple[str, Curve | None]]], titles: dict[str, str], path: Path
) -> Path:
    """One panel per metric, A's and B's curves against epoch (a ± std band where known); costs
    on a log scale."""
    figure = plots.new_figure(4.2 * max(len(drawn), 1) + 0.4, 4.4)
    panels = figure.subplots(1, max(len(drawn), 1), squeeze=False)[0]
    colours = {"A": "tab:blue", "B": "tab:orange"}
    for axes, (metric, sides) in zip(panels, drawn.items(), strict=False):
        for label, curve in sides:
            if curve is None or not len(curve.steps):
                continue
            axes.plot(curve.steps, curve.values, color=colours[label], label=label)
            if curve.std is not None and np.isfinite(curve.std).any():
                low = curve.values - curve.std
                if metric.endswith("_cost"):
                    low = np.clip(low, curve.values * 1e-3, None)
                high = curve.values + curve.std
                axes.fill_between(curve.steps, low, high, color=colours[label], alpha=0.25, lw=0)
        if metric.endswith("_cost"):
            axes.set_yscale("log")
        axes.set_title(metric)
        epoch_axis(axes)
        axes.grid(True, which="both", alpha=0.3)
    figure.suptitle("\n".join(f"{k}: {v}" for k, v in titles.items()), fontsize=9)
    panels[0].legend()
    return plots.save_png(figure, path)
