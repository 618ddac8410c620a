"""What a plan reads from the store (services.planning.reads): the demand panel summed from the
orders streamed in chunks is the one the whole table gives, the orders a plan holds are its own
variants' open custom orders only, and the view is read once per store version."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, insert

from services.features import clean_frames
from services.features.demand import build_panel, build_serving_frame
from services.planning.reads import read_store_view
from services.planning.service import Planner
from services.store import load_frames, make_engine, schema
from tests.planning.stores import tiny_store

WEEK = pd.Timedelta(days=7)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The ``tiny`` preset (20 variants, 30 weeks) ingested into a SQLite store."""
    engine, _ = tiny_store(tmp_path_factory.mktemp("reads"))
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def whole(store: Engine) -> dict[str, pd.DataFrame]:
    """Every table read whole, as the planner read it before."""
    return clean_frames(load_frames(store))[0]


def test_the_panel_from_order_chunks_is_the_panel_of_the_whole_table(
    store: Engine, whole: dict[str, pd.DataFrame]
) -> None:
    n_orders = len(whole["orders"])
    assert n_orders > 1000
    # 997 rows at a time: many chunks, a variant's week split across two of them
    view = read_store_view(store, rows=997)
    expected = build_panel(whole)
    got = view.panel
    assert got is not None
    assert (got.first_week, got.n_weeks) == (expected.first_week, expected.n_weeks)
    assert list(got.variants["variant_id"]) == list(expected.variants["variant_id"])
    for name in ("demand", "cum_demand", "cum_on_sale", "first_sale", "cum_fam", "market",
                 "cum_rating_n", "cum_rating_sum", "on_sale"):  # fmt: skip
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)
    assert got.demand.sum() == pytest.approx(whole["orders"]["quantity"].sum())
    # the price and promotion calendar (datagen's, history and plan weeks) is in the panel
    for name in ("price_ratio", "promo"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)
    assert len(whole["variant_weeks"]) > 0 and got.promo[:, : got.n_weeks].sum() > 0
    # and so the forecast's features, for stored variants and a new configuration
    origin = view.last_order_week
    last = pd.to_datetime(whole["orders"]["order_date"]).max().normalize()
    assert origin == last - pd.Timedelta(days=last.weekday())
    fam = str(whole["variants"]["family_id"].iloc[0])
    refs: list[Any] = [*sorted(whole["variants"]["variant_id"])[:5], {"family_id": fam}]
    pd.testing.assert_frame_equal(
        build_serving_frame(got, origin, refs, 8), build_serving_frame(whole, origin, refs, 8)
    )
    # the other tables are the whole-table ones (production and reviews read in chunks too)
    for name in ("production", "reviews", "variants", "lines", "market", "variant_weeks"):
        pd.testing.assert_frame_equal(
            view.frames[name].reset_index(drop=True), whole[name].reset_index(drop=True)
        )
    # the view holds no order rows of its own
    assert view.frames["orders"].empty
    assert list(view.frames["orders"].columns) == list(whole["orders"].columns)


def test_a_plan_of_three_variants_holds_only_their_open_custom_orders(
    store: Engine, whole: dict[str, pd.DataFrame]
) -> None:
    view = read_store_view(store)
    orders = whole["orders"]
    custom = orders[orders["kind"] == "custom"]
    # a week inside the history with custom orders open across it, and three variants, two of
    # them with such orders
    horizon = 4
    placed = pd.to_datetime(custom["order_date"])
    due_at = pd.to_datetime(custom["due_date"])
    weeks = [view.last_order_week - k * WEEK for k in range(1, 20)]
    start = max(weeks, key=lambda w: int(((placed < w) & (due_at >= w)).sum()))
    open_ids = custom.loc[(placed < start) & (due_at >= start), "variant_id"].value_counts()
    idle = sorted(set(whole["variants"]["variant_id"]) - set(open_ids.index))
    ids = [*sorted(open_ids.index[:2]), idle[0]]
    frames = view.plan_frames(store, ids, start, horizon)
    got = frames["orders"]
    assert len(got) < len(orders) / 20  # a sliver of the history
    assert set(got["variant_id"]) <= set(ids)
    assert (got["kind"] == "custom").all()
    assert (got["order_date"] < start).all()
    assert ((got["due_date"] >= start) & (got["due_date"] < start + horizon * WEEK)).all()
    # exactly the rows of the whole table the problem builder keeps as firm orders
    due = pd.to_datetime(custom["due_date"])
    want = custom[
        custom["variant_id"].isin(ids)
        & (pd.to_datetime(custom["order_date"]) < start)
        & (due >= start)
        & (due < start + horizon * WEEK)
    ]
    assert len(want) > 0
    assert sorted(got["order_id"]) == sorted(want["order_id"])
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True), want.sort_values("order_id").reset_index(drop=True)
    )
    # every other table is the view's (read once per store version)
    assert all(frames[t] is view.frames[t] for t in view.frames if t != "orders")


def test_the_view_is_read_once_per_store_version(store: Engine, monkeypatch: Any) -> None:
    import services.planning.service as service

    reads: list[int] = []
    real = service.read_store_view

    def counted(engine: Engine) -> Any:
        reads.append(1)
        return real(engine)

    monkeypatch.setattr(service, "read_store_view", counted)
    planner = Planner(store, predict=None, inputs=None, solve=None)  # type: ignore[arg-type]
    first = planner.store_view()
    assert planner.store_view() is first
    assert len(reads) == 1
    # an import commits an ingest_runs row: the next plan reads the new version
    now = datetime.now(UTC)
    with store.begin() as conn:
        conn.execute(
            insert(schema.ingest_runs).values(
                run_id="test-run", source="test", started_at=now, finished_at=now, counts={}
            )
        )
    second = planner.store_view()
    assert second is not first
    assert len(reads) == 2


def test_a_bad_order_row_neither_fails_nor_moves_the_view(
    store: Engine, tmp_path: Any, whole: dict[str, pd.DataFrame]
) -> None:
    """An order dated 2199 (or 2300, beyond what pandas holds) is skipped chunk by chunk as the
    whole-table read skips it: the last order week and the panel stay what they were."""
    import sqlite3
    from datetime import date

    copy = tmp_path / "store.db"
    with sqlite3.connect(str(store.url.database)) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    engine = make_engine(f"sqlite:///{copy}")
    try:
        before = read_store_view(engine, rows=500)
        row = whole["orders"].iloc[0].to_dict()
        with engine.begin() as conn:
            for year in (2199, 2300):
                conn.execute(
                    insert(schema.orders).values(
                        order_id=f"BAD-{year}",
                        customer_id=row["customer_id"],
                        variant_id=row["variant_id"],
                        quantity=3,
                        unit_price=float(row["unit_price"]),
                        order_date=date(year, 1, 5),
                        due_date=date(year, 1, 19),
                        kind="stock",
                        promo=0,
                    )
                )
        after = read_store_view(engine, rows=500)
    finally:
        engine.dispose()
    assert after.last_order_week == before.last_order_week
    assert after.panel is not None and before.panel is not None
    np.testing.assert_array_equal(after.panel.demand, before.panel.demand)
    assert sum(after.panel.skipped["orders"].values()) == 2
