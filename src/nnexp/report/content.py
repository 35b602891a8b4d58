"""What a report says: the set-up (config, swept keys, data, code, statuses), the figures, the
runs ranked by final test cost and the failed runs with their reasons. No clock time anywhere."""

from __future__ import annotations

import math
from pathlib import Path

from nnexp.report import figures
from nnexp.report.document import Block, Bullets, Code, Heading, Image, Paragraph, Table
from nnexp.report.groups import design_keys, ordered, seed_groups
from nnexp.report.records import RunRecord
from nnexp.report.target import DERIVED, Selection
from nnexp.vocabulary import COMMAND_TAG, GIT_COMMIT_TAG, GIT_DIRTY_TAG, VERSION_TAG_PREFIX

STATUS_ORDER = ("finished", "diverged", "failed", "killed", "running")
FIGURES = "figures"


def build(selection: Selection, records: list[RunRecord], folder: Path) -> list[Block]:
    """The report's blocks; its figures are written into ``folder``/figures."""
    (folder / FIGURES).mkdir()
    return [
        Heading(1, f"Report: {selection.target}"),
        Paragraph(_intro(selection, records)),
        *_setup(selection, records),
        *_figures(records, design_keys(selection.axes), folder),
        *_ranking(records, selection.axes),
        *_failures(records),
    ]


def cost(value: float, std: float = math.nan) -> str:
    """A cost with 4 significant digits, ``± std`` when known, "—" when missing."""
    if not math.isfinite(value):
        return "—"
    return f"{value:.4g} ± {std:.2g}" if math.isfinite(std) else f"{value:.4g}"


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
    by_size = sorted(keys, key=lambda k: (-len(_values(drawn, k)), k))
    colour = by_size[0] if by_size else None
    facet = by_size[1] if len(by_size) > 1 else None
    name = f"{FIGURES}/cost_curves.png"
    figures.cost_curves(drawn, colour, facet, folder / name)
    how = f"coloured by `{colour}`" if colour else "one colour per run"
    per = f"; train above test, one column per `{facet}`" if facet else ""
    blocks: list[Block] = [
        Heading(2, "Figures"),
        Image(name, f"Train and test cost of every run against epoch, {how}{per}"),
    ]
    wide = [k for k in keys if len(_values(drawn, k)) > 1]
    if len(wide) >= 2:
        name = f"{FIGURES}/test_cost_heatmap.png"
        figures.heatmap(drawn, wide[0], wide[1], folder / name)
        caption = f"Final test cost over `{wide[0]}` × `{wide[1]}` (lighter is lower)"
        blocks.append(Image(name, caption))
    if keys:
        name = f"{FIGURES}/final_cost_by_key.png"
        figures.final_by_key(drawn, keys, folder / name)
        blocks.append(Image(name, "Final train and test cost against each swept key"))
    groups = seed_groups(drawn, keys)
    if groups:
        name = f"{FIGURES}/seed_bands.png"
        figures.seed_bands(groups, folder / name)
        blocks.append(Image(name, "Mean ± std over seeds of the train and test cost"))
    return blocks


def _ranking(records: list[RunRecord], axes: list[str]) -> list[Block]:
    def rank(record: RunRecord) -> tuple:
        value = record.final("test")
        return (not math.isfinite(value), value if math.isfinite(value) else 0.0)

    rows = [
        [
            str(index),
            *(r.params.get(key, "") for key in axes),
            cost(r.final("train"), r.final_std("train")),
            cost(r.final("test"), r.final_std("test")),
            str(r.last_epoch) if r.last_epoch is not None else "—",
            r.status,
            f"`{r.run_id}`",
        ]
        for index, r in enumerate(sorted(records, key=rank), start=1)
    ]
    columns = ["#", *(f"`{key}`" for key in axes), "train_cost", "test_cost", "epochs"]
    note = "Batched runs show the mean ± std over their seeds."
    return [
        Heading(2, "Runs by final test cost"),
        Paragraph(note),
        Table([*columns, "status", "run id"], rows),
    ]


def _failures(records: list[RunRecord]) -> list[Block]:
    failed = [r for r in records if r.status != "finished"]
    if not failed:
        return [Heading(2, "Failed runs"), Paragraph("None: every run finished.")]
    rows = [
        [f"`{r.run_id}`", r.name, r.status, " ".join(r.reason.split())[:300] or "—"] for r in failed
    ]
    return [Heading(2, "Failed runs"), Table(["run id", "run", "status", "reason"], rows)]
