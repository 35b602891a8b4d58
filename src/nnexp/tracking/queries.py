"""Reading runs back from the store: every page of a search, children of a parent, the latest
match."""

from __future__ import annotations

from collections.abc import Sequence

from mlflow.entities import Run, ViewType
from mlflow.tracking import MlflowClient

from nnexp.tracking.vocabulary import PARENT_RUN_TAG

PAGE = 1000


def search_all(
    client: MlflowClient,
    experiment_ids: Sequence[str],
    filter_string: str = "",
    order_by: Sequence[str] | None = None,
) -> list[Run]:
    """Every active run matching ``filter_string``, following MLflow's pages."""
    runs: list[Run] = []
    token = None
    while True:
        page = client.search_runs(
            list(experiment_ids),
            filter_string=filter_string,
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=PAGE,
            order_by=list(order_by or []),
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def children(client: MlflowClient, experiment_id: str, parent_run_id: str) -> list[Run]:
    """Runs whose ``mlflow.parentRunId`` is ``parent_run_id``."""
    return search_all(client, [experiment_id], f"tags.`{PARENT_RUN_TAG}` = '{parent_run_id}'")


def latest(client: MlflowClient, experiment_id: str, filter_string: str) -> Run | None:
    """The most recently started active run matching ``filter_string``, or None."""
    found = client.search_runs(
        [experiment_id],
        filter_string=filter_string,
        run_view_type=ViewType.ACTIVE_ONLY,
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return found[0] if found else None
