"""Data sets built once per module: generation is fast, but tests should not repeat it."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.datagen import PRESETS, Dataset, World, build_dataset, generate


@pytest.fixture(scope="module")
def tiny_world() -> World:
    return World(PRESETS["tiny"], 3)


@pytest.fixture(scope="module")
def small_world() -> World:
    return World(PRESETS["small"], 1)


@pytest.fixture(scope="module")
def small(small_world: World) -> Dataset:
    return build_dataset(small_world)


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny-csv")
    generate("tiny", 3, out, "csv", overwrite=True)
    return out
