"""The simulation's HTML report: self-contained, inline SVG, no JavaScript.

First the policies' profit per seed and on the mean, with their share of the hindsight bound and
the comparison of tailorline with the best quantile policy. Then, per seed, charts of cumulative
realised profit per policy (hindsight: its best plan), forecast error (WAPE of the executed
week's P50) and weekly service level (units sold / units ordered); vertical marks where the
fashion shift starts and where a retrain ran (solid: promoted, dashed: kept the served model);
tables of the totals by cost item, the retrains and the registered demand model versions.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

_W, _H, _PAD = 640, 260, 70
COLOURS = {
    "tailorline": "#1f77b4",
    "quantile_0.5": "#9467bd",
    "quantile_0.7": "#8c564b",
    "quantile_0.9": "#e377c2",
    "oracle": "#2ca02c",
    "naive": "#ff7f0e",
    "hindsight": "#7f7f7f",
}


def _esc(x: Any) -> str:
    return html.escape(str(x))


def line_chart(
    title: str,
    series: Mapping[str, Sequence[float]],
    *,
    marks: Sequence[tuple[int, str, bool]] = (),
    fmt: str = ",.0f",
) -> str:
    """One polyline per series over weeks 1..n; ``marks``: (week index, label, solid)."""
    n = max((len(v) for v in series.values()), default=0)
    values = [x for v in series.values() for x in v] or [0.0]
    lo, hi = min(0.0, min(values)), max(values)
    hi = hi if hi > lo else lo + 1.0

    def px(k: float) -> float:
        return _PAD + k / max(n - 1, 1) * (_W - _PAD - 10)

    def py(v: float) -> float:
        return 10 + (hi - v) / (hi - lo) * (_H - 45)

    parts = [
        f'<line x1="{_PAD}" x2="{_W - 10}" y1="{py(0):.1f}" y2="{py(0):.1f}" stroke="#999"/>',
        f'<text x="4" y="{py(hi) + 4:.1f}" font-size="11">{hi:{fmt}}</text>',
        f'<text x="4" y="{py(lo) + 4:.1f}" font-size="11">{lo:{fmt}}</text>',
        f'<text x="{_PAD}" y="{_H - 8}" font-size="11">week 1</text>',
        f'<text x="{_W - 60}" y="{_H - 8}" font-size="11">week {n}</text>',
    ]
    for week, label, solid in marks:
        if 0 <= week < n:
            x = px(week)
            dash = "" if solid else ' stroke-dasharray="4 3"'
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="10" y2="{_H - 35}" stroke="#d62728"{dash}>'
                f"<title>{_esc(label)}</title></line>"
                f'<text x="{x + 3:.1f}" y="20" font-size="10" fill="#d62728">{_esc(label)}</text>'
            )
    for j, (name, vals) in enumerate(series.items()):
        colour = COLOURS.get(name, "#555")
        pts = " ".join(f"{px(k):.1f},{py(v):.1f}" for k, v in enumerate(vals))
        parts.append(
            f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2">'
            f"<title>{_esc(name)}</title></polyline>"
            f'<text x="{_W - 150}" y="{_H - 22 - 13 * j}" font-size="11" fill="{colour}">'
            f"{_esc(name)}</text>"
        )
    return (
        f"<figure><figcaption>{_esc(title)}</figcaption>"
        f'<svg width="{_W}" height="{_H}" role="img">{"".join(parts)}</svg></figure>'
    )


#: The book's items in the report's table, in the order of its header (``render``).
BOOK_ITEMS = (
    "revenue",
    "production",
    "setup",
    "changeover",
    "changeovers",
    "overtime",
    "holding",
    "lost_sales",
    "made_units",
    "sales_units",
    "demand_units",
)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render(result: Any) -> str:
    """The report of a :class:`~services.simulate.loop.SimResult` (one or several seeds)."""
    opts = result.options
    seeds = [r.seed for r in result.runs]
    rows = []
    for name in result.names:
        s = result.summary(name)
        rows.append(
            (
                name + (" (upper bound)" if name == "hindsight" else ""),
                *(f"{s['profit_by_seed'][str(x)]:,.0f}" for x in seeds),
                f"{s['profit']:,.0f}",
                f"{s['pct_of_hindsight']:.1f}%",
                f"{s['service_level']:.3f}",
                f"{s['wape']:.3f}",
            )
        )
    checks = result.checks()
    versus = [
        (seed, c["best_quantile"], c["tailorline_over_best_quantile_pct"])
        for seed, c in checks["by_seed"].items()
    ]
    versus.append(
        (
            "mean",
            checks["best_quantile_on_mean"],
            checks["tailorline_over_best_quantile_on_mean_pct"],
        )
    )
    above = ", ".join(checks["policies_above_hindsight"]) or "none"
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>tailorline simulate: {_esc(opts.preset)} seeds {_esc(seeds)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 8px}</style></head><body>"
        f"<h1>Closed-loop simulation: {opts.weeks} weeks, preset {_esc(opts.preset)}, "
        f"seeds {_esc(', '.join(map(str, seeds)))}</h1>"
        f"<p>Rolling horizon {opts.horizon} weeks, solver limit {opts.time_limit_s} s / gap "
        f"{opts.mip_rel_gap} per plan, {opts.scenario_count} scenarios per expected-profit plan; "
        f"hindsight limit {opts.hindsight_time_limit_s} s. Hindsight's profit is the solver's "
        "proven upper bound on any plan's profit (docs/simulator.md).</p>"
        "<h2>Realised profit</h2>"
        + _table(
            [
                "policy",
                *(f"seed {x}" for x in seeds),
                "mean",
                "of hindsight",
                "service level",
                "WAPE",
            ],
            rows,
        )
        + "<h3>tailorline against the best quantile policy</h3>"
        + _table(["seed", "best quantile policy", "tailorline above it, %"], versus)
        + f"<p>Policies above hindsight's bound: {_esc(above)}.</p>"
        + "".join(_seed_section(r, opts) for r in result.runs)
        + "</body></html>"
    )


def _seed_section(run: Any, opts: Any) -> str:
    """Charts and tables of one seed."""
    traces = run.traces
    marks: list[tuple[int, str, bool]] = []
    if 0 <= run.shift_week < opts.weeks:
        marks.append((run.shift_week, "shift", True))
    for r in run.retrains:
        marks.append((r.week, "retrain" + (" (promoted)" if r.promoted else ""), r.promoted))
    cumulative = {}
    for name, t in traces.items():
        total, out = 0.0, []
        for b in t.books:
            total += b.profit
            out.append(total)
        cumulative[name] = out
    planned = {n: t for n, t in traces.items() if n != "hindsight"}
    service = {
        n: [b.sales_units / b.demand_units if b.demand_units else 1.0 for b in t.books]
        for n, t in traces.items()
    }
    wape = {n: t.weekly_wape() for n, t in planned.items()}
    retrains = [
        (r.week + 1, r.trigger, r.promoted, r.metric_before, r.metric_after, r.via, r.job_id)
        for r in run.retrains
    ]
    models = [
        (m.get("version"), m.get("status"), m.get("served", False), m.get("created_at", ""))
        for m in run.models
    ]
    timings = ", ".join(f"{k} {v:.0f}" for k, v in run.timings.items())
    h = run.hindsight
    gap = "n/a" if h.gap is None else f"{h.gap:.2%}"
    return (
        f"<h2>Seed {run.seed}: {opts.weeks} weeks from {_esc(run.first_week)}</h2>"
        f"<p>Hindsight: bound {h.bound:,.0f}, best plan found {h.plan_profit:,.0f} "
        f"({_esc(h.status)}, gap {gap}, {h.seconds:.0f} s). Timings (s): {_esc(timings)}.</p>"
        + line_chart(
            "Cumulative realised profit per policy (hindsight: its best plan)",
            cumulative,
            marks=marks,
        )
        + line_chart("Forecast error (WAPE of P50) per week", wape, marks=marks, fmt=".2f")
        + line_chart("Service level (units sold / ordered) per week", service, fmt=".2f")
        + "<h3>Totals by cost item</h3>"
        + _table(
            [
                "policy",
                "revenue",
                "production",
                "setup",
                "changeover",
                "changeovers",
                "overtime",
                "holding",
                "lost sales",
                "units made",
                "units sold",
                "units ordered",
            ],
            [
                (
                    n,
                    *(f"{sum(getattr(b, k) for b in t.books):,.0f}" for k in BOOK_ITEMS),
                )
                for n, t in traces.items()
            ],
        )
        + "<h3>Retrains</h3>"
        + _table(
            ["week", "trigger", "promoted", "metric before", "metric after", "via", "job"],
            retrains,
        )
        + "<h3>Demand model versions (ListModels)</h3>"
        + _table(["version", "status", "served", "created"], models)
    )
