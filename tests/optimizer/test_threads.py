"""Solves with different thread counts in one process (a service answering many requests)."""

from __future__ import annotations

import pytest

from optimizer import SolveOptions, solve
from optimizer.core.synthetic import synthetic_problem


def test_a_different_thread_count_still_finds_the_plan() -> None:
    problem = synthetic_problem(6, 4, 2, seed=1)
    objectives = []
    for threads in (None, 1, 2, 1):
        plan = solve(problem, SolveOptions(time_limit_s=20, threads=threads, explain=False))
        assert plan.status == "optimal", (threads, plan.message)
        objectives.append(plan.objective)
    assert objectives == pytest.approx([objectives[0]] * 4, rel=1e-4)
