"""Fixtures of the serving tests: a tiny model repository (built once) and in-process answers."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.serving.fixture_models import build_repository


@pytest.fixture(scope="session")
def fixture_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Version 1 of ``demand`` and ``cost`` (tiny Keras models with StringLookup), served.

    Read-only: tests that write versions copy it first (see ``make_repo``).
    """
    return build_repository(tmp_path_factory.mktemp("models-v1"), seed=1)


@pytest.fixture
def make_repo(fixture_repo: Path, tmp_path: Path) -> Callable[[], Path]:
    def _copy() -> Path:
        target = tmp_path / "models"
        shutil.copytree(fixture_repo, target)
        return target

    return _copy


class InProcess:
    """Answers of the SavedModel signature called directly (no server code involved)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._fns: dict[tuple[str, int], Any] = {}

    def __call__(
        self, name: str, version: int, inputs: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        import tensorflow as tf

        key = (name, int(version))
        if key not in self._fns:
            path = self.root / name / str(version) / "saved_model"
            loaded = tf.saved_model.load(str(path))
            self._fns[key] = (loaded, loaded.signatures["serving_default"])
        fn = self._fns[key][1]
        out = fn(**{k: tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in out.items()}
