"""A self-contained HTML report of a plan: tables and inline SVG charts, no JavaScript, no CDN.

Charts: the plan's profit over its demand scenarios (P10-P90 and expected), demand quantiles
(P10-P90 band and P50) per family and week next to the planned production, hours used vs
capacity per line and week, and the plan's cost breakdown. Everything is escaped; the file
opens offline.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from optimizer import Plan

_W, _H, _PAD = 560, 220, 40
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def _scale(values: Sequence[float], lo: float, hi: float, a: float, b: float) -> list[float]:
    span = (hi - lo) or 1.0
    return [a + (v - lo) / span * (b - a) for v in values]


def band_chart(
    title: str,
    labels: Sequence[str],
    p10: Sequence[float],
    p50: Sequence[float],
    p90: Sequence[float],
    supply: Sequence[float] | None = None,
) -> str:
    """P10-P90 band with the P50 line over the weeks in ``labels``, and the planned
    ``supply`` (units produced per week) as an orange step line when given."""
    n = len(labels)
    top = max([*p90, *(supply or ()), 1.0])
    xs = _scale(list(range(n)), 0, max(n - 1, 1), _PAD, _W - 10)
    y = lambda vs: _scale(vs, 0, top, _H - 25, 10)  # noqa: E731
    upper, lower, mid = y(list(p90)), y(list(p10)), y(list(p50))
    band = " ".join(f"{x:.1f},{v:.1f}" for x, v in zip(xs, upper, strict=True))
    band += " " + " ".join(
        f"{x:.1f},{v:.1f}" for x, v in zip(reversed(xs), reversed(lower), strict=True)
    )
    line = " ".join(f"{x:.1f},{v:.1f}" for x, v in zip(xs, mid, strict=True))
    made = ""
    if supply is not None:
        ys = y(list(supply))
        made = (
            '<polyline points="'
            + " ".join(f"{x:.1f},{v:.1f}" for x, v in zip(xs, ys, strict=True))
            + '" fill="none" stroke="#ff7f0e" stroke-width="2" stroke-dasharray="6 3"/>'
        )
    return (
        f"<figure><figcaption>{html.escape(title)}</figcaption>"
        f'<svg width="{_W}" height="{_H}" role="img">'
        f'<polygon points="{band}" fill="#1f77b4" fill-opacity="0.25"/>'
        f'<polyline points="{line}" fill="none" stroke="#1f77b4" stroke-width="2"/>{made}'
        f'<text x="4" y="14" font-size="11">{top:,.0f}</text>'
        f'<text x="4" y="{_H - 25}" font-size="11">0</text>'
        f'<text x="{_PAD}" y="{_H - 8}" font-size="11">{html.escape(labels[0])}</text>'
        f'<text x="{_W - 80}" y="{_H - 8}" font-size="11">{html.escape(labels[-1])}</text>'
        "</svg></figure>"
    )


def capacity_chart(
    title: str,
    labels: Sequence[str],
    used: Sequence[float],
    capacity: Sequence[float],
    overtime: Sequence[float],
) -> str:
    """Bars of hours used per week against the regular capacity (dashed) and overtime (red)."""
    n = len(labels)
    top = max([*(u for u in used), *(c + o for c, o in zip(capacity, overtime, strict=True)), 1.0])
    bw = (_W - _PAD - 10) / max(n, 1)
    parts = []
    for k in range(n):
        h = used[k] / top * (_H - 35)
        x = _PAD + k * bw
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{_H - 25 - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" '
            f'fill="#2ca02c"><title>{html.escape(labels[k])}: {used[k]:.1f} h</title></rect>'
        )
        cy = _H - 25 - capacity[k] / top * (_H - 35)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x + bw:.1f}" y1="{cy:.1f}" y2="{cy:.1f}" '
            'stroke="#333" stroke-dasharray="4 2"/>'
        )
        if overtime[k] > 0:
            oy = _H - 25 - (capacity[k] + overtime[k]) / top * (_H - 35)
            parts.append(
                f'<line x1="{x:.1f}" x2="{x + bw:.1f}" y1="{oy:.1f}" y2="{oy:.1f}" '
                'stroke="#d62728"/>'
            )
    return (
        f"<figure><figcaption>{html.escape(title)}</figcaption>"
        f'<svg width="{_W}" height="{_H}" role="img">{"".join(parts)}'
        f'<text x="4" y="14" font-size="11">{top:,.0f} h</text>'
        f'<text x="{_PAD}" y="{_H - 8}" font-size="11">{html.escape(labels[0])}</text>'
        f'<text x="{_W - 80}" y="{_H - 8}" font-size="11">{html.escape(labels[-1])}</text>'
        "</svg></figure>"
    )


def profit_chart(expected: float, p10: float | None, p90: float | None, scenarios: int) -> str:
    """The plan's profit over its demand scenarios: the P10-P90 range and the expected value."""
    if p10 is None or p90 is None or not scenarios:
        return (
            f"<p>Profit {expected:,.0f} EUR for the planned demand quantile (quantile mode: one "
            "demand value per week, no spread).</p>"
        )
    lo, hi = min(p10, expected, 0.0), max(p90, expected, 1.0)
    x = lambda v: _PAD + (v - lo) / ((hi - lo) or 1.0) * (_W - _PAD - 20)  # noqa: E731
    return (
        f"<figure><figcaption>Profit over {scenarios} demand scenarios: P10-P90 (bar) and "
        f"expected (line), EUR</figcaption>"
        f'<svg width="{_W}" height="70" role="img">'
        f'<rect x="{x(p10):.1f}" y="15" width="{max(1.0, x(p90) - x(p10)):.1f}" height="24" '
        'fill="#2ca02c" fill-opacity="0.35"/>'
        f'<line x1="{x(expected):.1f}" x2="{x(expected):.1f}" y1="10" y2="44" stroke="#2ca02c" '
        'stroke-width="3"/>'
        f'<text x="{x(p10):.1f}" y="60" font-size="11">P10 {p10:,.0f}</text>'
        f'<text x="{max(x(p10) + 90, x(p90) - 70):.1f}" y="60" font-size="11">P90 {p90:,.0f}'
        f"</text>"
        f'<text x="{x(expected) + 5:.1f}" y="12" font-size="11">expected {expected:,.0f}</text>'
        "</svg></figure>"
    )


def bar_chart(title: str, items: Mapping[str, float]) -> str:
    """Horizontal bars, one per item (e.g. the cost breakdown)."""
    top = max([*items.values(), 1.0])
    rows = []
    for k, (name, value) in enumerate(items.items()):
        w = value / top * (_W - 180)
        y = 8 + k * 22
        rows.append(
            f'<text x="4" y="{y + 13}" font-size="12">{html.escape(name)}</text>'
            f'<rect x="110" y="{y}" width="{w:.1f}" height="16" '
            f'fill="{_COLOURS[k % len(_COLOURS)]}"/>'
            f'<text x="{116 + w:.1f}" y="{y + 13}" font-size="12">{value:,.0f}</text>'
        )
    return (
        f"<figure><figcaption>{html.escape(title)}</figcaption>"
        f'<svg width="{_W}" height="{16 + 22 * len(items)}" role="img">{"".join(rows)}</svg>'
        "</figure>"
    )


def table(frame: pd.DataFrame, max_rows: int = 40) -> str:
    shown = frame.head(max_rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
        for row in shown.itertuples(index=False)
    )
    more = f"<p>{len(frame) - max_rows} more rows not shown.</p>" if len(frame) > max_rows else ""
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}"
    return str(v)


def render(
    *,
    title: str,
    summary: Mapping[str, Any],
    forecast: pd.DataFrame,
    plan: Plan,
    periods: Sequence[str],
    steps: Sequence[tuple[str, str]],
) -> str:
    """The whole page. ``forecast`` needs variant_id, family_id, target_week, p10, p50, p90."""
    fam = (
        forecast.assign(target_week=pd.to_datetime(forecast["target_week"]).dt.date.astype(str))
        .groupby(["family_id", "target_week"])[["p10", "p50", "p90"]]
        .sum()
        .reset_index()
    )
    family_of = dict(zip(forecast["variant_id"], forecast["family_id"], strict=False))
    made: dict[tuple[Any, str], float] = {}
    for pl in plan.lines:
        key = (family_of.get(pl.variant), str(periods[pl.period]))
        made[key] = made.get(key, 0.0) + pl.quantity
    demand_charts = "".join(
        band_chart(
            f"Family {family}: demand P10-P90 (band) and P50 (line) against planned "
            "production (dashed), units/week",
            list(g["target_week"]),
            list(g["p10"]),
            list(g["p50"]),
            list(g["p90"]),
            supply=[made.get((family, w), 0.0) for w in g["target_week"]],
        )
        for family, g in fam.groupby("family_id")
    )
    k = plan.kpis
    profit = profit_chart(plan.costs.profit, k.profit_p10, k.profit_p90, k.scenarios)
    lp = pd.DataFrame([x.to_dict() for x in plan.line_periods])
    capacity_charts = (
        "".join(
            capacity_chart(
                f"Line {line}: hours used (bars) vs regular capacity (dashed) and overtime limit",
                [periods[int(p)] for p in g["period"]],
                list(g["hours_used"]),
                list(g["capacity_hours"]),
                list(g["overtime_hours"]),
            )
            for line, g in lp.groupby("line")
        )
        if len(lp)
        else ""
    )
    c = plan.costs
    costs = {
        "revenue": c.revenue,
        "production": c.production,
        "material": c.material,
        "setup": c.setup,
        "holding": c.holding,
        "overtime": c.overtime,
        "backlog": c.backlog,
        "lost sales": c.lost_sales,
        "change penalty": c.change_penalty,
    }
    cost_title = "Revenue and costs over the horizon"
    if c.end_stock_value:  # expected-profit mode: the stock left at the horizon's end, at cost
        cost_title = "Revenue, the stock left at the end (at cost, part of the profit), and costs"
        costs = {"revenue": c.revenue, "stock left": c.end_stock_value, **costs}
    lines = pd.DataFrame([x.to_dict() for x in plan.lines])
    if len(lines):
        lines["week"] = [periods[int(p)] for p in lines["period"]]
        lines["units"] = lines["quantity"].round().astype(int)
        lines = lines[["week", "line", "variant", "units", "setup"]].sort_values(
            ["week", "line", "variant"]
        )
    summary_rows = pd.DataFrame(
        {"what": list(summary), "value": [str(v) for v in summary.values()]}
    )
    step_rows = pd.DataFrame(steps, columns=["step", "result"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:2px 8px;
text-align:right}}figure{{display:inline-block;margin:0.5em}}figcaption{{font-size:13px}}</style>
</head><body><h1>{html.escape(title)}</h1>
<h2>What ran</h2>{table(step_rows)}
<h2>Plan summary</h2>{table(summary_rows)}
<h2>Profit</h2>{profit}
<h2>Cost breakdown</h2>{bar_chart(cost_title, costs)}
<h2>Demand forecast and planned supply</h2>{demand_charts}
<h2>Plan vs capacity</h2>{capacity_charts}
<h2>Production plan</h2>{table(lines, max_rows=60)}
</body></html>
"""
