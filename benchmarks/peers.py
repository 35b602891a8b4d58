"""The peers, each set up as close to the Labor_07 network as it allows (``SETUP`` says how)."""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable

import numpy as np

from benchmarks.workloads import L2, LR, Problem, initial_weights

TORCH_MISSING = "torch not installed"

SETUP = (
    "scikit-learn: `MLPRegressor` with a logistic hidden layer, full-batch plain SGD "
    "(batch_size=N, momentum 0, constant learning rate, no shuffling, no early stopping, tol 0) "
    "and α = N·λ, since its penalty is α/(2N)·ΣW²; it always adds biases and has an identity "
    "output layer (a bias pass more, an output sigmoid less than ours). "
    "PyTorch: the same bias-free network and cost in plain tensor operations with the slides' "
    "hand-derived gradient, under `torch.inference_mode` on the CPU, the cost read out every "
    "epoch as ours is."
)


def torch_version() -> str | None:
    """The installed torch version, or None."""
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    return torch.__version__


def sklearn_mlp(problem: Problem, epochs: int) -> Callable[[], object]:
    """One call: ``MLPRegressor.fit`` for ``epochs`` full-batch epochs (no early stop)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    n_rows = problem.X.shape[0]
    y = problem.y.ravel() if problem.y.shape[1] == 1 else problem.y
    model = MLPRegressor(
        hidden_layer_sizes=(problem.hidden,),
        activation="logistic",
        solver="sgd",
        batch_size=n_rows,
        learning_rate="constant",
        learning_rate_init=LR,
        momentum=0.0,
        nesterovs_momentum=False,
        alpha=n_rows * L2,
        early_stopping=False,
        shuffle=False,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=epochs + 1,
        random_state=0,
    )

    def run() -> object:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return model.fit(problem.X, y)

    return run


def torch_net(problem: Problem, epochs: int) -> Callable[[], object]:
    """One call: ``epochs`` full-batch gradient steps of the bias-free network in PyTorch."""
    import torch

    X, y = torch.from_numpy(problem.X), torch.from_numpy(problem.y)
    W1_init, W2_init = (torch.from_numpy(W[0]) for W in initial_weights(problem))
    r = 1.0 / X.shape[0]

    def run() -> object:
        W1, W2 = W1_init.clone(), W2_init.clone()
        costs = []
        with torch.inference_mode():
            for _ in range(epochs):
                a2 = torch.sigmoid(X @ W1)
                yhat = torch.sigmoid(a2 @ W2)
                error = yhat - y
                penalty = W1.square().sum() + W2.square().sum()
                costs.append((r * 0.5 * error.square().sum() + 0.5 * L2 * penalty).item())
                delta3 = error * yhat * (1 - yhat)
                gW2 = r * (a2.T @ delta3) + L2 * W2
                delta2 = (delta3 @ W2.T) * a2 * (1 - a2)
                gW1 = r * (X.T @ delta2) + L2 * W1
                W1 -= LR * gW1
                W2 -= LR * gW2
        return np.asarray(costs)

    return run
