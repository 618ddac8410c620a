"""Planning: from a plan request, the store's data and the models' predictions to a stored plan.

- :mod:`~services.planning.request`: the one :class:`PlanRequest` (and :class:`Scenario`), its
  defaults and every check of a plan input;
- :mod:`~services.planning.builder`: the store's frames and the predictions -> the optimizer's
  ``PlanningProblem`` (plain pandas and dataclasses);
- :mod:`~services.planning.predictions`: demand quantiles and cost estimates from any ``predict``;
- :mod:`~services.planning.service`: the :class:`~services.planning.service.Planner` that
  orchestrates them against a store and injected downstreams.

The gateway calls it with predictions fetched from the model server, the demo and the simulator
with predictions made in-process. Nothing here imports grpc, ray, kserve or typer.
"""

from services.planning.builder import build_problem, default_variants, variant_bom
from services.planning.request import (
    DEFAULT_HORIZON,
    DEFAULT_SERVICE_LEVEL,
    MAX_HORIZON,
    NewVariant,
    PlanRequest,
    Scenario,
    check_service_level,
)

__all__ = [
    "DEFAULT_HORIZON",
    "DEFAULT_SERVICE_LEVEL",
    "MAX_HORIZON",
    "NewVariant",
    "PlanRequest",
    "Scenario",
    "build_problem",
    "check_service_level",
    "default_variants",
    "variant_bom",
]
