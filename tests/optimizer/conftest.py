"""Optimizer test helpers (plan_checks, plan_brute) live next to the tests; with pytest's
importlib import mode this folder is not on sys.path by itself."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
