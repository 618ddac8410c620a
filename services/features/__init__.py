"""Feature building: one pandas code path for training frames and serving frames.

``build_training_frame`` and ``build_serving_frame`` (demand, per variant x origin x horizon) and
``build_cost_training_frame`` / ``cost_serving_frame`` (cost, per variant x line) all take the
dict of DataFrames that ``services.store.frames.load_frames`` (or ``read_dataset_folder``) gives.
"""

from services.features.cost import build_cost_training_frame, cost_serving_frame
from services.features.demand import (
    DemandPanel,
    build_panel,
    build_serving_frame,
    build_training_frame,
)
from services.features.tables import (
    clean_frames,
    normalise_frames,
    read_dataset_folder,
    read_truth,
)

__all__ = [
    "DemandPanel",
    "build_cost_training_frame",
    "build_panel",
    "build_serving_frame",
    "build_training_frame",
    "clean_frames",
    "cost_serving_frame",
    "normalise_frames",
    "read_dataset_folder",
    "read_truth",
]
