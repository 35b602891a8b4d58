"""Optuna trials asked for in batches (``hydra.sweeper.n_jobs=K``) reach the nnexp launcher K at a
time: same-shape trials train as one batched computation, and Optuna gets each trial's own
objective (its child's final test_cost)."""

from __future__ import annotations

import pytest

from conftest import mlflow_client, sweep_runs
from test_batched_sweeps import nnexp_train  # noqa: F401 (the fixture)


@pytest.mark.slow
def test_a_batch_of_trials_trains_as_one_group_and_each_trial_gets_its_objective(
    nnexp_train,  # noqa: F811
    store,
    monkeypatch,
):
    import optuna  # here, not at collection: importing it costs each test-fast worker ~2 s

    studies = []
    create_study = optuna.create_study

    def kept(*args, **kwargs):
        studies.append(create_study(*args, **kwargs))
        return studies[-1]

    monkeypatch.setattr(optuna, "create_study", kept)  # the sweeper's study, to read its trials
    code = nnexp_train(
        "-m",
        "hydra/sweeper=optuna",
        "hydra.sweeper.n_trials=8",
        "hydra.sweeper.n_jobs=4",
        "model.hidden=3",  # fixed: every trial of a batch has one shape (lr and λ per copy)
        "optim.epochs=30",
        "tracking.log_model=false",
    )
    assert code == 0
    assert nnexp_train.calls == [4, 4]  # two batches of 4 trials, each one batched computation
    _, children = sweep_runs(store)
    assert len(children) == 8 and all(c.info.status == "FINISHED" for c in children)
    client = mlflow_client(store)
    final = {
        (float(c.data.params["optim.lr"]), float(c.data.params["regularization.l2"])): max(
            client.get_metric_history(c.info.run_id, "test_cost"), key=lambda m: m.step
        ).value
        for c in children
    }
    (study,) = studies
    trials = study.trials
    assert len(trials) == 8 and len(final) == 8
    for trial in trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        key = (trial.params["optim.lr"], trial.params["regularization.l2"])
        assert trial.value == final[key]
    assert len({trial.value for trial in trials}) == 8
