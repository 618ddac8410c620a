"""The model repository: versions, metadata marks completeness, atomic `current`."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.errors import NotFound
from services.registry.repository import ModelRepository


def test_versions_count_up_and_incomplete_ones_are_invisible(tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path)
    v1, d1 = repo.create_version("demand")
    v2, _ = repo.create_version("demand")
    assert (v1, v2) == (1, 2)
    assert repo.versions("demand") == []  # no metadata yet: incomplete
    repo.write_metadata("demand", v1, {"name": "demand", "version": v1})
    assert repo.versions("demand") == [1]
    assert repo.next_version("demand") == 3
    assert repo.read_metadata("demand", 1)["version"] == 1
    assert d1 == tmp_path / "demand" / "1"
    assert repo.names() == ["demand"]


def test_current_is_atomic_and_falls_back_to_latest(tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path)
    for _ in range(2):
        v, _ = repo.create_version("cost")
        repo.write_metadata("cost", v, {"version": v})
    assert repo.current("cost") is None
    assert repo.served_version("cost") == 2
    repo.set_current("cost", 1)
    assert repo.current("cost") == 1
    assert (tmp_path / "cost" / "current").read_text() == "1\n"
    assert not [p for p in (tmp_path / "cost").iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(NotFound):
        repo.set_current("cost", 7)
    with pytest.raises(NotFound):
        repo.read_metadata("cost", 9)
