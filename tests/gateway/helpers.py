"""Constants and small helpers shared by the gateway tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

TOKEN = "gateway-test-token"
AUTH = (("authorization", f"Bearer {TOKEN}"),)
#: Small enough that the fuzz test's oversized lists are cheap to send.
MAX_VARIANTS = 200
#: The gateway's message limit in the tests (gRPC's own limit is twice this).
MAX_MESSAGE_BYTES = 2 << 20
#: The gateway's cap on a call's deadline in the tests (request_timeout_s, default 120 s): the
#: stack has one Solver replica, so a streamed batch of 16 scenarios of 12 s each needs
#: 16 x 12 s = 192 s in the worst case (tests/gateway/test_replan_stream.py).
REQUEST_TIMEOUT_S = 300.0


def code_of(call: Callable[[], Any]) -> grpc.StatusCode:
    """The status a client sees (OK when the call returns)."""
    try:
        call()
    except grpc.RpcError as exc:
        return exc.code()  # type: ignore[no-any-return, attr-defined]
    return grpc.StatusCode.OK
