"""A Ray Tune search space as the user gives it: ``--space`` JSON or ``config.space``.

Plain code (no typer, no Ray): the ``retrain`` command and the launchers' request check share it,
and both hold it to the same bounds (:data:`services.training.limits.SPACE_LIMITS`).
"""

from __future__ import annotations

import json

from services.common.errors import InvalidArgument, clip
from services.training.limits import check_space

#: longest ``--space`` text read (the bounded space is far smaller)
MAX_SPACE_CHARS = 20_000


def parse_space(text: str | None, field: str = "space") -> dict[str, list[object]] | None:
    """``--space`` JSON -> {key: [choices]} within the bounds; None when not given."""
    if text is None:
        return None
    if len(text) > MAX_SPACE_CHARS:
        raise InvalidArgument(f"at most {MAX_SPACE_CHARS} characters, got {len(text)}", field=field)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"not JSON: {clip(str(exc), 120)}", field=field) from None
    return check_space(value, field)
