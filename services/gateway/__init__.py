"""The gateway: the only public entry of tailorline (gRPC API, clients of predictor and optimizer).

Public surface: :class:`GatewaySettings` (env prefix ``TAILORLINE_GATEWAY_``). The servicers,
clients and server live in their own modules and are imported where they are used.
"""

from services.gateway.settings import GatewaySettings

__all__ = ["GatewaySettings"]
