"""A run's dataset input: parallel jobs logging the same dataset race on its row in the store;
the job that loses (SQLite's or PostgreSQL's unique-constraint error) logs it again."""

from __future__ import annotations

import numpy as np
import pytest
from mlflow.exceptions import MlflowException

from nnexp.data import load_dataset
from nnexp.run import tracked as job

RACES = [
    "(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id, datasets.name",
    '(psycopg.errors.UniqueViolation) duplicate key value violates unique constraint "dataset_pk"',
]


def logging(monkeypatch, error: str) -> list[str]:
    """Make mlflow.log_input fail once with ``error``, then succeed; the calls made."""
    calls = []

    def log_input(entry, context):
        calls.append(context)
        if len(calls) == 1:
            raise MlflowException(error)

    monkeypatch.setattr(job.mlflow, "log_input", log_input)
    return calls


@pytest.mark.parametrize("error", RACES, ids=["sqlite", "postgresql"])
def test_a_lost_race_on_the_dataset_row_is_retried(monkeypatch, error):
    calls = logging(monkeypatch, error)
    job.log_dataset(load_dataset({"name": "sleep_study"}, np.random.default_rng(0)))
    assert calls == ["training", "training"]


def test_any_other_store_error_is_raised(monkeypatch):
    calls = logging(monkeypatch, "RESOURCE_EXHAUSTED: too many requests")
    with pytest.raises(MlflowException, match="too many"):
        job.log_dataset(load_dataset({"name": "sleep_study"}, np.random.default_rng(0)))
    assert calls == ["training"]
