"""Fixtures of the optimizer's Ray Serve tests: small planning problems and ONE local Ray + Serve
for the whole session (free ports, stopped at the end), reached by a real gRPC client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from optimizer.core.problem import (
    FirmOrder,
    Line,
    Material,
    MaterialUse,
    PlanningProblem,
    Route,
    Variant,
)


def make_problem(capacity: float = 40.0, periods: int = 3) -> PlanningProblem:
    """Two variants on one line with setups; capacity binds below ~45 h per period."""
    n = periods
    return PlanningProblem(
        periods=tuple(f"2026-W{t + 1:02d}" for t in range(n)),
        variants=(
            Variant(
                id="A",
                price=(10.0,) * n,
                demand=((5.0,),) * n,
                holding_cost=0.5,
                lost_sale_cost=1.0,
            ),
            Variant(id="B", price=(12.0,) * n, demand=((8.0,),) * n, holding_cost=0.5),
        ),
        lines=(Line(id="L1", capacity_hours=(capacity,) * n, setup_hours=1.0, setup_cost=5.0),),
        routes=(
            Route(variant="A", line="L1", unit_cost=2.0),
            Route(variant="B", line="L1", unit_cost=3.0, hours_per_unit=2.0),
        ),
        name="tiny",
    )


def make_infeasible() -> PlanningProblem:
    """A firm order far beyond one period's capacity, backlog forbidden."""
    return replace(
        make_problem(capacity=5.0),
        orders=(FirmOrder(id="O1", variant="B", quantity=100.0, due_period=0),),
        allow_backlog=False,
    )


def make_rich() -> PlanningProblem:
    """Every field set to a non-default value (conversion round trips)."""
    base = make_problem(periods=2)
    return replace(
        base,
        quantiles=(0.1, 0.5, 0.9),
        variants=tuple(
            replace(
                v,
                demand=((1.0, 2.0, 3.5), (0.0, 4.0, 4.25)),
                service_level=0.8,
                backlog_cost=1.5,
                initial_inventory=2.0,
                bom=(MaterialUse(material="FAB", quantity=1.25),),
            )
            for v in base.variants
        ),
        lines=(replace(base.lines[0], overtime_max_hours=4.0, overtime_cost=30.0),),
        routes=(
            replace(base.routes[0], setup_hours=0.5, setup_cost=None, min_lot=3.0),
            replace(base.routes[1], setup_hours=None, setup_cost=7.0),
        ),
        materials=(Material(id="FAB", unit_cost=1.5, stock=10.0, arrivals=(0.0, 20.0)),),
        orders=(
            FirmOrder(id="O1", variant="A", quantity=3.0, due_period=1, price=11.0),
            FirmOrder(id="O2", variant="B", quantity=2.0, due_period=0),
        ),
        allow_backlog=False,
        frozen_periods=1,
        change_penalty=0.25,
        name="rich",
    )


@pytest.fixture
def problems() -> dict[str, Callable[..., PlanningProblem]]:
    return {"tiny": make_problem, "infeasible": make_infeasible, "rich": make_rich}


@pytest.fixture(scope="module")
def optimizer_server() -> Iterator[Any]:
    """Ray (2 CPUs) + Serve with serve_config.yaml deployed, gRPC on a free port."""
    from optimizer.serving import local

    server = local.start(grpc_port=local.free_port(), num_cpus=2, timeout_s=300)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def stub(optimizer_server: Any) -> Iterator[Any]:
    import grpc
    from tailorline.optimizer.v1 import optimizer_service_pb2_grpc as svc_grpc

    with grpc.insecure_channel(optimizer_server.grpc_target) as channel:
        yield svc_grpc.OptimizerServiceStub(channel)
