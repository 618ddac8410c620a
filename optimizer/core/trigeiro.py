"""Read Trigeiro, Thomas & McClain (1989) capacitated lot-sizing files into a CLSP-mode problem.

Format (../shared/data/lotsizing/trigeiro/README.md): ``n T`` / an unused number / capacity ``C`` /
n rows ``b_i h_i st_i sc_i`` / demand, one row per period and one column per item, in blocks of at
most 15 items (items 16..n follow in a second block of T rows). Trailing word lines are a legend.
Rows are read line by line and each keeps its first k numbers: one G73 row carries a stray
extra value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from optimizer.core.errors import ProblemInvalid
from optimizer.core.problem import FirmOrder, Line, PlanningProblem, Route, Variant

BLOCK = 15


@dataclass(frozen=True)
class TrigeiroInstance:
    name: str
    items: int
    periods: int
    capacity: float
    b: tuple[float, ...]
    h: tuple[float, ...]
    st: tuple[float, ...]
    sc: tuple[float, ...]
    demand: tuple[tuple[float, ...], ...]  # demand[i][t]


def _numbers(line: str) -> list[float] | None:
    parts = line.split()
    try:
        return [float(p) for p in parts]
    except ValueError:
        return None


def parse(text: str, name: str = "") -> TrigeiroInstance:
    """Parse the file text; a malformed file raises ProblemInvalid naming the line."""
    rows: list[list[float]] = []
    for raw in text.splitlines():
        nums = _numbers(raw)
        if nums is None:  # the legend: data ends here
            break
        if nums:
            rows.append(nums)
    try:
        n, periods = int(rows[0][0]), int(rows[0][1])
        capacity = rows[2][0]
        items = rows[3 : 3 + n]
        if len(items) != n or any(len(r) < 4 for r in items):
            raise ProblemInvalid("file", f"expected {n} item rows of 4 numbers")
        demand = [[0.0] * periods for _ in range(n)]
        cursor = 3 + n
        for start in range(0, n, BLOCK):
            width = min(BLOCK, n - start)
            for t in range(periods):
                row = rows[cursor]
                if len(row) < width:
                    raise ProblemInvalid("file", f"demand row {cursor + 1} has {len(row)} values")
                for k in range(width):
                    demand[start + k][t] = row[k]
                cursor += 1
    except IndexError as exc:
        raise ProblemInvalid("file", "truncated: fewer rows than the header announces") from exc
    except (TypeError, ValueError) as exc:
        raise ProblemInvalid("file", str(exc)) from exc
    return TrigeiroInstance(
        name=name,
        items=n,
        periods=periods,
        capacity=capacity,
        b=tuple(r[0] for r in items),
        h=tuple(r[1] for r in items),
        st=tuple(r[2] for r in items),
        sc=tuple(r[3] for r in items),
        demand=tuple(tuple(d) for d in demand),
    )


def read(path: str | Path) -> TrigeiroInstance:
    p = Path(path)
    if not p.is_file():
        raise ProblemInvalid("file", f"{p} does not exist")
    return parse(p.read_text(encoding="latin-1"), name=p.name)


def to_problem(inst: TrigeiroInstance) -> PlanningProblem:
    """The CLSP as a PlanningProblem: one line, every demand a firm order due in its period,
    backlog forbidden, no revenue and no production cost."""
    periods = tuple(f"t{t + 1}" for t in range(inst.periods))
    ids = [f"item{i + 1}" for i in range(inst.items)]
    zeros = tuple(0.0 for _ in periods)
    variants = tuple(
        Variant(
            id=ids[i],
            price=zeros,
            demand=tuple((0.0,) for _ in periods),
            holding_cost=inst.h[i],
        )
        for i in range(inst.items)
    )
    line = Line(id="line", capacity_hours=tuple(inst.capacity for _ in periods))
    routes = tuple(
        Route(
            variant=ids[i],
            line="line",
            hours_per_unit=inst.b[i],
            setup_hours=inst.st[i],
            setup_cost=inst.sc[i],
        )
        for i in range(inst.items)
    )
    orders = tuple(
        FirmOrder(id=f"{ids[i]}-t{t + 1}", variant=ids[i], quantity=inst.demand[i][t], due_period=t)
        for i in range(inst.items)
        for t in range(inst.periods)
        if inst.demand[i][t] > 0
    )
    return PlanningProblem(
        periods=periods,
        variants=variants,
        lines=(line,),
        routes=routes,
        orders=orders,
        allow_backlog=False,
        mode="clsp",
        name=inst.name,
    )
