"""A group's recorded points stay whole when a stop signal cuts a record short: a record counts
once its epoch is in, and no metric's rows fall behind the epochs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import pytest

from nnexp.sweep.groups import Points


class CutAfterFirst(Mapping):
    """Two metrics whose iteration is stopped by a signal after the first."""

    def __init__(self) -> None:
        self.rows = {"train_cost": np.ones(2), "test_cost": np.zeros(2)}

    def __getitem__(self, name: str) -> np.ndarray:
        return self.rows[name]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[str]:
        yield "train_cost"
        raise KeyboardInterrupt


def test_a_record_cut_by_a_signal_is_not_counted_and_leaves_no_row_behind():
    points = Points()
    points.add(0, {"train_cost": np.full(2, 3.0), "test_cost": np.full(2, 4.0)})
    with pytest.raises(KeyboardInterrupt):
        points.add(1, CutAfterFirst())
    assert points.epochs == [0]
    assert all(len(rows) >= len(points.epochs) for rows in points.values.values())
    assert [rows[0].tolist() for rows in points.values.values()] == [[3.0, 3.0], [4.0, 4.0]]
