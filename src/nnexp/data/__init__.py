"""Datasets: load, split with the run's generator, scale on training statistics.

Returns plain arrays and scalers; knows nothing of Hydra or MLflow. Which datasets exist, and the
options of each, is ``nnexp.data.registry``.
"""

from nnexp.data.csv_file import DataError
from nnexp.data.dataset import Dataset
from nnexp.data.registry import DATASETS, REGISTRY, load_dataset
from nnexp.data.scaling import Scaler

__all__ = ["DATASETS", "REGISTRY", "DataError", "Dataset", "Scaler", "load_dataset"]
