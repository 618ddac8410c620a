"""What planning needs beyond demand: the cost inputs, checked before anything is asked.

A demand-only data set (families, variants, orders) trains and serves the demand model, but a
plan also needs the lines that make the products (capacities, which line makes which family) and
the production records the cost model learns unit costs and processing times from. Without them
planning answers FAILED_PRECONDITION naming what is missing, instead of a predictor error or an
empty problem.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from services.common.errors import FailedPrecondition

#: table -> what planning uses it for
COST_INPUTS = {
    "lines": "lines (weekly capacity hours)",
    "line_eligibility": "line_eligibility (which line makes which family)",
    "production": "production records (the cost and processing-time model is trained on them)",
}


def missing_cost_inputs(frames: Mapping[str, pd.DataFrame]) -> list[str]:
    """The cost-input tables that are absent or empty, in :data:`COST_INPUTS` order."""
    return [t for t in COST_INPUTS if frames.get(t) is None or frames[t].empty]


def require_cost_inputs(frames: Mapping[str, pd.DataFrame]) -> None:
    """FailedPrecondition (field: the first missing table) when a cost input is missing."""
    missing = missing_cost_inputs(frames)
    if missing:
        raise FailedPrecondition(
            "planning needs cost inputs this store does not have: "
            + "; ".join(COST_INPUTS[t] for t in missing)
            + ". Ingest them (docs/data-format.md) and run `tailorline train`",
            field=missing[0],
        )
