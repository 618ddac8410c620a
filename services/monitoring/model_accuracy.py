"""Accuracy per family and complete week, for the demand or the cost model (GetAccuracy).

Demand: :func:`services.monitoring.forecast_errors` (served quantiles against orders); cost:
:func:`services.monitoring.cost.cost_errors` (recorded predictions against production). The last
``weeks`` complete weeks before the as-of week, optionally only some families; the columns of
:data:`services.monitoring.FAMILY_COLUMNS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import pandas as pd
from sqlalchemy import Engine

from services.monitoring.accuracy import FAMILY_COLUMNS, WEEK, as_of_week, forecast_errors
from services.monitoring.cost import _as_of, cost_errors

ACCURACY_MODELS = ("demand", "cost")


def model_accuracy(
    engine: Engine,
    model: str,
    weeks: int = 13,
    families: Sequence[str] = (),
    as_of: date | datetime | str | None = None,
) -> pd.DataFrame:
    """Per (family, complete week) of the last ``weeks``: actual, forecast, wape, bias, ..."""
    if model == "cost":
        cutoff = _as_of(engine, as_of)
        since = None if cutoff is None else (pd.Timestamp(cutoff) - weeks * WEEK).date()
        table = cost_errors(engine, since=since, as_of=as_of)
    else:
        cutoff = as_of_week(engine, as_of)
        since = None if cutoff is None else (pd.Timestamp(cutoff) - weeks * WEEK).date()
        table = forecast_errors(engine, model_name="demand", since=since, as_of=as_of)
    if families and len(table):
        table = table[table["family_id"].isin(list(families))]
    if not len(table):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in FAMILY_COLUMNS})
    return table.sort_values(["week", "family_id"]).reset_index(drop=True)
