"""Batched training alone: one ``core.train`` call on the 128 copies of the batched grid (lr 1…8
× λ {0, 0.001} × seed 0…7, sleep_study, hidden 3, full batch, train and test cost recorded every
epoch) against PyTorch training the same copies on the CPU with ``torch.bmm`` (the bias-free
network and its hand-derived gradient as batched tensor operations, per-copy lr and λ, both
costs read out every epoch as ours are), the same initial weights. Time per copy-epoch."""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable

import numpy as np

from nnexp import core
from nnexp.data import load_dataset
from nnexp.run.job import model_streams

LRS, L2S, SEEDS = range(1, 9), (0.0, 0.001), range(8)


def grid_copies() -> tuple[tuple, tuple, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train and test sets, per-copy lr and λ, and the copies' initial weights W1, W2."""
    data = load_dataset({"name": "sleep_study"}, np.random.default_rng(0))
    grid = list(itertools.product(LRS, L2S, SEEDS))
    lr = np.array([float(g[0]) for g in grid])
    l2 = np.array([g[1] for g in grid])
    W1, W2 = core.init_weights(
        data.d, 3, data.k, "normal", [model_streams(seed) for _, _, seed in grid]
    )
    return (data.X_train, data.y_train), (data.X_test, data.y_test), lr, l2, W1, W2


def ours(epochs: int) -> Callable[[], np.ndarray]:
    """One batched ``core.train`` call; returns the train costs (epochs + 1, S)."""
    train_set, test_set, lr, l2, W1, W2 = grid_copies()
    rngs = [np.random.default_rng(0) for _ in lr]

    def run() -> np.ndarray:
        hp = core.Hyperparams(lr=lr, epochs=epochs, l2=l2)
        result = core.train(W1.copy(), W2.copy(), train_set, test_set, hp, rngs)
        return np.asarray(result.history.train_cost)

    return run


def torch_bmm(epochs: int) -> Callable[[], np.ndarray]:
    """The same copies in PyTorch with ``torch.bmm``; returns the train costs (epochs + 1, S)."""
    import torch

    (X, y), (Xt, yt), lr, l2, W1, W2 = grid_copies()
    copies = len(lr)
    X, y = torch.from_numpy(X).expand(copies, -1, -1), torch.from_numpy(y)
    Xt, yt = torch.from_numpy(Xt).expand(copies, -1, -1), torch.from_numpy(yt)
    lr_, l2_ = torch.from_numpy(lr).view(-1, 1, 1), torch.from_numpy(l2).view(-1, 1, 1)
    r, rt = 1.0 / X.shape[1], 1.0 / Xt.shape[1]
    XT = X.transpose(1, 2)

    def cost(A, Y, W1, W2, scale) -> torch.Tensor:
        yhat = torch.sigmoid(torch.bmm(torch.sigmoid(torch.bmm(A, W1)), W2))
        penalty = W1.square().sum((1, 2)) + W2.square().sum((1, 2))
        return scale * 0.5 * (yhat - Y).square().sum((1, 2)) + 0.5 * l2_.view(-1) * penalty

    def run() -> np.ndarray:
        w1, w2 = torch.from_numpy(W1.copy()), torch.from_numpy(W2.copy())
        costs, test = [], []
        with torch.inference_mode():
            for epoch in range(epochs + 1):
                a2 = torch.sigmoid(torch.bmm(X, w1))
                yhat = torch.sigmoid(torch.bmm(a2, w2))
                error = yhat - y
                penalty = w1.square().sum((1, 2)) + w2.square().sum((1, 2))
                train = r * 0.5 * error.square().sum((1, 2)) + 0.5 * l2_.view(-1) * penalty
                costs.append(train.numpy().copy())
                test.append(cost(Xt, yt, w1, w2, rt).numpy().copy())
                if epoch == epochs:
                    break
                delta3 = error * yhat * (1 - yhat)
                gW2 = r * torch.bmm(a2.transpose(1, 2), delta3) + l2_ * w2
                delta2 = torch.bmm(delta3, w2.transpose(1, 2)) * a2 * (1 - a2)
                gW1 = r * torch.bmm(XT, delta2) + l2_ * w1
                w1 -= lr_ * gW1
                w2 -= lr_ * gW2
        return np.asarray(costs)

    return run


def timed(run: Callable[[], object]) -> float:
    start = time.process_time()
    run()
    return time.process_time() - start


def measure(epochs: int, rounds: int) -> dict[str, list[float]] | None:
    """CPU seconds per copy-epoch of each, round-robin after a warm-up; None without torch."""
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        return None
    contenders = {
        "nnexp core.train (batched)": ours(epochs),
        "PyTorch torch.bmm": torch_bmm(epochs),
    }
    first = [run() for run in contenders.values()]
    if not np.allclose(first[0], first[1], rtol=1e-9, atol=1e-12):
        raise AssertionError("PyTorch's costs differ from nnexp's: not the same training")
    copies = len(LRS) * len(L2S) * len(SEEDS)
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, run in contenders.items():
            samples[name].append(timed(run) / (copies * epochs))
    return samples


def rows(epochs: int, rounds: int) -> tuple[list[list[str]], float | None]:
    """Table rows (name, min–median–max per copy-epoch) and torch's median / ours."""
    samples = measure(epochs, rounds)
    if samples is None:
        return [], None
    table = [
        [
            name,
            "–".join(f"{value * 1e6:.2f} µs" for value in (min(s), statistics.median(s), max(s))),
        ]
        for name, s in samples.items()
    ]
    ours_, torch_ = samples.values()
    return table, statistics.median(t / o for o, t in zip(ours_, torch_, strict=True))
