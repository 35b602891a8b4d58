"""nnexp: a research harness for how a small neural network trains.

The numpy core (``nnexp.core``) is the Labor_07 network; ``nnexp.train`` is the Hydra app around
it, ``nnexp.tracking`` records runs in MLflow and ``nnexp.report`` turns them into reports.
"""

__version__ = "0.1.0"
