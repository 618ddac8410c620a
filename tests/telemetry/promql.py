"""Metric names used by a PromQL expression (enough of PromQL for alert rules and dashboards)."""

from __future__ import annotations

import re

KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan", "le",
}  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_LABELS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_TEMPLATE = re.compile(r"\{\{.*?\}\}|\$\{[^}]*\}|\$\w+")
_IDENT = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)(?![\w:])(\s*\()?")
_DURATION = re.compile(r"^\d")


def metric_names(expr: str) -> set[str]:
    """Identifiers in ``expr`` that name series: not functions (followed by ``(``), keywords,
    label names, strings, durations or Grafana/Helm template variables."""
    text = _TEMPLATE.sub(" ", expr)
    text = _STRING.sub(" ", text)
    text = _LABELS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in KEYWORDS or _DURATION.match(name):
            continue
        names.add(name)
    return names
