"""What recording more metrics costs: accuracy and the training dynamics against the costs alone,
on the same run, and the costs alone against the loop without any recording hook."""

from __future__ import annotations

from benchmarks import workloads
from benchmarks.markdown import section as markdown_section
from benchmarks.markdown import table
from benchmarks.timing import compare, ratio
from nnexp import core

HEADERS = "shape | recorded every | metrics | time / epoch | against the costs alone"

#: The metric sets compared: (label, classification, dynamics).
SETS = [
    ("costs", False, False),
    ("costs + accuracy", True, False),
    ("costs + dynamics", False, True),
    ("all", True, True),
]


def contender(problem: workloads.Problem, epochs: int, every: int, names: list[str]):
    """One call: ``core.train`` full batch with a test set (the last 20 % of rows), recording
    ``names`` every ``every`` epochs."""
    W1, W2 = workloads.initial_weights(problem)
    cut = len(problem.X) * 4 // 5
    train_set, test_set = (problem.X[:cut], problem.y[:cut]), (problem.X[cut:], problem.y[cut:])
    hp = core.Hyperparams(lr=workloads.LR, epochs=epochs, l2=workloads.L2)
    rngs = workloads.generators()

    def run() -> core.TrainResult:
        return core.train(W1.copy(), W2.copy(), train_set, test_set, hp, rngs, every, record=names)

    return run


def section(quick: bool) -> str:
    """Per recording interval: each metric set's time per epoch and its ratio to costs alone."""
    problem = workloads.digits()
    epochs, repeats = (10, 2) if quick else (40, 7)
    rows = []
    for every in (1, 20):
        contenders = {
            label: contender(problem, epochs, every, core.metric_names(classification, dynamics))
            for label, classification, dynamics in SETS
        }
        times = compare(contenders, repeats, warmup=1, units=epochs)
        for label, _, _ in SETS:
            share = ratio(times[label], times["costs"])
            rows.append([problem.shape, str(every), label, times[label].spread(), f"{share:.2f}×"])
    method = (
        "`core.train` on digits (64 → 64 → 10, full batch, lr 0.1, λ 1e-4, the last 20 % of the "
        f"training split as test set), {epochs} epochs a call, the metric sets timed round-robin "
        f"({repeats} rounds after a warm-up; min–median–max; ratio = median of the rounds' "
        "ratios). Accuracy costs a forward pass over each split at every recorded epoch; "
        "dynamics a backpropagation pass and a forward pass over the training split."
    )
    return markdown_section("metrics: what recording costs", method, table(HEADERS, rows))
