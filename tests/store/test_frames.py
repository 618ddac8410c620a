"""``load_frames``: the store read back with exactly the columns of docs/data-format.md."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from sqlalchemy import insert

from services.store import FRAME_COLUMNS, load_frames, make_engine, migrate, schema

DOC = Path(__file__).resolve().parents[2] / "docs" / "data-format.md"


def _documented_columns() -> dict[str, list[str]]:
    """Table -> columns, read from the markdown tables of the data-format document."""
    tables: dict[str, list[str]] = {}
    current = None
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 4 or cells[0] in ("table", "file"):
            continue
        if set(cells[0]) <= {"-"} and cells[0]:
            continue
        if cells[0]:
            current = cells[0]
        if current is None or "truth" in current:
            continue
        for name in re.split(r",\s*", cells[1]):
            if name and not name.startswith("attr_"):
                tables.setdefault(current, []).append(name)
    return tables


def test_frame_columns_are_the_documented_ones() -> None:
    documented = _documented_columns()
    assert {t: list(c) for t, c in FRAME_COLUMNS.items()} == documented


def test_empty_store_gives_empty_frames_with_the_columns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    migrate(url)
    frames = load_frames(make_engine(url))
    assert set(frames) == set(FRAME_COLUMNS)
    for name, frame in frames.items():
        assert list(frame.columns) == list(FRAME_COLUMNS[name]) and frame.empty


def test_variants_get_their_attributes_pivoted_back(store_url: str) -> None:
    migrate(store_url)
    engine = make_engine(store_url)
    try:
        with engine.begin() as conn:
            conn.execute(insert(schema.families).values(family_id="F", name="F", base_price=10))
            conn.execute(
                insert(schema.variants),
                [
                    {"variant_id": "V1", "family_id": "F", "list_price": 10.0,
                     "launch_date": date(2025, 1, 6), "flagged": False},
                    {"variant_id": "V2", "family_id": "F", "list_price": 12.0,
                     "launch_date": None, "flagged": True, "flag_reason": "new value size=xxl"},
                ],
            )  # fmt: skip
            conn.execute(
                insert(schema.variant_attributes),
                [
                    {"variant_id": "V1", "attribute": "size", "value": "m"},
                    {"variant_id": "V1", "attribute": "colour", "value": "red"},
                    {"variant_id": "V2", "attribute": "size", "value": "xxl"},
                ],
            )
        variants = load_frames(engine, ["variants"])["variants"]
        assert list(variants.columns) == [
            "variant_id", "family_id", "list_price", "launch_date", "attr_colour", "attr_size",
        ]  # fmt: skip
        assert variants.attr_size.tolist() == ["m", "xxl"]
        assert variants.attr_colour.iloc[0] == "red" and variants.attr_colour.isna().iloc[1]
        assert str(variants.launch_date.dtype) == "datetime64[ns]"
        flagged = load_frames(engine, ["variants"], include_flags=True)["variants"]
        assert list(flagged.columns[-2:]) == ["flagged", "flag_reason"]
        assert flagged.flagged.tolist() == [False, True]
    finally:
        engine.dispose()
