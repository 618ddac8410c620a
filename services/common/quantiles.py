"""The demand quantile levels: one definition for the models, the planner and the simulator.

The demand model's output columns are these levels in this order (``p10``, ``p50``, ``p90``), and
the planning problem's ``quantiles`` are the same tuple, so a forecast row enters the optimizer
as it is. Changing the levels changes the model's output contract (docs/model-interface.md).
"""

from __future__ import annotations

#: Quantile levels of the demand forecast, ascending.
QUANTILES: tuple[float, ...] = (0.1, 0.5, 0.9)
#: The forecast table's (and the model output's) column of each level, in the same order.
QUANTILE_COLUMNS: tuple[str, ...] = ("p10", "p50", "p90")

__all__ = ["QUANTILES", "QUANTILE_COLUMNS"]
