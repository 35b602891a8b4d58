"""nnexp: a research harness for how a small neural network trains.

The numpy core (``nnexp.core``) is the Labor_07 network. A run's config is checked
(``nnexp.config``), its data loaded (``nnexp.data``), one job trained and recorded
(``nnexp.run``, ``nnexp.tracking``), many jobs swept (``nnexp.sweep``) and read back into
reports (``nnexp.report``) or retrained (``nnexp.reproduce``). ``nnexp.train`` (nnexp-train) and
``nnexp.cli`` (nnexp) are the two commands.
"""

__version__ = "0.1.0"
