"""The report's figures as deterministic PNGs (nnexp.plots): cost curves coloured by a swept key,
a heatmap of the final test cost over two keys, final costs against each key, seed bands."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import LogNorm
from matplotlib.ticker import MaxNLocator

from nnexp import plots
from nnexp.report.groups import SeedGroup, ordered, short, value_order
from nnexp.report.records import SPLITS, RunRecord

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
    figure.legend(unique.values(), unique.keys(), title=title, loc="outside right upper")


def heatmap(records: list[RunRecord], row_key: str, col_key: str, path: Path) -> Path:
    """Final test cost (mean over the runs in each cell) over two swept keys, log colour scale;
    a cell without a finished value reads "—"."""
    rows = ordered({r.params.get(row_key, "") for r in records})
    cols = ordered({r.params.get(col_key, "") for r in records})
    grid = np.full((len(rows), len(cols)), np.nan)
    for i, row in enumerate(rows):
        for j, col in enumerate(cols):
            values = [
                r.final("test")
                for r in records
                if r.params.get(row_key) == row and r.params.get(col_key) == col
            ]
            finite = [v for v in values if math.isfinite(v)]
            grid[i, j] = np.mean(finite) if finite else np.nan
    figure = plots.new_figure(1.1 * len(cols) + 2.6, 0.7 * len(rows) + 1.6)
    axes = figure.add_subplot()
    finite = grid[np.isfinite(grid)]
    spread = len(finite) and 0 < finite.min() < finite.max()
    norm = LogNorm(finite.min(), finite.max()) if spread else None
    image = axes.imshow(np.ma.masked_invalid(grid), cmap="viridis_r", norm=norm, aspect="auto")
    for (i, j), value in np.ndenumerate(grid):
        text = f"{value:.3g}" if math.isfinite(value) else "—"
        dark = math.isfinite(value) and _luminance(image.cmap(image.norm(value))) < 0.5
        axes.text(j, i, text, ha="center", va="center", color="white" if dark else "black")
    axes.set_xticks(range(len(cols)), cols)
    axes.set_yticks(range(len(rows)), rows)
    axes.set_xlabel(col_key)
    axes.set_ylabel(row_key)
    figure.colorbar(image, ax=axes, label="final test_cost")
    return plots.save_png(figure, path)


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
        axes.set_xticks(numeric or range(len(values)), values)
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
