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

from services.common.errors import FailedPrecondition
from services.common.quantiles import QUANTILES, column
from services.common.quantiles import mean as quantile_mean
from services.features.cost import cost_serving_frame
from services.features.demand import build_serving_frame

#: The cost outputs the planner takes as parameters besides unit cost and hours per unit.
COST_PARAMETERS = (
    "run_cost",
    "setup_hours",
    "family_setup_hours",
    "family_setup_cost",
    "overtime_cost_per_hour",
)

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
    levels: Sequence[float] | None = None,
) -> tuple[pd.DataFrame, int]:
    """Every served quantile per (variant, week) for weeks origin+1..origin+horizon, and the
    version: columns ``variant_id``, ``target_week``, one per level (``p05`` .. ``p95``) and
    ``mean``, the distribution's mean (:func:`services.common.quantiles.mean`).

    ``levels``: the served model's levels (its metadata's ``outputs[0].quantiles``), default
    ``QUANTILES``; the output must have one column per level.
    """
    features = build_serving_frame(frames, origin_week, variants, horizon)
    outputs, version = predict("demand", frame_to_arrays(features, inputs))
    q = np.asarray(outputs["quantiles"], dtype=float)
    lv = tuple(float(x) for x in (levels or QUANTILES))
    if q.ndim != 2 or q.shape[1] != len(lv):
        raise FailedPrecondition(
            f"the served demand model returns quantiles of shape {list(q.shape)}, not "
            f"[N, {len(lv)}] for the levels {lv}: retrain it (`tailorline train`)",
            field="demand",
        )
    q = np.maximum(np.sort(q, axis=1), 0.0)  # never crossing, never negative
    table = pd.DataFrame(
        {
            "variant_id": features["variant_id"].astype(str).to_numpy(),
            "target_week": pd.to_datetime(features["target_week"]).to_numpy(),
        }
    )
    for i, level in enumerate(lv):
        table[column(level)] = q[:, i]
    table["mean"] = quantile_mean(q, lv)
    return table, version


def quantile_matrix(table: pd.DataFrame, levels: Sequence[float] = QUANTILES) -> np.ndarray:
    """The forecast table's quantile columns as ``[N, len(levels)]`` (for
    :func:`services.common.quantiles.interpolate` and :func:`~services.common.quantiles.sample`)."""
    cols = [column(q) for q in levels]
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise ValueError(f"the forecast table has no column {missing[0]} (levels {tuple(levels)})")
    return table[cols].to_numpy(dtype=float)


def estimate_costs(
    frames: Mapping[str, pd.DataFrame],
    variants: Sequence[Any],
    predict: PredictFn,
    inputs: Sequence[tuple[str, str]],
) -> tuple[pd.DataFrame, int]:
    """Unit cost and processing hours per unit for every eligible (variant, line) pair; with a
    cost model that has them, also ``family_id`` and the :data:`COST_PARAMETERS` columns."""
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
    # lot-size and changeover figures (docs/model-interface.md), where the served version has them
    if "run_cost" in outputs:
        table.insert(1, "family_id", features["family_id"].astype(str).to_numpy())
        for name in COST_PARAMETERS:
            if name in outputs:
                table[name] = np.asarray(outputs[name], dtype=float).reshape(-1)
    return table, version
