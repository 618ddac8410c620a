"""tailorline optimizer: production planning as a Pyomo MIP solved by HiGHS.

Two parts: :mod:`optimizer.core` (problem types, model, solver, heuristics, explanation; plain
Python, depends on nothing in ``services/``, no gRPC or Ray) and :mod:`optimizer.serving` (the Ray
Serve application, its gRPC servicer and status mapping, the one client, the local runner, the
CLI). The core's public surface is re-exported here:
``from optimizer import solve, PlanningProblem``.
"""

from __future__ import annotations

from optimizer.core import *  # noqa: F403  (the core's __all__ is this package's surface)
from optimizer.core import __all__ as __all__
