"""The update rules, one class each, and the registry that names them.

Every optimizer works on the flat (S, P) weights of S copies (``nnexp.core.workspace.Pair``)
with per-copy hyperparameters: the learning rate and each option are a float, the same for every
copy, or an (S, 1) column in the weights' dtype. A step changes only the copies that ``where``
selects ((S, 1) mask, or True for all): a copy that diverged is frozen, its state too.
The slides' form of each update is in ``nnexp.core.reference``; tests/test_optimizers.py checks
these against it. ``sgd`` is ``gd``: mini-batches (``optim.batch_size``) are orthogonal to the
update rule, and ``conf/optim/sgd.yaml`` only presets them.

Adding an optimizer: its class here (with ``options`` naming its keys and ``state`` its buffers),
its entry in ``OPTIMIZERS`` and ``conf/optim/NAME.yaml``; the config schema, ``--help`` and
the memory estimate follow from the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from nnexp.core.workspace import Array

#: A step's learning rate or option: a float for every copy, or one value per copy as (S, 1).
Rate = float | Array


class Optimizer:
    """W ← W − lr ∂C/∂W (gradient descent); subclasses add state and options."""

    #: The options a config gives besides ``lr`` (each a float or one per copy), with their
    #: allowed range as (low, high, high included).
    options: ClassVar[Mapping[str, tuple[float, float, bool]]] = {}
    #: How many (S, P) arrays of state the optimizer keeps (for the memory estimate).
    state: ClassVar[int] = 0

    def __init__(self, weights: Array, lr: Rate, **options: Rate):
        self.lr = lr

    def step(self, weights: Array, grad: Array, where: Array | bool) -> None:
        """W ← W − lr ∂C/∂W for the copies ``where`` selects; scales ``grad`` in place."""
        np.multiply(grad, self.lr, out=grad)
        np.subtract(weights, grad, out=weights, where=where)


class Momentum(Optimizer):
    """Heavy ball, PyTorch's convention (``torch.optim.SGD(momentum=β)``)::

        v ← β v + ∂C/∂W        W ← W − lr v        (v = 0 at the start)

    The velocity accumulates raw gradients and lr scales the step, so β = 0 is gradient
    descent exactly and a sweep over lr moves the step size alone; the other convention
    (v ← β v − lr ∂C/∂W) differs only when lr changes during training, which it never does here.
    """

    options: ClassVar[Mapping[str, tuple[float, float, bool]]] = {"momentum": (0.0, 1.0, False)}
    state: ClassVar[int] = 1

    def __init__(self, weights: Array, lr: Rate, momentum: Rate):
        super().__init__(weights, lr)
        self.beta = momentum
        self.velocity = np.zeros_like(weights)

    def _accumulate(self, grad: Array, where: Array | bool) -> None:
        """v ← β v + ∂C/∂W for the selected copies."""
        np.multiply(self.velocity, self.beta, out=self.velocity, where=where)
        np.add(self.velocity, grad, out=self.velocity, where=where)

    def step(self, weights: Array, grad: Array, where: Array | bool) -> None:
        """v ← β v + ∂C/∂W, then W ← W − lr v; uses ``grad`` as scratch."""
        self._accumulate(grad, where)
        np.multiply(self.velocity, self.lr, out=grad)
        np.subtract(weights, grad, out=weights, where=where)


class Nesterov(Momentum):
    """Nesterov momentum as PyTorch computes it (``SGD(momentum=β, nesterov=True)``)::

        v ← β v + ∂C/∂W        W ← W − lr (∂C/∂W + β v)

    the gradient at the current weights standing in for the one at the look-ahead point.
    """

    state: ClassVar[int] = 2

    def __init__(self, weights: Array, lr: Rate, momentum: Rate):
        super().__init__(weights, lr, momentum)
        self.scratch = np.empty_like(weights)

    def step(self, weights: Array, grad: Array, where: Array | bool) -> None:
        """v ← β v + ∂C/∂W, then W ← W − lr (∂C/∂W + β v); uses ``grad`` as scratch."""
        self._accumulate(grad, where)
        grad += np.multiply(self.velocity, self.beta, out=self.scratch)
        super(Momentum, self).step(weights, grad, where)


@dataclass(frozen=True)
class OptimizerEntry:
    """A registered optimizer: its class and what it is, in one line for the docs and errors."""

    cls: type[Optimizer]
    summary: str


#: Every optimizer ``optim.name`` may name. ``sgd`` is ``gd``'s update (see the module's doc).
OPTIMIZERS: dict[str, OptimizerEntry] = {
    "gd": OptimizerEntry(Optimizer, "W ← W − lr ∂C/∂W"),
    "sgd": OptimizerEntry(Optimizer, "gd's update, on mini-batches by default"),
    "momentum": OptimizerEntry(Momentum, "v ← β v + ∂C/∂W, W ← W − lr v"),
    "nesterov": OptimizerEntry(Nesterov, "v ← β v + ∂C/∂W, W ← W − lr (∂C/∂W + β v)"),
}


def make_optimizer(name: str, weights: Array, lr: Rate, options: Mapping[str, Rate]) -> Optimizer:
    """The optimizer ``name`` for the flat (S, P) ``weights``; ValueError for an unknown name or
    options that are not the optimizer's."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; use one of {', '.join(OPTIMIZERS)}")
    cls = OPTIMIZERS[name].cls
    if set(options) != set(cls.options):
        raise ValueError(
            f"optimizer {name!r} takes the options {sorted(cls.options)}, not {sorted(options)}"
        )
    return cls(weights, lr, **options)
