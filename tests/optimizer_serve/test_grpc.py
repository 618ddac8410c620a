"""A real gRPC client against the optimizer's Ray Serve application on a local Ray (one per
session, see conftest): plans, batches, and the statuses a client sees for bad requests."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import grpc
import pytest
from tailorline.optimizer.v1 import optimizer_service_pb2 as svc_pb
from tailorline.optimizer.v1 import plan_pb2
from tailorline.optimizer.v1 import problem_pb2 as pb

from optimizer.core.pipeline import solve as solve_in_process  # what the Solver replicas call
from optimizer.core.problem import FirmOrder, SolveOptions
from optimizer.serving.convert import plan_from_proto, problem_to_proto

pytestmark = pytest.mark.integration

METADATA = (("application", "optimizer"),)
OPTIONS = pb.SolveOptions(time_limit_s=30.0, mip_rel_gap=0.0)
# HiGHS fixes its thread pool per process: solve here with the server's thread count (1).
SAME = SolveOptions(time_limit_s=30.0, mip_rel_gap=0.0, threads=1)


def _error(call: Any, request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call(request, metadata=METADATA, timeout=120)
    return err.value


def test_solve_returns_the_plan_the_library_computes(stub: Any, problems: dict[str, Any]) -> None:
    problem = problems["tiny"]()
    response = stub.Solve(
        svc_pb.SolveRequest(problem=problem_to_proto(problem), options=OPTIONS),
        metadata=METADATA,
        timeout=120,
    )
    plan = plan_from_proto(response.plan)
    expected = solve_in_process(problem, SAME)
    assert plan.status == "optimal"
    assert plan.objective == pytest.approx(expected.objective, rel=1e-6)
    assert plan.objective == pytest.approx(plan.costs.profit, rel=1e-6)
    assert sum(x.quantity for x in plan.lines) == pytest.approx(plan.kpis.total_production)


def test_batch_returns_one_plan_per_scenario_in_order(stub: Any, problems: dict[str, Any]) -> None:
    base = problems["tiny"]()
    factors = [0.5, 0.75, 1.0, 1.25]
    request = svc_pb.SolveBatchRequest(
        problem=problem_to_proto(base),
        scenarios=[svc_pb.Scenario(id=f"cap{f}", capacity_factors={"L1": f}) for f in factors[:3]]
        + [svc_pb.Scenario(capacity_factors={"L1": factors[3]})],  # no id: its index
        options=OPTIONS,
    )
    response = stub.SolveBatch(request, metadata=METADATA, timeout=180)
    assert [r.scenario_id for r in response.results] == ["cap0.5", "cap0.75", "cap1.0", "3"]
    assert all(r.WhichOneof("outcome") == "plan" for r in response.results)
    assert all(r.solved_by for r in response.results)  # a Solver replica id each
    objectives = [r.plan.objective for r in response.results]
    for f, objective in zip(factors, objectives, strict=True):
        scaled = replace(base, lines=(replace(base.lines[0], capacity_hours=(40.0 * f,) * 3),))
        expected = solve_in_process(scaled, SAME)
        assert objective == pytest.approx(expected.objective, rel=1e-6)
    assert objectives == sorted(objectives)  # more capacity never earns less
    assert objectives[0] < objectives[-1]


def test_batch_reports_an_infeasible_scenario_next_to_the_plans(
    stub: Any, problems: dict[str, Any]
) -> None:
    base = replace(
        problems["tiny"](),
        orders=(FirmOrder(id="O1", variant="B", quantity=18.0, due_period=0),),
        allow_backlog=False,
    )
    request = svc_pb.SolveBatchRequest(
        problem=problem_to_proto(base),
        scenarios=[
            svc_pb.Scenario(id="ok"),
            svc_pb.Scenario(id="cut", capacity_factors={"L1": 0.1}),
        ],
        options=OPTIONS,
    )
    ok, cut = stub.SolveBatch(request, metadata=METADATA, timeout=180).results
    assert ok.WhichOneof("outcome") == "plan" and ok.plan.status == plan_pb2.PLAN_STATUS_OPTIMAL
    assert cut.WhichOneof("outcome") == "error"
    assert cut.error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert cut.error.message.startswith("infeasible")
    assert cut.error.diagnosis.violations


@pytest.mark.parametrize(
    ("breakage", "field", "reason"),
    [
        ("negative_capacity", "problem.lines[0].capacity_hours[1]", "must be >= 0"),
        ("unknown_order_variant", "problem.orders[0].variant", "unknown variant 'Z'"),
        ("empty_horizon", "problem.periods", "horizon is empty"),
    ],
)
def test_malformed_problem_is_invalid_argument_with_field_and_reason(
    stub: Any, problems: dict[str, Any], breakage: str, field: str, reason: str
) -> None:
    msg = problem_to_proto(problems["tiny"]())
    if breakage == "negative_capacity":
        msg.lines[0].capacity_hours[1] = -5.0
    elif breakage == "unknown_order_variant":
        msg.orders.add(id="O1", variant="Z", quantity=1.0, due_period=0)
    else:
        msg = pb.PlanningProblem()
    err = _error(stub.Solve, svc_pb.SolveRequest(problem=msg))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith(f"{field}: ")
    assert reason in err.details()
    assert ("tailorline-field", field) in [(m.key, m.value) for m in err.trailing_metadata()]


def test_malformed_scenario_fails_the_batch_naming_it(stub: Any, problems: dict[str, Any]) -> None:
    request = svc_pb.SolveBatchRequest(
        problem=problem_to_proto(problems["tiny"]()),
        scenarios=[svc_pb.Scenario(id="a"), svc_pb.Scenario(id="b", capacity_factors={"L7": 2.0})],
    )
    err = _error(stub.SolveBatch, request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "scenarios[1].capacity_factors[\"L7\"]: unknown line 'L7'"


def test_options_above_the_server_ceilings_are_invalid(stub: Any, problems: dict[str, Any]) -> None:
    request = svc_pb.SolveRequest(
        problem=problem_to_proto(problems["tiny"]()), options=pb.SolveOptions(time_limit_s=1e6)
    )
    err = _error(stub.Solve, request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("options.time_limit_s: must be <= 600")
    request.options.Clear()
    request.options.threads = 8
    err = _error(stub.Solve, request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith(
        "options.threads: this server solves with 1 thread(s) (user_config)"
    )


def test_infeasible_problem_is_failed_precondition_with_diagnosis(
    stub: Any, problems: dict[str, Any]
) -> None:
    err = _error(
        stub.Solve, svc_pb.SolveRequest(problem=problem_to_proto(problems["infeasible"]()))
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.details().startswith("infeasible: ")
    metadata = {m.key: m.value for m in err.trailing_metadata()}
    diagnosis = plan_pb2.Diagnosis.FromString(metadata["tailorline-diagnosis-bin"])
    assert diagnosis.summary and diagnosis.violations
    # The details name the constraint the relaxation had to violate most.
    worst = max(diagnosis.violations, key=lambda v: v.amount)
    assert worst.constraint in err.details()


def test_python_client_raises_the_library_errors(
    optimizer_server: Any, problems: dict[str, Any]
) -> None:
    from optimizer.core.errors import Infeasible, ProblemInvalid
    from optimizer.serving.client import OptimizerClient

    with OptimizerClient(optimizer_server.grpc_target, timeout_s=120) as client:
        plan = client.solve(problems["tiny"](), SolveOptions(time_limit_s=30.0, mip_rel_gap=0.0))
        assert plan.objective == pytest.approx(solve_in_process(problems["tiny"](), SAME).objective)
        with pytest.raises(Infeasible) as infeasible:
            client.solve(problems["infeasible"]())
        assert infeasible.value.diagnosis.violations
        bad = replace(problems["tiny"](), orders=(FirmOrder("O", "Z", 1.0, 0),))
        with pytest.raises(ProblemInvalid) as invalid:
            client.solve(bad)
        assert (invalid.value.field, invalid.value.reason) == (
            "problem.orders[0].variant",
            "unknown variant 'Z'",
        )


def test_user_config_knobs_reach_running_replicas(
    optimizer_server: Any, stub: Any, problems: dict[str, Any]
) -> None:
    """Changing the Solver's user_config (what an edited RayService does) changes its ceiling
    without a restart; the file's own values come back afterwards."""
    import time

    from optimizer.serving import local

    original = local.load_config()
    changed = local.load_config()
    solver = next(d for d in changed["applications"][0]["deployments"] if d["name"] == "Solver")
    solver["user_config"].update(default_time_limit_s=20, max_time_limit_s=45)
    request = svc_pb.SolveRequest(
        problem=problem_to_proto(problems["tiny"]()), options=pb.SolveOptions(time_limit_s=50.0)
    )
    try:
        optimizer_server.apply(changed)
        deadline = time.monotonic() + 60
        while True:  # replicas pick the new knobs up asynchronously after the deploy
            err = _error(stub.Solve, request)
            if "45" in err.details() or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.details().startswith("options.time_limit_s: must be <= 45 s")
    finally:
        optimizer_server.apply(original)
    deadline = time.monotonic() + 60
    while True:  # 50 s is within the file's 600 s again
        try:
            plan = stub.Solve(request, metadata=METADATA, timeout=120).plan
            break
        except grpc.RpcError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    assert plan.status == plan_pb2.PLAN_STATUS_OPTIMAL


# --------------------------------------------------------------------------- SolveStream


def _stream_request(
    problem: Any, n: int, *, budget: float | None = None, gap: float = 0.0
) -> svc_pb.SolveStreamRequest:
    batch = svc_pb.SolveBatchRequest(
        problem=problem_to_proto(problem),
        scenarios=[svc_pb.Scenario(id=f"s{k}", demand_factor=1.0 + k / 10) for k in range(n)],
        options=pb.SolveOptions(time_limit_s=30.0, mip_rel_gap=gap),
    )
    request = svc_pb.SolveStreamRequest(batch=batch)
    if budget is not None:
        request.scenario_budget_s = budget
    return request


def test_stream_answers_every_scenario_once_with_the_batch_plans(
    stub: Any, problems: dict[str, Any]
) -> None:
    request = _stream_request(problems["tiny"](), 4)
    streamed = {
        m.result.scenario_id: m.result
        for m in stub.SolveStream(request, metadata=METADATA, timeout=300)
    }
    batch = stub.SolveBatch(request.batch, metadata=METADATA, timeout=300)
    assert sorted(streamed) == ["s0", "s1", "s2", "s3"]
    for r in batch.results:
        assert streamed[r.scenario_id].plan.objective == pytest.approx(r.plan.objective, rel=1e-6)
        assert streamed[r.scenario_id].solved_by


def test_stream_refuses_a_budget_that_is_not_a_positive_number(
    stub: Any, problems: dict[str, Any]
) -> None:
    request = _stream_request(problems["tiny"](), 1, budget=-1.0)
    with pytest.raises(grpc.RpcError) as err:
        list(stub.SolveStream(request, metadata=METADATA, timeout=120))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("scenario_budget_s: must be a finite number")


def test_cancelling_a_stream_stops_the_scenarios_not_started(optimizer_server: Any) -> None:
    """Serve's gRPC proxy passes the client's cancellation to the ingress, whose pending Solver
    calls are cancelled: of 16 queued scenarios only those already running finish. Measured in
    solve times, so a loaded machine slows both sides alike: had the queue gone on, a follow-up
    call would wait for 15 more solves over at most 2 replicas (>= 8 solve times)."""
    import time

    from optimizer.core.synthetic import synthetic_problem
    from optimizer.serving.client import OptimizerClient

    # gap 0 on half a year of 20 variants: every solve runs into its time limit
    hard = synthetic_problem(20, 26, 2, seed=1)
    budget = 12.0
    with OptimizerClient(optimizer_server.grpc_target) as client:
        options = SolveOptions(time_limit_s=60.0, mip_rel_gap=0.0)
        scenarios = [svc_pb.Scenario(id=f"s{k}", demand_factor=1.0 + k / 20) for k in range(16)]
        stream = client.solve_stream(
            hard, scenarios, options, budget_s=budget, deadline=time.monotonic() + 600
        )
        _sid, first = next(stream)
        stream.cancel()
        assert list(stream) == []  # the stream ends at once, no more results
        assert not isinstance(first, Exception)
        solve_s = first.total_time_s
        # a new call waits at most for the solves already running (one per replica), then its own
        t0 = time.monotonic()
        (after,) = list(
            client.solve_stream(
                hard, scenarios[:1], options, budget_s=budget, deadline=time.monotonic() + 600
            )
        )
        waited = time.monotonic() - t0
        assert not isinstance(after[1], Exception)
        assert waited < 4 * max(solve_s, after[1].total_time_s), (waited, solve_s)


def test_cancelling_while_a_result_waits_to_be_read_stops_the_scenarios_not_started(
    optimizer_server: Any,
) -> None:
    """A client that is slow to read (its flow-control window held at 1 KB) has the proxy stuck
    in gRPC's send of the next result when it cancels: the cancellation finds the proxy outside
    its wait for the ingress, where Serve's proxy itself cancels nothing (before
    optimizer.serving.servicer wrapped the stream, the queue went on in 4 runs of 4 and this
    follow-up call waited 5.4-7.0 solve times; with it, 1.0: bench/bench_stream_cancel.py
    --slow-reader). Measured in solve times as above;
    should the second result come late on a loaded machine, the cancellation takes the path of
    the test above instead."""
    import time

    from tailorline.optimizer.v1 import optimizer_service_pb2_grpc as svc_grpc

    from optimizer.core.synthetic import synthetic_problem
    from optimizer.serving.client import OptimizerClient

    hard = synthetic_problem(20, 26, 2, seed=1)
    options = SolveOptions(time_limit_s=2.0, mip_rel_gap=0.0)
    scenarios = [svc_pb.Scenario(id=f"s{k}", demand_factor=1.0 + k / 20) for k in range(16)]
    slow_reader = [
        ("grpc.max_receive_message_length", 256 << 20),
        ("grpc.http2.lookahead_bytes", 1024),  # a plan is ~30 KB: its send waits for reads
        ("grpc.http2.bdp_probe", 0),
    ]
    with grpc.insecure_channel(optimizer_server.grpc_target, options=slow_reader) as channel:
        batch = svc_pb.SolveBatchRequest(
            problem=problem_to_proto(hard),
            scenarios=scenarios,
            options=pb.SolveOptions(time_limit_s=2.0, mip_rel_gap=0.0),
        )
        request = svc_pb.SolveStreamRequest(batch=batch, scenario_budget_s=60.0)
        call = svc_grpc.OptimizerServiceStub(channel).SolveStream(
            request, metadata=METADATA, timeout=600
        )
        first = next(call)
        solve_s = first.result.plan.total_time_s
        time.sleep(2 * solve_s)  # the other replica's result is now in the send, unread
        call.cancel()
    with OptimizerClient(optimizer_server.grpc_target) as client:
        t0 = time.monotonic()
        (after,) = list(
            client.solve_stream(
                hard, scenarios[:1], options, budget_s=60.0, deadline=time.monotonic() + 600
            )
        )
        waited = time.monotonic() - t0
    assert not isinstance(after[1], Exception)
    assert waited < 4 * max(solve_s, after[1].total_time_s), (waited, solve_s)
