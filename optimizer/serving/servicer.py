"""The servicer function Serve's gRPC proxy registers (``grpc_options.grpc_servicer_functions``).

Serve pickles request and response messages between its proxy and the replicas, and pickle finds a
message class through its ``__module__``: the generated package ``tailorline`` (gen/, from
protos/) is importable under the very name protoc bakes into the classes, so this is the generated
function as it is, named here so that the Serve config points into this package.
"""

from __future__ import annotations

from tailorline.optimizer.v1.optimizer_service_pb2_grpc import (
    add_OptimizerServiceServicer_to_server,
)

SERVICER_FUNCTION = f"{__name__}:add_OptimizerServiceServicer_to_server"

__all__ = ["SERVICER_FUNCTION", "add_OptimizerServiceServicer_to_server"]
