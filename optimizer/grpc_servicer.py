"""The servicer function Serve's gRPC proxy registers (``grpc_options.grpc_servicer_functions``).

Serve pickles request and response messages between its proxy and the replicas, and pickle finds a
message class through its ``__module__``. protoc bakes the proto's own package path into the
generated code (``tailorline.optimizer.v1.optimizer_service_pb2``) while the code lives under
``services.api``; until ``scripts/gen-protos.sh`` rewrites that name too, :func:`register_aliases`
makes the baked-in name importable (``sys.modules`` entries pointing at the real modules). It is a
no-op once the names agree. Every process that pickles these messages imports this module first:
the proxy through the config's servicer path, the replicas through :mod:`optimizer.serve`.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

from services.api.tailorline.optimizer.v1 import optimizer_service_pb2 as _svc
from services.api.tailorline.optimizer.v1 import optimizer_service_pb2_grpc as _grpc
from services.api.tailorline.optimizer.v1 import plan_pb2 as _plan
from services.api.tailorline.optimizer.v1 import problem_pb2 as _problem


def register_aliases() -> None:
    for module, sample in (
        (_svc, _svc.SolveRequest),
        (_plan, _plan.Plan),
        (_problem, _problem.Line),
    ):
        baked = sample.__module__
        if baked == module.__name__ or baked in sys.modules:
            continue
        # pickle imports the top-level package first, so each parent needs an entry too.
        parts = baked.split(".")
        real_parts = module.__name__.split(".")
        offset = len(real_parts) - len(parts)
        for i in range(1, len(parts)):
            alias, real = ".".join(parts[:i]), ".".join(real_parts[: offset + i])
            sys.modules.setdefault(alias, sys.modules.get(real) or ModuleType(alias))
        sys.modules[baked] = module


def add_OptimizerServiceServicer_to_server(servicer: Any, server: Any) -> None:
    """Serve calls this with its own generic servicer; the proto's function does the work."""
    register_aliases()
    _grpc.add_OptimizerServiceServicer_to_server(servicer, server)


SERVICER_FUNCTION = f"{__name__}:add_OptimizerServiceServicer_to_server"
