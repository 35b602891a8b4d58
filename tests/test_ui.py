"""The MLflow UI as a person sees it: a real `mlflow server` (via `nnexp server`), a real sweep
into it, and Debian's headless Chromium driven by Playwright. The experiment page lists the sweep
with its children nested under it, `model.hidden` and `optim.lr` shown as columns, and a child's
page draws its `train_cost` chart. Screenshots go to test-artifacts/ui/."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO, mlflow_client, run_app, sweep_runs

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = REPO / "test-artifacts" / "ui"
TIMEOUT_MS = 60_000
EXPERIMENT = "ui_check"


@pytest.fixture
def browser_page(tmp_path):
    """A Playwright page in the system Chromium with a fresh profile (no browser download)."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), "Debian's chromium is missing: `make browser` installs it"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1600, "height": 1000},
        )
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context.new_page()
        finally:
            context.close()


def close_assistant(page) -> None:
    """MLflow 3 opens an assistant panel beside the page; close it to see the runs."""
    close = page.get_by_role("button", name="Close")
    if close.count():
        close.first.click()


def show_param_column(page, key: str) -> None:
    """Tick ``key`` in the runs table's Columns menu."""
    page.get_by_test_id("column-selection-dropdown").first.click()
    page.get_by_placeholder("Search columns").fill(key)
    page.locator("[data-component-type=popover]").get_by_text(key, exact=True).click()
    page.keyboard.press("Escape")


def column_values(page, key: str) -> list[str]:
    """The non-empty cells of the runs table's column ``key`` (the header included)."""
    cells = page.locator(f"[role=gridcell][col-id*='{key}'], [role=columnheader][col-id*='{key}']")
    return [text.strip() for text in cells.all_inner_texts() if text.strip()]


def test_sweep_reads_well_in_the_mlflow_ui(tmp_path, shared_server, browser_page):
    uri, _ = shared_server
    done = run_app(
        "nnexp-train",
        "-m",
        f"tracking.uri={uri}",
        f"tracking.experiment={EXPERIMENT}",
        "tracking.log_model=false",
        "optim.epochs=30",
        "model.hidden=2,4",
        "optim.lr=0.5,1",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    (parent,), children = sweep_runs(uri, EXPERIMENT)
    assert len(children) == 4
    experiment_id = mlflow_client(uri).get_experiment_by_name(EXPERIMENT).experiment_id
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser_page

    page.goto(f"{uri}/#/experiments/{experiment_id}/runs")
    page.get_by_text("matching runs").wait_for()
    close_assistant(page)
    page.get_by_text(parent.info.run_name, exact=True).wait_for()
    for child in children:  # nested: hidden until the parent's row is expanded
        assert not page.get_by_text(child.info.run_name, exact=True).is_visible()
    page.locator('button[data-component-id$="runnamecellrenderer.tsx_46"]').first.click()
    for child in children:
        page.get_by_text(child.info.run_name, exact=True).wait_for()
    for key in ("model.hidden", "optim.lr"):
        show_param_column(page, key)
        page.get_by_test_id(f"sort-header-{key}").wait_for()
    page.screenshot(path=str(SHOTS / "runs_table.png"), full_page=True)
    (SHOTS / "runs_table.html").write_text(page.content())
    hidden = sorted(column_values(page, "model.hidden"))
    lr = sorted(column_values(page, "optim.lr"))
    assert hidden == ["2", "2", "2,4", "4", "4", "model.hidden"], hidden
    assert lr == ["0.5", "0.5", "0.5,1", "1.0", "1.0", "optim.lr"], lr

    child = children[0]
    page.goto(f"{uri}/#/experiments/{experiment_id}/runs/{child.info.run_id}/model-metrics")
    close_assistant(page)
    page.get_by_role("heading", name=child.info.run_name).wait_for()
    # The card titled train_cost itself, not best_train_cost's (one point, no line).
    title = page.get_by_text("train_cost", exact=True)
    card = page.get_by_test_id("experiment-view-compare-runs-card").filter(has=title)
    card.locator(".js-plotly-plot path.js-line").first.wait_for()
    line = card.locator(".js-plotly-plot path.js-line").first.get_attribute("d")
    assert line and line.count("L") >= 10  # a drawn curve through the 31 logged epochs
    page.screenshot(path=str(SHOTS / "run_train_cost.png"), full_page=True)
