"""The Parquet export reads back as the store's frames (no Ray needed)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from services.common.errors import InvalidArgument


def test_export_reads_back_as_load_frames(small_export) -> None:
    from services.store.db import make_engine
    from services.store.export import read_export
    from services.store.frames import load_frames

    engine = make_engine(small_export.db_url)
    try:
        want = load_frames(engine)
    finally:
        engine.dispose()
    got = read_export(small_export.parquet)
    assert sorted(got) == sorted(want)
    assert len(want["variant_weeks"]) > 0  # the price and promotion calendar goes out too
    for name, frame in want.items():
        pd.testing.assert_frame_equal(got[name], frame, obj=name)
    # the orders (~20k rows) went out in files of 4,000 rows: one Ray Data block each
    files = sorted((small_export.parquet / "orders").glob("part-*.parquet"))
    assert len(files) == -(-len(want["orders"]) // 4000)
    rows = json.loads((small_export.parquet / "_export.json").read_text())["rows"]
    assert rows["orders"] == len(want["orders"])


def test_a_folder_that_is_not_an_export_is_refused(tmp_path) -> None:
    from services.store.export import read_export

    with pytest.raises(InvalidArgument, match="not a Parquet export") as err:
        read_export(tmp_path)
    assert err.value.field == "parquet"
