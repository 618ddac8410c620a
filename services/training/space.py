"""A Ray Tune search space as the user gives it: ``--space`` JSON or ``config.space``.

Plain code (no typer, no Ray): the ``retrain`` command and the launchers' request check share it.
"""

from __future__ import annotations

import json

from services.common.errors import InvalidArgument


def parse_space(text: str | None) -> dict[str, list[object]] | None:
    """``--space`` JSON -> {key: [choices]}; None when not given."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"not JSON: {exc}", field="space") from None
    if not isinstance(value, dict) or not value:
        raise InvalidArgument("give an object of key -> list of choices", field="space")
    out: dict[str, list[object]] = {}
    for key, choices in value.items():
        if not isinstance(choices, list) or not choices:
            raise InvalidArgument("give a non-empty list of choices", field=f"space.{key}")
        out[str(key)] = choices
    return out
