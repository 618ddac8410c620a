"""A batch of what-if scenarios planned as a stream: each scenario's plan stored and handed on
as soon as the optimizer has solved it.

Plain Python, like the Planner: the optimizer's streaming call is injected (``solve_stream``: the
gateway passes its client's ``SolveStream`` through :mod:`services.gateway.downstream`). The
scenarios share one forecast and one cost estimate (:meth:`Planner.prepare_batch`); the optimizer
solves each one as a request of its own, so its replicas (and its autoscaler) share the work.
:meth:`ReplanStream.cancel` (from any thread) cancels the scenarios not solved yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from optimizer import Plan, PlanningProblem, SolveOptions
from services.common.errors import Code, TailorlineError, code_of, shown
from services.planning.request import MAX_TIME_LIMIT_S, PlanRequest, Scenario, finite
from services.planning.service import Planner, PlanOutcome, Prepared


class ScenarioResults(Protocol):
    """The optimizer's results as they arrive: ``(scenario id, Plan or its error)``."""

    def __iter__(self) -> Iterator[tuple[str, Plan | Exception]]: ...

    def __next__(self) -> tuple[str, Plan | Exception]: ...

    def cancel(self) -> None: ...


#: ``(base problem, named scenarios, options, budget_s, deadline)`` -> the results as they come.
SolveStreamFn = Callable[
    [PlanningProblem, Sequence[Scenario], SolveOptions | None, float | None, float | None],
    ScenarioResults,
]


def check_budget(budget_s: float | None) -> float | None:
    """A per-scenario time budget: unset, or seconds > 0 and at most ``MAX_TIME_LIMIT_S``."""
    if budget_s is None:
        return None
    return finite(budget_s, "scenario_budget_s", strict=True, high=MAX_TIME_LIMIT_S)


class ReplanStream:
    """One batch's ``(scenario id, stored plan or the error that scenario ended with)``, in the
    order the scenarios are solved. A failure of the whole stream after it started (the
    optimizer went away, the deadline passed) becomes the result of every scenario not answered
    yet; a malformed request (INVALID_ARGUMENT) or a bug propagates."""

    def __init__(
        self,
        planner: Planner,
        prepared: Prepared,
        scenarios: Sequence[Scenario],
        named: Sequence[Scenario],
        results: ScenarioResults,
    ) -> None:
        self._planner = planner
        self._prepared = prepared
        self._given = {sc.id: given for given, sc in zip(scenarios, named, strict=True)}
        self._pending = [sc.id for sc in named]
        self._results = results
        self._failure: Exception | None = None

    @property
    def prepared(self) -> Prepared:
        return self._prepared

    def cancel(self) -> None:
        self._results.cancel()

    def __iter__(self) -> Iterator[tuple[str, PlanOutcome | Exception]]:
        return self

    def __next__(self) -> tuple[str, PlanOutcome | Exception]:
        if self._failure is None:
            try:
                sid, result = next(self._results)
            except StopIteration:
                if not self._pending:
                    raise
                missing = _ids(self._pending)
                self._failure = TailorlineError(f"the optimizer sent no result for {missing}")
            except Exception as exc:
                if code_of(exc) in (None, Code.INVALID_ARGUMENT):
                    raise
                self._failure = exc
            else:
                self._pending.remove(sid)
                if isinstance(result, Exception):
                    return sid, result
                return sid, self._planner.store_scenario(self._prepared, self._given[sid], result)
        if not self._pending:
            raise StopIteration
        return self._pending.pop(0), self._failure


def _ids(ids: Sequence[str], most: int = 5) -> str:
    listed = ", ".join(shown(i) for i in ids[:most])
    return listed + (f" and {len(ids) - most} more" if len(ids) > most else "")


def start_replan(
    planner: Planner,
    solve_stream: SolveStreamFn,
    request: PlanRequest,
    scenarios: Sequence[Scenario],
    *,
    budget_s: float | None = None,
    deadline: float | None = None,
) -> ReplanStream:
    """Check the batch, forecast and cost once, and start solving every scenario."""
    check_budget(budget_s)
    prepared, named = planner.prepare_batch(request, scenarios, deadline)
    results = solve_stream(prepared.problem, named, prepared.options, budget_s, deadline)
    return ReplanStream(planner, prepared, scenarios, named, results)


__all__ = ["ReplanStream", "ScenarioResults", "SolveStreamFn", "check_budget", "start_replan"]
