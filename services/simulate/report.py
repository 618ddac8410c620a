"""The simulation's HTML report: self-contained, inline SVG, no JavaScript.

Charts: cumulative realised profit per policy, forecast error (WAPE of the executed week's P50)
per policy and week, weekly service level (units sold / units ordered) per policy; vertical marks
where the fashion shift starts and where a retrain ran (solid: promoted, dashed: kept the served
model). Tables: the policies' totals, the retrains, the registered demand model versions.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

_W, _H, _PAD = 640, 260, 70
COLOURS = {"tailorline": "#1f77b4", "oracle": "#2ca02c", "naive": "#ff7f0e"}


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


BOOK_ITEMS = (
    "revenue",
    "production",
    "setup",
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
    """The report of a :class:`~services.simulate.loop.SimResult`."""
    traces = result.traces
    opts = result.options
    marks: list[tuple[int, str, bool]] = []
    if 0 <= result.shift_week < opts.weeks:
        marks.append((result.shift_week, "shift", True))
    for r in result.retrains:
        marks.append((r.week, "retrain" + (" (promoted)" if r.promoted else ""), r.promoted))
    cumulative = {}
    for name, t in traces.items():
        total, out = 0.0, []
        for b in t.books:
            total += b.profit
            out.append(total)
        cumulative[name] = out
    service = {
        n: [b.sales_units / b.demand_units if b.demand_units else 1.0 for b in t.books]
        for n, t in traces.items()
    }
    wape = {n: t.weekly_wape() for n, t in traces.items()}
    oracle = traces["oracle"].profit if "oracle" in traces else 0.0
    totals = [
        (
            n,
            f"{t.profit:,.0f}",
            f"{t.profit / oracle:.1%}" if oracle else "n/a",
            f"{t.service_level:.3f}",
            f"{t.wape:.3f}",
        )
        for n, t in traces.items()
    ]
    retrains = [
        (r.week + 1, r.trigger, r.promoted, r.metric_before, r.metric_after, r.via, r.job_id)
        for r in result.retrains
    ]
    models = [
        (m.get("version"), m.get("status"), m.get("served", False), m.get("created_at", ""))
        for m in result.models
    ]
    timings = ", ".join(f"{k} {v:.0f}" for k, v in result.timings.items())
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>tailorline simulate: {_esc(opts.preset)} seed {opts.seed}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 8px}</style></head><body>"
        f"<h1>Closed-loop simulation: {opts.weeks} weeks from {_esc(result.first_week)}</h1>"
        f"<p>preset {_esc(opts.preset)}, seed {opts.seed}, rolling horizon {opts.horizon} weeks, "
        f"service level {opts.service_level}, solver limit {opts.time_limit_s} s / gap "
        f"{opts.mip_rel_gap}. Timings (s): {_esc(timings)}.</p>"
        "<h2>Policies</h2>"
        + _table(["policy", "profit", "of oracle", "service level", "WAPE"], totals)
        + line_chart("Cumulative realised profit per policy", cumulative, marks=marks)
        + line_chart("Forecast error (WAPE of P50) per week", wape, marks=marks, fmt=".2f")
        + line_chart("Service level (units sold / ordered) per week", service, fmt=".2f")
        + "<h2>Totals by cost item</h2>"
        + _table(
            [
                "policy",
                "revenue",
                "production",
                "setup",
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
        + "<h2>Retrains</h2>"
        + _table(
            ["week", "trigger", "promoted", "metric before", "metric after", "via", "job"],
            retrains,
        )
        + "<h2>Demand model versions (ListModels)</h2>"
        + _table(["version", "status", "served", "created"], models)
        + "</body></html>"
    )
