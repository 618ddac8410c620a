"""Planning: from the store's data and the models' predictions to an optimizer problem and plan.

Plain pandas and dataclasses; the gateway calls it with predictions fetched from the model
server, the demo and ``tailorline plan --in-process`` with predictions made in-process.
"""

from services.planning.builder import PlanRequest, build_problem, default_variants, variant_bom

__all__ = ["PlanRequest", "build_problem", "default_variants", "variant_bom"]
