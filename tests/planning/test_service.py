"""The Planner's scenario batch and its plans in the store, with a fake optimizer (no processes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

from optimizer import Diagnosis, Infeasible, Plan, PlanningProblem, ProblemInvalid, solve
from optimizer.core.synthetic import synthetic_problem
from services.common.errors import InvalidArgument, NotFound, Unavailable
from services.planning.request import PlanRequest, Scenario
from services.planning.service import Planner, Prepared
from services.store import plans, schema

BASE = PlanRequest(horizon=2, service_level=0.8, name="base")


@pytest.fixture(scope="module")
def problem() -> PlanningProblem:
    """Two variants, one line, two weeks (ISO Mondays, as the Planner's problems have)."""
    return replace(synthetic_problem(2, 2, 1, seed=1), periods=("2026-01-05", "2026-01-12"))


@pytest.fixture(scope="module")
def plan(problem: PlanningProblem) -> Plan:
    return solve(problem)


def _forecast(problem: PlanningProblem) -> pd.DataFrame:
    return pd.DataFrame(
        [
            (v.id, pd.Timestamp(week), *v.demand[t])
            for v in problem.variants
            for t, week in enumerate(problem.periods)
        ],
        columns=["variant_id", "target_week", "p10", "p50", "p90"],
    )


class FakeOptimizer:
    """``solve_batch`` answering each scenario with ``plan`` unless told otherwise."""

    def __init__(self, plan: Plan, answers: dict[str, Exception] | None = None) -> None:
        self.plan = plan
        self.answers = answers or {}
        self.raises: Exception | None = None
        self.calls: list[tuple[PlanningProblem, list[Scenario]]] = []

    def solve_batch(
        self, problem: PlanningProblem, scenarios: Sequence[Scenario], _options: Any, _dl: Any
    ) -> list[tuple[str, Plan | Exception]]:
        self.calls.append((problem, list(scenarios)))
        if self.raises is not None:
            raise self.raises
        return [(s.id, self.answers.get(s.id, self.plan)) for s in scenarios]


def _planner(engine: Engine, problem: PlanningProblem, fake: FakeOptimizer) -> Planner:
    def no_downstream(*_args: Any) -> Any:
        raise AssertionError("not called: prepare is given")

    planner = Planner(
        engine,
        predict=no_downstream,
        inputs=no_downstream,
        solve=no_downstream,
        solve_batch=fake.solve_batch,
    )
    prepared = Prepared(BASE, problem, 3, 4, forecast=_forecast(problem))
    planner.prepare = lambda request, deadline=None: prepared  # type: ignore[method-assign]
    return planner


def test_a_batch_is_one_optimizer_call_and_each_scenario_is_a_stored_plan(
    engine: Engine, problem: PlanningProblem, plan: Plan
) -> None:
    fake = FakeOptimizer(plan, {"tight": Infeasible(Diagnosis(summary="no capacity"))})
    planner = _planner(engine, problem, fake)
    scenarios = [
        Scenario(id="low", service_level=0.5),
        Scenario(demand_factor=2.0),
        Scenario(id="tight", capacity_factors=((problem.lines[0].id, 0.0),)),
    ]
    results = planner.replan_batch(BASE, scenarios)

    [(sent_problem, sent)] = fake.calls
    assert sent_problem is problem
    assert [s.id for s in sent] == ["low", "1", "tight"]  # an unnamed scenario is its index
    assert [sid for sid, _ in results] == ["low", "1", "tight"]
    (_, low), (_, second), (_, tight) = results
    assert isinstance(tight, Infeasible)  # one scenario's failure is its result
    assert not isinstance(low, Exception) and not isinstance(second, Exception)
    assert (low.service_level, second.service_level) == (0.5, 0.8)
    assert low.plan_id != second.plan_id

    again = planner.get_plan(low.plan_id)
    assert again.plan == plan and again.periods == problem.periods
    assert (again.demand_version, again.cost_version, again.service_level) == (3, 4, 0.5)
    stored = plans.load_plan(engine, second.plan_id)
    assert stored is not None
    assert stored.request["scenario"] == {"demandFactor": 2.0}
    assert stored.request["service_level"] == 0.8 and stored.request["name"] == "base"
    with engine.connect() as conn:
        served = conn.execute(select(func.count()).select_from(schema.forecasts_served)).scalar()
        lines = conn.execute(
            select(func.count())
            .select_from(schema.plan_lines)
            .where(schema.plan_lines.c.plan_id == low.plan_id)
        ).scalar()
    assert served == len(problem.variants) * len(problem.periods)  # recorded once per batch
    assert lines == len(plan.lines) + len(plan.variants)


def test_a_malformed_scenario_fails_the_call_before_anything_is_solved(
    engine: Engine, problem: PlanningProblem, plan: Plan
) -> None:
    fake = FakeOptimizer(plan)
    planner = _planner(engine, problem, fake)
    bad = [Scenario(id="a"), Scenario(capacity_factors=(("NO-SUCH-LINE", 2.0),))]
    with pytest.raises(InvalidArgument, match="NO-SUCH-LINE") as err:
        planner.replan_batch(BASE, bad)
    assert err.value.field == 'scenarios[1].capacity_factors["NO-SUCH-LINE"]'
    with pytest.raises(InvalidArgument) as err:
        planner.replan_batch(BASE, [Scenario(service_level=1.0)])
    assert err.value.field == "scenarios[0].service_level"
    with pytest.raises(InvalidArgument):
        planner.replan_batch(BASE, [])
    assert fake.calls == []
    fake.raises = ProblemInvalid("scenarios[0].demand_factor", "the optimizer says no")
    with pytest.raises(ProblemInvalid):  # the optimizer checks the batch too
        planner.replan_batch(BASE, [Scenario()])


def test_an_unreachable_optimizer_is_every_scenarios_result(
    engine: Engine, problem: PlanningProblem, plan: Plan
) -> None:
    fake = FakeOptimizer(plan)
    fake.raises = Unavailable("optimizer is unreachable")
    results = _planner(engine, problem, fake).replan_batch(BASE, [Scenario(), Scenario(id="b")])
    assert [sid for sid, _ in results] == ["0", "b"]
    assert all(r is fake.raises for _, r in results)
    fake.raises = KeyError("a bug")
    with pytest.raises(KeyError):  # not an error a user can act on: the call fails
        _planner(engine, problem, fake).replan_batch(BASE, [Scenario()])


def test_a_plan_that_is_not_stored_is_not_found(engine: Engine, problem: PlanningProblem) -> None:
    planner = _planner(engine, problem, FakeOptimizer(solve(problem)))
    with pytest.raises(NotFound):
        planner.get_plan("0" * 32)
    with pytest.raises(InvalidArgument):
        planner.get_plan("")
    assert plans.load_plan(engine, "0" * 32) is None


def test_a_plan_stored_by_a_newer_version_reads_back_without_the_fields_it_added(
    engine: Engine, problem: PlanningProblem, plan: Plan
) -> None:
    """During a rolling upgrade an older replica reads plans a newer one stored: GetPlan must
    return what it knows, not fail on the fields it does not (before: TypeError, INTERNAL)."""
    planner = _planner(engine, problem, FakeOptimizer(plan))
    [(_, stored)] = planner.replan_batch(BASE, [Scenario(id="new")])
    assert not isinstance(stored, Exception)
    row = plans.load_plan(engine, stored.plan_id)
    assert row is not None
    summary = dict(row.summary)
    newer = dict(summary["plan"], carbon_kg=12.5)  # a field at the top, and nested ones
    newer["kpis"] = dict(newer["kpis"], co2_per_unit=0.4)
    newer["lines"] = [dict(pl, energy_kwh=3.0) for pl in newer["lines"]]
    summary["plan"] = newer
    with engine.begin() as conn:
        conn.execute(
            schema.plans.update()
            .where(schema.plans.c.plan_id == stored.plan_id)
            .values(summary=summary)
        )
    assert planner.get_plan(stored.plan_id).plan == plan
    with pytest.raises(TypeError, match="carbon_kg"):  # a problem or plan given as input: strict
        Plan.from_dict(newer)


def test_only_expected_profit_what_ifs_report_the_week_correlation_and_old_plans_have_none(
    engine: Engine, problem: PlanningProblem, plan: Plan
) -> None:
    drawn = replace(plan, kpis=replace(plan.kpis, scenarios=32))  # an expected-profit plan
    planner = _planner(engine, problem, FakeOptimizer(plan, {"more": drawn}))  # type: ignore[dict-item]
    measured = Prepared(
        BASE, problem, 3, 4, forecast=_forecast(problem), week_correlation=0.2,
        week_correlation_paths=80,
    )  # fmt: skip
    planner.prepare = lambda request, deadline=None: measured  # type: ignore[method-assign]
    results = dict(
        planner.replan_batch(
            BASE, [Scenario(id="quantile", service_level=0.5), Scenario(id="more", demand_factor=2)]
        )
    )
    quantile, more = results["quantile"], results["more"]
    assert not isinstance(quantile, Exception) and not isinstance(more, Exception)
    # a service level makes the what-if a quantile plan: no scenarios were drawn
    assert (quantile.week_correlation, quantile.week_correlation_paths) == (None, 0)
    assert (more.week_correlation, more.week_correlation_paths) == (0.2, 80)
    assert planner.get_plan(more.plan_id).week_correlation == 0.2

    # a plan stored before the correlation was recorded reads back without one
    t = schema.plans
    with engine.begin() as conn:
        summary = conn.execute(select(t.c.summary).where(t.c.plan_id == more.plan_id)).scalar()
        del summary["week_correlation"]
        conn.execute(t.update().where(t.c.plan_id == more.plan_id).values(summary=summary))
    old = planner.get_plan(more.plan_id)
    assert (old.week_correlation, old.week_correlation_paths) == (None, 0)
    assert old.plan == drawn
