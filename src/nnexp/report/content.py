"""What a report says: the set-up (config, swept keys, data, code, statuses), the figures, what
matters (importance, seed groups with intervals, paired comparisons), the runs ranked by final
test cost and the failed runs with their reasons. No clock time anywhere. Past a few hundred runs
the curves are a sample and the long tables the best rows, each rule stated where it applies."""

from __future__ import annotations

import math
from pathlib import Path

from nnexp.report import figures
from nnexp.report.compare import comparisons, key_importance, setting_stats
from nnexp.report.document import Block, Bullets, Code, Heading, Image, Paragraph, Table
from nnexp.report.groups import design_keys, ordered, seed_groups
from nnexp.report.records import CURVE_RUNS, RunRecord, maximized, metric_names
from nnexp.report.stats import Interval
from nnexp.report.target import DERIVED, Selection
from nnexp.tracking.vocabulary import COMMAND_TAG, GIT_COMMIT_TAG, GIT_DIRTY_TAG, VERSION_TAG_PREFIX

STATUS_ORDER = ("finished", "diverged", "failed", "killed", "running")
FIGURES = "figures"
#: Rows of the ranked and failed-run tables, and of the seed-group table; settings in the
#: seed-band figure.
TABLE_ROWS, SETTING_ROWS, BAND_GROUPS = 100, 30, 10
#: Most panels of one heatmap (one per value of the key it is faceted by).
HEATMAP_PANELS = 12
TEST_COST = "test_cost"


def build(selection: Selection, records: list[RunRecord], folder: Path) -> list[Block]:
    """The report's blocks; its figures are written into ``folder``/figures."""
    (folder / FIGURES).mkdir()
    keys = design_keys(selection.axes)
    return [
        Heading(1, f"Report: {selection.target}"),
        Paragraph(_intro(selection, records)),
        *_setup(selection, records),
        *_figures(records, keys, folder),
        *_importance(records, keys, folder),
        *_seed_groups(records, keys),
        *_paired(records, keys),
        *_ranking(records, selection.axes),
        *_failures(records),
    ]


def cost(value: float, std: float = math.nan) -> str:
    """A cost with 4 significant digits, ``± std`` when known, "—" when missing."""
    if not math.isfinite(value):
        return "—"
    return f"{value:.4g} ± {std:.2g}" if math.isfinite(std) else f"{value:.4g}"


def interval(found: Interval) -> str:
    """``mean [low, high]`` with 4 significant digits; the mean alone below two values."""
    if not math.isfinite(found.mean):
        return "—"
    if not math.isfinite(found.low):
        return f"{found.mean:.4g}"
    return f"{found.mean:.4g} [{found.low:.4g}, {found.high:.4g}]"


def _intro(selection: Selection, records: list[RunRecord]) -> str:
    where = f"MLflow experiment `{selection.experiment_name}` (id {selection.experiment_id})"
    if selection.parent is None:
        return f"All {len(records)} runs of {where} that are not sweep parents."
    parent = selection.parent
    return (
        f"The {len(records)} runs of the sweep `{parent.info.run_name}` (parent run "
        f"`{parent.info.run_id}`) in {where}."
    )


def _values(records: list[RunRecord], key: str) -> list[str]:
    return ordered({r.params.get(key, "") for r in records})


def _setup(selection: Selection, records: list[RunRecord]) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Set-up")]
    command = selection.parent.data.tags.get(COMMAND_TAG) if selection.parent else None
    if command:
        blocks += [Paragraph("Command:"), Code(command, "sh")]
    if selection.config_text:
        blocks += [Paragraph(f"Config `experiments/{selection.target}.yaml`:")]
        blocks += [Code(selection.config_text, "yaml")]
    if selection.axes:
        specs = selection.parent.data.params if selection.parent else {}
        rows = [
            [f"`{key}`", specs.get(key, ""), ", ".join(_values(records, key))]
            for key in selection.axes
        ]
        blocks += [Heading(3, "Swept keys"), Table(["key", "sweep", "values run"], rows)]
    keys = sorted({k for r in records for k in r.params} - set(selection.axes) - set(DERIVED))
    fixed = [[f"`{k}`", ", ".join(_values(records, k))] for k in keys]
    blocks += [Heading(3, "Fixed settings"), Table(["key", "value"], fixed)]
    blocks += [Heading(3, "Data, code and runs"), Bullets(_facts(records))]
    return blocks


def _facts(records: list[RunRecord]) -> list[str]:
    def joined(key: str, source: str = "params") -> str:
        found = {getattr(r, source).get(key, "") for r in records} - {""}
        return ", ".join(ordered(found)) or "unknown"

    split = (
        f"random, test_fraction={joined('dataset.test_fraction')}, "
        f"dataset.seed={joined('dataset.seed')}"
        if any("dataset.test_fraction" in r.params for r in records)
        else "fixed, as the dataset defines it"
    )
    counts = {}
    for record in records:
        counts[record.status] = counts.get(record.status, 0) + 1
    statuses = sorted(counts, key=lambda s: ((*STATUS_ORDER, s)).index(s))
    versions = sorted({k for r in records for k in r.tags if k.startswith(VERSION_TAG_PREFIX)})
    dirty = " (with uncommitted changes)" if joined(GIT_DIRTY_TAG, "tags") != "false" else ""
    return [
        f"dataset `{joined('dataset.name')}`: {joined('dataset.n_train')} training and "
        f"{joined('dataset.n_test')} test rows, {joined('dataset.d')} inputs, "
        f"{joined('dataset.k')} outputs; split {split}; data digest {joined('dataset.digest')}",
        f"git commit `{joined(GIT_COMMIT_TAG, 'tags')}`{dirty}",
        "packages: " + ", ".join(f"{k.rsplit('.', 1)[-1]} {joined(k, 'tags')}" for k in versions),
        "runs by status: " + ", ".join(f"{s} {counts[s]}" for s in statuses),
    ]


def _figures(records: list[RunRecord], keys: list[str], folder: Path) -> list[Block]:
    drawn = [r for r in records if r.curves]
    scored = [r for r in records if math.isfinite(r.final("test"))]
    by_size = sorted(keys, key=lambda k: (-len(_values(drawn, k)), k))
    colour = by_size[0] if by_size else None
    facet = by_size[1] if len(by_size) > 1 else None
    name = f"{FIGURES}/cost_curves.png"
    figures.cost_curves(drawn, colour, facet, folder / name)
    how = f"coloured by `{colour}`" if colour else "one colour per run"
    per = f"; train above test, one column per `{facet}`" if facet else ""
    blocks: list[Block] = [Heading(2, "Figures")]
    if len(drawn) < len(records):
        blocks.append(Paragraph(_sample_rule(drawn, records)))
    blocks.append(Image(name, f"Train and test cost of every run against epoch, {how}{per}"))
    if keys:
        name = f"{FIGURES}/parallel_coordinates.png"
        figures.parallel_coordinates(scored, keys, folder / name)
        caption = "Every run as a line through its swept keys' values to its final test cost"
        blocks.append(Image(name, f"{caption} (log axes where a key's values span a decade)"))
    blocks += _heatmaps(scored, keys, folder)
    if keys:
        name = f"{FIGURES}/final_cost_by_key.png"
        figures.final_by_key(scored, keys, folder / name)
        blocks.append(Image(name, "Final train and test cost against each swept key"))
    groups = seed_groups(drawn, keys)
    if groups:
        name = f"{FIGURES}/seed_bands.png"
        ranked = sorted(groups, key=lambda g: _ascending(_mean_test(g.runs)))
        picked = {id(g) for g in _spread(ranked, BAND_GROUPS)}
        shown = [g for g in groups if id(g) in picked]
        figures.seed_bands(shown, folder / name)
        which = (
            ""
            if len(shown) == len(groups)
            else f" ({len(shown)} of {len(groups)} settings, evenly spaced in rank by mean final "
            "test cost)"
        )
        blocks.append(Image(name, f"Mean ± std over seeds of the train and test cost{which}"))
    return blocks


def _mean_test(runs: list[RunRecord]) -> float:
    finite = [v for v in (r.final("test") for r in runs) if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def _sample_rule(drawn: list[RunRecord], records: list[RunRecord]) -> str:
    return (
        f"Curves of {len(drawn)} of the {len(records)} runs: above {CURVE_RUNS} runs, whole "
        "settings (all their seeds) evenly spaced in rank by mean final test cost, best and "
        "worst included, as many as keep the drawn runs within "
        f"{CURVE_RUNS}. Final values (every other figure and table) cover all runs."
    )


def _spread(items: list, limit: int) -> list:
    """At most ``limit`` of ``items``, evenly spaced, first and last included."""
    if len(items) <= limit:
        return items
    picks = sorted({round(i * (len(items) - 1) / (limit - 1)) for i in range(limit)})
    return [items[i] for i in picks]


def _heatmaps(scored: list[RunRecord], keys: list[str], folder: Path) -> list[Block]:
    """A heatmap of each pair of swept keys; past two keys, one panel per value of the
    remaining key with the fewest values (any others averaged over), or no panels (every other
    key averaged over) when even that key has more than HEATMAP_PANELS values."""
    wide = [k for k in keys if len(_values(scored, k)) > 1]
    width = {k: len(_values(scored, k)) for k in wide}
    blocks: list[Block] = []
    for index, first in enumerate(wide):
        for second in wide[index + 1 :]:
            rest = sorted(
                (k for k in wide if k not in (first, second)), key=lambda k: (width[k], k)
            )
            facet = rest[0] if rest and width[rest[0]] <= HEATMAP_PANELS else None
            stem = "test_cost_heatmap"
            if len(wide) > 2:
                stem += "_" + "_".join(_slug(k) for k in (first, second))
            name = f"{FIGURES}/{stem}.png"
            figures.heatmap(scored, first, second, folder / name, facet)
            caption = f"Final test cost over `{first}` × `{second}` (lighter is lower)"
            if facet:
                others = [k for k in rest if k != facet]
                caption += f", one panel per `{facet}`"
                caption += f", mean over {', '.join(f'`{k}`' for k in others)}" if others else ""
            elif rest:
                caption += (
                    f", mean over {', '.join(f'`{k}`' for k in rest)} (no panels: "
                    f"`{rest[0]}` has {width[rest[0]]} values, more than {HEATMAP_PANELS})"
                )
            blocks.append(Image(name, caption))
    return blocks


def _slug(key: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in key.rsplit(".", 1)[-1].lower())


def _importance(records: list[RunRecord], keys: list[str], folder: Path) -> list[Block]:
    found = key_importance(records, keys, TEST_COST)
    if not found.terms:
        return []
    names = {term: " × ".join(f"`{k}`" for k in term) for term in found.terms}
    terms = sorted(found.terms, key=lambda t: (-found.terms[t], t))
    rows = [[names[t], f"{found.terms[t]:.1%}"] for t in terms]
    rows += [["residual (higher interactions and seeds)", f"{found.residual:.1%}"]]
    name = f"{FIGURES}/importance.png"
    shares = [(names[t].replace("`", ""), found.terms[t]) for t in terms]
    figures.importance_bars([*shares, ("residual", found.residual)], folder / name)
    return [
        Heading(2, "What matters: importance of the swept keys"),
        Paragraph(
            f"Functional ANOVA of the final test cost over the swept keys, {found.n} runs and "
            "seeds as observations, seeds as noise: each key's share is the variance of its main "
            "effect (the mean at each of its values less the grand mean), each pair's the "
            "variance of its interaction (the cell mean less both main effects and the grand "
            "mean), over the variance of the final test cost; the residual is 1 less their sum."
        ),
        Table(["term", "share of variance"], rows),
        Image(name, "Share of the variance of the final test cost by key and pair"),
    ]


def _seed_groups(records: list[RunRecord], keys: list[str]) -> list[Block]:
    metrics = metric_names(records)
    stats = setting_stats(records, keys, metrics)
    if not any(s.intervals[TEST_COST].n > 1 for s in stats if TEST_COST in s.intervals):
        return []
    note = (
        "Each setting's final values over its seeds (a batched run's seeds, or runs that differ "
        "only in seed): mean [95 % t-interval], mean ± t₀.₉₇₅,ₙ₋₁ · s/√n."
    )
    if len(stats) > SETTING_ROWS and TEST_COST in metrics:
        best = sorted(stats, key=lambda s: _ascending(s.intervals[TEST_COST].mean))
        stats = best[:SETTING_ROWS]
        note += f" The {SETTING_ROWS} settings of lowest mean test cost are shown."
    rows = [
        [
            *(s.values[k] for k in keys),
            str(max(i.n for i in s.intervals.values())),
            *(interval(s.intervals[m]) for m in metrics),
        ]
        for s in stats
    ]
    columns = [*(f"`{k}`" for k in keys), "n", *metrics]
    return [Heading(2, "Seed groups"), Paragraph(note), Table(columns, rows)]


def _ascending(value: float) -> tuple:
    return (not math.isfinite(value), value if math.isfinite(value) else 0.0)


def _paired(records: list[RunRecord], keys: list[str]) -> list[Block]:
    rows = []
    for metric in [m for m in metric_names(records) if m.startswith("test_")]:
        for found in comparisons(records, keys, metric):
            difference = found.difference
            if difference.n < 2:
                continue
            verdict = "no clear difference"
            if difference.excludes_zero():
                verdict = "better" if (difference.mean > 0) == maximized(metric) else "worse"
            rows.append(
                [
                    metric,
                    f"`{found.key}`",
                    f"{found.value} − {found.baseline}",
                    str(difference.n),
                    interval(difference),
                    verdict,
                ]
            )
    if not rows:
        return []
    note = (
        "Each swept key's values against its first, every other swept key and the seed held "
        "equal: the mean of the paired differences (value − first) and its 95 % t-interval. "
        "The verdict is better or worse when the interval excludes 0 (a cost lower, an accuracy "
        "higher is better), else no clear difference."
    )
    columns = ["metric", "key", "value − first", "pairs", "mean difference [95 % CI]", "verdict"]
    return [Heading(2, "Paired comparisons"), Paragraph(note), Table(columns, rows)]


def _ranking(records: list[RunRecord], axes: list[str]) -> list[Block]:
    def rank(record: RunRecord) -> tuple:
        return _ascending(record.final("test"))

    metrics = metric_names(records)
    best_of = [m for m in metrics if m.startswith("test_")]
    ranked = sorted(records, key=rank)
    rows = [
        [
            str(index),
            *(r.params.get(key, "") for key in axes),
            *(cost(r.metric(m), r.stds.get(m, math.nan)) for m in metrics),
            *(_best(r, m) for m in best_of),
            str(r.last_epoch) if r.last_epoch is not None else "—",
            r.status,
            f"`{r.run_id}`",
        ]
        for index, r in enumerate(ranked[:TABLE_ROWS], start=1)
    ]
    columns = [
        "#",
        *(f"`{key}`" for key in axes),
        *metrics,
        *(f"best {m} (epoch)" for m in best_of),
        "epochs",
    ]
    note = "Batched runs show the mean ± std over their seeds."
    if len(ranked) > TABLE_ROWS:
        note += (
            f" The {TABLE_ROWS} runs of lowest final test cost of {len(ranked)}; "
            "`nnexp runs list` lists them all."
        )
    return [
        Heading(2, "Runs by final test cost"),
        Paragraph(note),
        Table([*columns, "status", "run id"], rows),
    ]


def _best(record: RunRecord, metric: str) -> str:
    value, epoch = record.best_of(metric)
    if not math.isfinite(value):
        return "—"
    return f"{value:.4g} ({epoch:.0f})" if math.isfinite(epoch) else f"{value:.4g}"


def _failures(records: list[RunRecord]) -> list[Block]:
    failed = [r for r in records if r.status != "finished"]
    if not failed:
        return [Heading(2, "Failed runs"), Paragraph("None: every run finished.")]
    rows = [
        [f"`{r.run_id}`", r.name, r.status, " ".join(r.reason.split())[:300] or "—"]
        for r in failed[:TABLE_ROWS]
    ]
    blocks: list[Block] = [Heading(2, "Failed runs")]
    if len(failed) > TABLE_ROWS:
        blocks.append(Paragraph(f"The first {TABLE_ROWS} of {len(failed)}, by config hash."))
    return [*blocks, Table(["run id", "run", "status", "reason"], rows)]
