"""HiGHS through Pyomo's persistent interface (``pyomo.contrib.solver``), kept in one place.

:class:`Session` owns one persistent HiGHS instance for one model: the first ``run`` translates
the model, later ones send only what changed (variable bounds and domains, which is all the
heuristics and the shadow-price LP change). Every run returns a :class:`RunResult` with the status
checked, objective, bound, gap and the time spent translating versus solving.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition
from pyomo.contrib.solver.solvers.highs import Highs

from optimizer.core.problem import Status

_UPDATE_KEYS = (
    "check_for_new_or_removed_constraints",
    "check_for_new_or_removed_vars",
    "check_for_new_or_removed_params",
    "check_for_new_objective",
    "update_constraints",
    "update_vars",
    "update_parameters",
    "update_named_expressions",
    "update_objective",
)
_INFEASIBLE = {TerminationCondition.provenInfeasible, TerminationCondition.infeasibleOrUnbounded}


@dataclass(frozen=True)
class RunResult:
    status: Status
    objective: float | None
    bound: float | None
    gap: float | None
    translate_s: float
    solve_s: float
    message: str = ""

    @property
    def has_solution(self) -> bool:
        return self.status in ("optimal", "feasible")


#: Seconds a MIP run must have left to be tried again without a start HiGHS misread.
MIN_RETRY_S = 0.05


def _same_value(a: float, b: float) -> bool:
    """Whether two objective values agree to HiGHS's tolerances."""
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def _reported(res: RunResult, worth: float, bound: float | None, misread: bool) -> RunResult:
    """``res`` with the plan's worth as its objective and the gap to match; ``misread`` (HiGHS's
    own figure was not the plan's worth): "optimal" only if the plan is within 1e-6 of the
    bound."""
    gap = relative_gap(worth, bound)
    status = res.status
    if misread and status == "optimal" and (gap is None or gap > 1e-6):
        status = "feasible"
    return replace(res, status=status, objective=worth, bound=bound, gap=gap)


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    if objective is None or bound is None:
        return None
    diff = abs(objective - bound)
    if diff <= 1e-9:
        return 0.0
    return diff / max(abs(objective), 1e-9)


#: Thread count HiGHS's process-wide task scheduler was started with (None: not yet started).
_scheduler_threads: int | None = None


def _use_threads(threads: int | None) -> None:
    """HiGHS starts one scheduler per process, sized by the first solve's ``threads``; a later
    solve asking for another count gets no solution (status unknown) unless it is reset."""
    global _scheduler_threads
    wanted = threads or 0  # 0: HiGHS's default
    if _scheduler_threads is not None and _scheduler_threads != wanted:
        import highspy

        highspy.Highs.resetGlobalScheduler(True)
    _scheduler_threads = wanted


class Session:
    """One persistent HiGHS for one Pyomo model."""

    def __init__(self, model: pyo.ConcreteModel, threads: int | None = None) -> None:
        self.model = model
        self.opt = Highs(treat_fixed_vars_as_params=False)
        self.threads = threads
        self.translated = False
        self.translate_total = 0.0  # seconds spent sending the model/changes and reading back
        self.solve_total = 0.0  # seconds HiGHS ran
        # the model's integer columns (setups): whether a run is an LP or a MIP
        self._discrete = [
            v for v in model.component_data_objects(pyo.Var, descend_into=True) if v.is_integer()
        ]

    def update_variables(self, variables: Iterable[pyo.Var]) -> None:
        """Send the bounds, domain and fixing of ``variables`` as they stand now, each once.

        Pyomo passes the list to HiGHS's ``changeColsBounds``/``changeColsIntegrality``, which
        reject a set with a repeated index (``kError``, nothing changed) while Pyomo ignores
        the status: a variable listed twice (relaxed, then fixed, before one run) left every
        variable of the call as it was in HiGHS. Fix-and-optimize's overlapping windows did
        that, and its "LP over the fixed setups" was then a MIP with those setups free, which
        ran 29 s past a 1 s limit (``tests/optimizer/test_solver.py``)."""
        unique = list({id(v): v for v in variables}.values())
        if unique:
            self.opt.update_variables(unique)

    def translate(self) -> float:
        """Send the whole model to HiGHS (done by the first run otherwise)."""
        t0 = time.perf_counter()
        self.opt.set_instance(self.model)
        self.translated = True
        spent = time.perf_counter() - t0
        self.translate_total += spent
        return spent

    def run(
        self,
        time_limit_s: float,
        mip_rel_gap: float = 1e-4,
        *,
        start: bool = False,
        changed: list[pyo.Var] | None = None,
        lp: str | None = None,
        mip: bool | None = None,
    ) -> RunResult:
        """Solve. ``start`` passes the variables' current values to HiGHS as a MIP start;
        ``changed`` lists the only variables whose bounds, domain or fixing changed since the
        last run, which spares Pyomo's scan of the whole model (None: scan everything).
        ``lp="ipm"`` solves an LP with the interior point method and crossover, ``"ipm_raw"``
        without crossover (values only, much faster on big LPs than dual simplex). ``mip``
        says whether the model has free integer columns now (None: the setups and changeovers
        are checked; a caller that made other columns integer says so)."""
        quick = False
        translate = 0.0
        if not self.translated:
            translate = self.translate()
            quick = True
        elif changed is not None:
            t0 = time.perf_counter()
            self.update_variables(changed)
            translate = time.perf_counter() - t0
            self.translate_total += translate
            quick = True
        is_mip = self._is_mip() if mip is None else mip
        began = time.perf_counter()
        if start:
            self._set_start()
        res = self._solve(time_limit_s, mip_rel_gap, lp, is_mip, quick)
        res = replace(res, translate_s=res.translate_s + translate)
        if not (is_mip and res.has_solution and res.objective is not None):
            return res
        # the plan's worth is the objective at the values loaded, never HiGHS's own figure
        worth = float(pyo.value(self._objective))
        misread = not _same_value(worth, res.objective)
        res = _reported(res, worth, res.bound, misread)
        if not misread or not start:
            return res
        left = time_limit_s - (time.perf_counter() - began)
        return self._retry_without_start(res, left, mip_rel_gap, lp)

    def _retry_without_start(
        self, res: RunResult, left: float, mip_rel_gap: float, lp: str | None
    ) -> RunResult:
        """HiGHS 1.16.0 maps a MIP start into its presolved space wrongly on some models: on a
        2-period plan it logged the start's worth as 21.9, then 28.9 "in the reduced space",
        proved 28.9 optimal and returned the start itself (tests/optimizer/test_solver.py; not
        seen with 1.15.1 or without presolve). Its incumbent then cuts off better plans. So the
        MIP runs again without the start in the time left; its plan is kept when it is worth at
        least the first run's, else the first run's values come back (HiGHS checked them
        feasible; ``res`` states their worth)."""
        maximise = self._objective.sense == pyo.maximize
        first = [(v, v.value) for v in self.model.component_data_objects(pyo.Var)]
        retry = None
        if left >= MIN_RETRY_S:
            self.opt._solver_model.clearSolver()  # the start and the solution HiGHS kept
            retry = self._solve(left, mip_rel_gap, lp, True, True)
        spent_t = res.translate_s + (retry.translate_s if retry else 0.0)
        spent_s = res.solve_s + (retry.solve_s if retry else 0.0)
        bounds = [b for b in (res.bound, retry.bound if retry else None) if b is not None]
        bound = (min(bounds) if maximise else max(bounds)) if bounds else None
        worth = res.objective
        assert worth is not None
        if retry is not None and retry.has_solution:
            again = float(pyo.value(self._objective))
            if again >= worth - 1e-9 if maximise else again <= worth + 1e-9:
                assert retry.objective is not None
                kept = _reported(retry, again, bound, not _same_value(again, retry.objective))
                return replace(
                    kept,
                    translate_s=spent_t,
                    solve_s=spent_s,
                    message=retry.message + " (MIP start dropped: HiGHS misread it)",
                )
        for var, val in first:
            var.set_value(val, skip_validation=True)
        kept = _reported(res, worth, bound, True)
        return replace(
            kept,
            status="feasible",
            translate_s=spent_t,
            solve_s=spent_s,
            message=res.message + " (HiGHS misread the MIP start; no better plan without it)",
        )

    @property
    def _objective(self) -> Any:
        return next(self.model.component_data_objects(pyo.Objective, active=True))

    def _solve(
        self, time_limit_s: float, mip_rel_gap: float, lp: str | None, is_mip: bool, quick: bool
    ) -> RunResult:
        """One HiGHS run on the instance as it stands, its solution (if any) loaded."""
        # HiGHS's run clock accumulates over the runs of one instance (its time limit does
        # not: it holds per run), so this run's solve time is the clock's difference.
        clock0 = float(self.opt._solver_model.getRunTime())
        # HiGHS 1.16 compares an LP's time limit with that clock (a MIP's with its own run): an
        # LP after ~60 s of earlier runs stopped at once with "time limit" (no solution, or a
        # "feasible" one that is not optimal), so an LP's limit is the clock plus what it may take.
        limit = max(0.05, time_limit_s)
        if not is_mip:
            limit += clock0
        options = {
            "time_limit": limit,
            "rel_gap": mip_rel_gap,
            "load_solutions": False,
            "raise_exception_on_nonoptimal_result": False,
            "solver_options": {
                "output_flag": False,
                "log_to_console": False,
                "solver": "ipm" if lp in ("ipm", "ipm_raw") else "choose",
                "run_crossover": "off" if lp == "ipm_raw" else "on",
            },
        }
        if self.threads:
            options["threads"] = self.threads
        if quick:
            options["auto_updates"] = dict.fromkeys(_UPDATE_KEYS, False)
        _use_threads(self.threads)
        t1 = time.perf_counter()
        res = self.opt.solve(self.model, **options)
        wall = time.perf_counter() - t1
        highs_s = max(0.0, float(res.timing_info.highs_time or 0.0) - clock0)
        term = res.termination_condition
        has_sol = res.solution_status in (SolutionStatus.optimal, SolutionStatus.feasible)
        t2 = time.perf_counter()
        if has_sol:
            res.solution_loader.load_vars()
        load = time.perf_counter() - t2
        overhead = max(0.0, wall - highs_s) + load  # update scans, option setting, loading
        self.translate_total += overhead
        self.solve_total += highs_s
        if term == TerminationCondition.convergenceCriteriaSatisfied and has_sol:
            status: Status = "optimal"
        elif has_sol:
            status = "feasible"
        elif term in _INFEASIBLE:
            status = "infeasible"
        elif term == TerminationCondition.error:
            status = "error"
        else:
            status = "no_solution"
        obj = res.incumbent_objective if has_sol else None
        bound = res.objective_bound
        if bound is not None and not np.isfinite(bound):
            bound = None
        return RunResult(
            status=status,
            objective=None if obj is None else float(obj),
            bound=None if bound is None else float(bound),
            gap=relative_gap(obj, bound),
            translate_s=overhead,
            solve_s=highs_s,
            message=str(term.name),
        )

    def _is_mip(self) -> bool:
        """Whether the model has a free integer column now (setups relaxed or fixed: an LP)."""
        return any(v.is_integer() and not v.fixed for v in self._discrete)

    def _set_start(self) -> None:
        """MIP start from the current values of every variable, fixed ones included."""
        var_map = self.opt._pyomo_var_to_solver_var_map
        idx: list[int] = []
        vals: list[float] = []
        for var in self.model.component_data_objects(pyo.Var, descend_into=True):
            if var.value is None:
                continue
            k = var_map.get(id(var))
            if k is not None:
                idx.append(k)
                vals.append(float(var.value))
        if idx:
            self.opt._solver_model.setSolution(
                len(idx), np.array(idx, dtype=np.int32), np.array(vals, dtype=np.double)
            )

    def duals(self, constraints: Iterable[pyo.Constraint]) -> dict[Any, float]:
        """Duals of the last (LP) solve, keyed by constraint data object."""
        cons = [c for comp in constraints for c in comp.values()]
        if not cons:
            return {}
        return dict(self.opt._get_duals(cons))
