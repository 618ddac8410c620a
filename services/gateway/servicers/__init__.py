"""The tailorline.v1 servicers, one module per service: thin translations between protos and the
plain logic (services.planning, services.ingest, services.training, services.registry).

Errors are raised (``services.common.errors`` or the optimizer's) and turned into statuses by the
error interceptor alone. Blocking work (store, downstream clients) runs in worker threads; every
downstream call gets the request's deadline, capped by ``request_timeout_s``.
"""

from services.gateway.servicers.feedback import FeedbackServicer
from services.gateway.servicers.models import ModelServicer
from services.gateway.servicers.planning import PlanningServicer

__all__ = ["FeedbackServicer", "ModelServicer", "PlanningServicer"]
