"""The numpy core: the Labor_07 network (``reference``: the slides in plain numpy; ``network``:
the same, fast), its training loop and a gradient check.

Knows nothing of Hydra or MLflow.
"""

from nnexp.core import reference
from nnexp.core.gradcheck import gradient_check, numerical_gradients, relative_error
from nnexp.core.metrics import METRICS, metric_names
from nnexp.core.network import (
    PerCopy,
    Workspace,
    cost,
    cost_and_gradients,
    forward,
    reduction_factor,
    sigmoid,
)
from nnexp.core.optimizers import OPTIMIZERS, Optimizer, make_optimizer
from nnexp.core.training import History, Hyperparams, TrainResult, init_weights, train

__all__ = [
    "METRICS",
    "OPTIMIZERS",
    "History",
    "Hyperparams",
    "Optimizer",
    "PerCopy",
    "TrainResult",
    "Workspace",
    "cost",
    "cost_and_gradients",
    "forward",
    "gradient_check",
    "init_weights",
    "make_optimizer",
    "metric_names",
    "numerical_gradients",
    "reduction_factor",
    "reference",
    "relative_error",
    "sigmoid",
    "train",
]
