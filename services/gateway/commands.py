"""``tailorline gateway`` and ``tailorline plan`` (``up`` is in services/local/commands.py)."""

from __future__ import annotations

from typing import Any

import typer

from services.common.errors import InvalidArgument, Unavailable
from services.planning.request import (
    DEFAULT_DEMAND_MODE,
    DEFAULT_HORIZON,
    DEFAULT_SCENARIO_COUNT,
    DEFAULT_SERVICE_LEVEL,
    DEFAULT_SOLVE_METHOD,
    MAX_HORIZON,
    PlanRequest,
    check_service_level,
)

#: The plan request's fields as ``tailorline plan``'s options, where the names differ.
_OPTION_OF = {
    "demand_mode": "mode",
    "scenario_count": "scenarios",
    "previous_plan_id": "previous-plan",
    "solve_method": "method",
}


def _plan_table(result: Any) -> str:
    """Per week and line: variants, units, setups, hours used / capacity."""
    plan = result.plan
    periods = list(result.periods)
    agg: dict[tuple[int, str], list[float]] = {}
    for ln in plan.lines:
        row = agg.setdefault((ln.period, ln.line), [0, 0.0, 0])
        row[0] += 1
        row[1] += ln.quantity
        row[2] += int(ln.setup)
    hours = {(lp.period, lp.line): (lp.hours_used, lp.capacity_hours) for lp in plan.line_periods}
    out = [f"{'week':<10}  {'line':<6}  {'variants':>8}  {'units':>9}  {'setups':>6}  hours used"]
    for (p, line), (nv, units, setups) in sorted(agg.items()):
        used, cap = hours.get((p, line), (0.0, 0.0))
        week = periods[p] if p < len(periods) else str(p)
        out.append(
            f"{week:<10}  {line:<6}  {int(nv):>8}  {units:>9.0f}  {int(setups):>6}  "
            f"{used:.0f} / {cap:.0f}"
        )
    return "\n".join(out)


def register(app: typer.Typer) -> None:
    @app.command("gateway")
    def gateway(
        ctx: typer.Context,
        host: str | None = typer.Option(None, "--host", help="Bind address (default 127.0.0.1)."),
        port: int | None = typer.Option(None, "--port", min=0, max=65535, help="gRPC port."),
        metrics_port: int | None = typer.Option(
            None, "--metrics-port", min=0, max=65535, help="Prometheus metrics port."
        ),
        predictor: str | None = typer.Option(
            None, "--predictor", help="Predictor V2 gRPC host:port."
        ),
        optimizer: str | None = typer.Option(None, "--optimizer", help="Optimizer gRPC host:port."),
    ) -> None:
        """Run the public gRPC gateway until SIGINT/SIGTERM (what the gateway container runs)."""
        import asyncio
        import logging

        from services.cli import state
        from services.gateway.server import serve
        from services.gateway.settings import GatewaySettings

        core = state(ctx).settings
        overrides: dict[str, Any] = {
            k: v
            for k, v in dict(
                host=host,
                port=port,
                metrics_port=metrics_port,
                predictor_url=predictor,
                optimizer_url=optimizer,
            ).items()
            if v is not None
        }
        settings = GatewaySettings(**overrides)
        logging.basicConfig(
            level=core.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )

        def ready(gw: Any) -> None:
            typer.echo(
                f"gateway listening on {settings.host}:{gw.port} "
                f"(metrics :{gw.metrics_port}; predictor {settings.predictor_url}, "
                f"optimizer {settings.optimizer_url})",
                err=True,
            )

        asyncio.run(serve(settings, core, ready=ready))

    @app.command("plan")
    def plan(
        ctx: typer.Context,
        horizon: int = typer.Option(
            DEFAULT_HORIZON, "--horizon", min=1, max=MAX_HORIZON, help="Planned weeks."
        ),
        mode: str = typer.Option(
            DEFAULT_DEMAND_MODE,
            "--mode",
            help="expected_profit: the mean profit over demand scenarios from the forecast "
            "distribution; quantile: plan --service-level's quantile as if certain.",
        ),
        scenarios: int = typer.Option(
            DEFAULT_SCENARIO_COUNT, "--scenarios", help="Demand scenarios (expected_profit)."
        ),
        week_correlation: float | None = typer.Option(
            None,
            "--week-correlation",
            help="Correlation between any two weeks of a variant's demand in the scenarios, in "
            "[0, 1) (expected_profit; default: measured from the store's forecasts against "
            "their actuals, 0.3 until there are enough).",
        ),
        service_level: float = typer.Option(
            DEFAULT_SERVICE_LEVEL, "--service-level", help="Demand quantile (0, 1), quantile mode."
        ),
        start_week: str = typer.Option("", "--start-week", help="First week (default: next)."),
        previous_plan: str = typer.Option(
            "", "--previous-plan", help="Plan id in force: keep its --frozen-periods weeks."
        ),
        frozen_periods: int = typer.Option(
            0, "--frozen-periods", min=0, help="Weeks that keep the previous plan's quantities."
        ),
        change_penalty: float = typer.Option(
            0.0, "--change-penalty", help="EUR per unit changed against the previous plan."
        ),
        method: str = typer.Option(
            DEFAULT_SOLVE_METHOD,
            "--method",
            help="Solve method: auto, monolithic, relax_and_fix or fix_and_optimize.",
        ),
        gateway_addr: str = typer.Option(
            "", "--gateway", help="Gateway host:port (default: the gateway settings' host:port)."
        ),
        token: str | None = typer.Option(
            None, "--token", envvar="TAILORLINE_TOKEN", help="Bearer token, when auth is on."
        ),
        time_limit_s: float | None = typer.Option(None, "--time-limit", help="Solver seconds."),
        timeout_s: float = typer.Option(300.0, "--timeout", help="Deadline of the call."),
        json_out: bool = typer.Option(False, "--json", help="Print the whole plan as JSON."),
    ) -> None:
        """Make a plan through the running gateway and print it."""
        import grpc
        from google.protobuf import json_format
        from tailorline.optimizer.v1 import plan_pb2, problem_pb2
        from tailorline.v1 import planning_service_pb2 as pb
        from tailorline.v1 import planning_service_pb2_grpc as pb_grpc

        from services.cli import state
        from services.gateway.settings import GatewaySettings

        st = state(ctx)
        check_service_level(service_level, "--service-level")
        if not gateway_addr:
            gs = GatewaySettings()
            gateway_addr = f"{gs.host}:{gs.port}"
            token = token or (gs.auth_token.get_secret_value() if gs.auth_token else None)
        asked = PlanRequest(
            horizon=horizon,
            service_level=service_level,
            demand_mode=mode,
            scenario_count=scenarios,
            previous_plan_id=previous_plan,
            frozen_periods=frozen_periods,
            change_penalty=change_penalty,
            solve_method=method,
            week_correlation=week_correlation,
        )
        try:
            asked.validate()
        except InvalidArgument as exc:  # one line naming the option
            option = _OPTION_OF.get(str(exc.field), str(exc.field).replace("_", "-"))
            raise InvalidArgument(f"--{option}: {exc.reason}") from None
        request = pb.CreatePlanRequest(
            horizon=horizon,
            service_level=service_level,
            start_week=start_week,
            name="cli",
            demand_mode=problem_pb2.DemandMode.Value(f"DEMAND_MODE_{mode.upper()}"),
            scenario_count=scenarios,
            previous_plan_id=previous_plan,
            frozen_periods=frozen_periods,
            change_penalty=change_penalty,
            solve_method=problem_pb2.SolveMethod.Value(f"SOLVE_METHOD_{method.upper()}"),
        )
        if time_limit_s is not None:
            request.time_limit_s = time_limit_s
        if week_correlation is not None:
            request.week_correlation = week_correlation
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        with grpc.insecure_channel(
            gateway_addr, options=[("grpc.max_receive_message_length", 256 << 20)]
        ) as channel:
            stub = pb_grpc.PlanningServiceStub(channel)
            try:
                response = stub.CreatePlan(request, timeout=timeout_s, metadata=metadata)
            except grpc.RpcError as exc:
                code = exc.code()
                msg = f"gateway {gateway_addr}: {code.name}: {exc.details()}"
                if code == grpc.StatusCode.UNAVAILABLE:
                    raise Unavailable(msg + " (is `tailorline up` running?)") from None
                if code == grpc.StatusCode.INVALID_ARGUMENT:
                    raise InvalidArgument(msg) from None
                typer.echo(f"error: {msg}", err=True)
                raise typer.Exit(1) from None
        result = response.result
        if st.json or json_out:
            typer.echo(json_format.MessageToJson(result, preserving_proto_field_name=True))
            return
        p = result.plan
        status = plan_pb2.PlanStatus.Name(p.status)
        typer.echo(
            f"plan {result.plan_id}: {status}, {len(result.periods)} weeks from "
            f"{result.periods[0] if result.periods else '-'}, service level "
            f"{result.service_level:g}, demand model v{result.model_versions.demand}, "
            f"cost model v{result.model_versions.cost}"
        )
        k = p.kpis
        if k.scenarios:
            typer.echo(
                f"expected profit {p.objective:,.0f} (P10 {k.profit_p10:,.0f}, P90 "
                f"{k.profit_p90:,.0f} over {k.scenarios} demand scenarios)  expected fill rate "
                f"{k.fill_rate:.1%}  expected leftover {k.expected_leftover:,.0f} units "
                f"(counted at cost: {p.costs.end_stock_value:,.0f})"
            )
            if result.HasField("week_correlation"):  # an older gateway sends none
                measured = (
                    f"measured on {result.week_correlation_paths:,} forecast paths"
                    if result.week_correlation_paths
                    else "as asked"
                    if week_correlation is not None
                    else "the default"
                )
                typer.echo(
                    f"scenario weeks correlated at {result.week_correlation:.2f} ({measured})"
                )
        else:
            typer.echo(
                f"profit {p.objective:,.0f} (demand at its P{round(result.service_level * 100)})"
                f"  fill rate {k.fill_rate:.1%}  leftover {k.expected_leftover:,.0f} units"
            )
        typer.echo(
            f"revenue {p.costs.revenue:,.0f}  mean utilisation {k.mean_utilisation:.1%}  "
            f"setups {k.setups}  gap {p.gap:.2%}  method {p.method}  solve "
            f"{p.total_time_s:.1f} s  whole units (rounding cost {k.rounding_cost:,.0f})"
        )
        typer.echo(_plan_table(result))
        for b in p.explanation.bottlenecks[:5]:
            typer.echo(
                f"bottleneck: line {b.line} week {result.periods[b.period]} "
                f"({b.utilisation:.0%} used)"
            )
        for note in p.explanation.notes[:5]:
            typer.echo(f"note: {note}")
