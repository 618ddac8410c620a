"""Demand and cost predictions for a plan, from feature frames to tidy tables.

The feature frames come from :mod:`services.features` (one code path for training and serving);
the models take their raw columns as named tensors (docs/model-interface.md). ``predict`` is any
callable ``(model_name, {tensor: ndarray}) -> (outputs, version)``, e.g. the gateway's KServe
V2 client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from services.features.cost import cost_serving_frame
from services.features.demand import build_serving_frame

Arrays = dict[str, np.ndarray]
PredictFn = Callable[[str, Arrays], tuple[Arrays, int]]


def frame_to_arrays(frame: pd.DataFrame, inputs: Sequence[tuple[str, str]]) -> Arrays:
    """Columns of ``frame`` as the model's input tensors ``(name, dtype)``; strings as bytes."""
    out: Arrays = {}
    for name, dtype in inputs:
        column = frame[name]
        if dtype == "string":
            out[name] = np.array([str(v).encode() for v in column.fillna("")], dtype=np.object_)
        else:
            out[name] = column.to_numpy(dtype=np.dtype(dtype))
    return out


def forecast_demand(
    frames: Mapping[str, pd.DataFrame],
    origin_week: Any,
    variants: Sequence[Any],
    horizon: int,
    predict: PredictFn,
    inputs: Sequence[tuple[str, str]],
) -> tuple[pd.DataFrame, int]:
    """P10/P50/P90 per (variant, week) for weeks origin+1..origin+horizon, and the version."""
    features = build_serving_frame(frames, origin_week, variants, horizon)
    outputs, version = predict("demand", frame_to_arrays(features, inputs))
    q = np.asarray(outputs["quantiles"], dtype=float)
    table = pd.DataFrame(
        {
            "variant_id": features["variant_id"].astype(str).to_numpy(),
            "target_week": pd.to_datetime(features["target_week"]).to_numpy(),
            "p10": q[:, 0],
            "p50": q[:, 1],
            "p90": q[:, 2],
        }
    )
    return table, version


def estimate_costs(
    frames: Mapping[str, pd.DataFrame],
    variants: Sequence[Any],
    predict: PredictFn,
    inputs: Sequence[tuple[str, str]],
) -> tuple[pd.DataFrame, int]:
    """Unit cost and processing hours per unit for every eligible (variant, line) pair."""
    features = cost_serving_frame(frames, variants)
    outputs, version = predict("cost", frame_to_arrays(features, inputs))
    table = pd.DataFrame(
        {
            "variant_id": features["variant_id"].astype(str).to_numpy(),
            "line_id": features["line_id"].astype(str).to_numpy(),
            "unit_cost": np.asarray(outputs["unit_cost"], dtype=float).reshape(-1),
            "hours_per_unit": np.asarray(outputs["hours_per_unit"], dtype=float).reshape(-1),
        }
    )
    return table, version
