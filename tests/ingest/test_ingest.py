"""Import of a hand-made data set: counts, idempotency, cleaning, bad rows, privacy."""

from __future__ import annotations

import hashlib
import hmac
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select, text

from services.common.errors import InvalidArgument
from services.common.settings import CoreSettings
from services.ingest import ingest_dir, ingest_frames
from services.store import load_frames, make_engine, migrate, schema

from .conftest import MINI_COUNTS


def _counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in schema.DATA_TABLES
        }


@pytest.fixture
def engine(store_url: str):
    eng = make_engine(store_url)
    yield eng
    eng.dispose()


def test_loads_everything_and_a_second_import_adds_nothing(mini_dir: Path, engine) -> None:
    settings = CoreSettings()
    first = ingest_dir(mini_dir, engine, settings)
    assert first.rejected_rows == 0
    assert _counts(engine) == MINI_COUNTS
    assert first.counts()["orders"] == {
        "read": 4, "loaded": 4, "updated": 0, "already_present": 0, "rejected": 0, "flagged": 0,
    }  # fmt: skip
    second = ingest_dir(mini_dir, engine, settings)
    assert second.loaded_rows == 0
    assert all(t.updated == 0 and t.already_present == t.read for t in second.tables)
    assert _counts(engine) == MINI_COUNTS
    with engine.connect() as conn:  # both runs are recorded
        assert conn.execute(select(func.count()).select_from(schema.ingest_runs)).scalar() == 2


def test_codes_units_and_weeks_are_normalised(mini_dir: Path, engine) -> None:
    ingest_dir(mini_dir, engine, CoreSettings())
    frames = load_frames(engine)
    assert dict(zip(frames["materials"].material_id, frames["materials"].unit, strict=True)) == {
        "BUTTON": "pcs", "COTTON": "m", "DENIM": "m",
    }  # fmt: skip
    assert sorted(frames["families"].family_id) == ["JEANS", "SHIRT"]  # upper-cased ids
    v3 = frames["variants"].set_index("variant_id").loc["V3"]
    assert (v3.attr_fabric, v3.attr_size) == ("denim", "l")  # codes lower-cased
    assert set(frames["bom"].condition) == {"fabric=cotton", "", "size=m", "size=l"}
    assert set(frames["market"].week.dt.weekday) == {0}  # 2024-03-06 moved to Monday 03-04
    assert frames["orders"].set_index("order_id").loc["O3", "kind"] == "stock"
    assert frames["orders"].set_index("order_id").loc["O3", "promo"] == 0  # default


def test_customer_ids_are_pseudonymised_and_names_never_stored(mini_dir: Path, engine) -> None:
    settings = CoreSettings(pseudonym_key="k-test")
    report = ingest_dir(mini_dir, engine, settings)
    expected = hmac.new(b"k-test", b"C-001", hashlib.sha256).hexdigest()[:32]
    orders = load_frames(engine, ["orders"])["orders"].set_index("order_id")
    assert orders.loc["O1", "customer_id"] == expected
    assert orders.loc["O3", "customer_id"] == expected  # same customer, same pseudonym
    reviews = load_frames(engine, ["reviews"])["reviews"].set_index("review_id")
    assert reviews.loc["R1", "customer_id"] == expected
    assert any("customer_name, email" in n for n in report.notes)
    with engine.connect() as conn:
        for table in schema.metadata.sorted_tables:  # no name, e-mail or raw id anywhere
            for row in conn.execute(select(table)).all():
                flat = " ".join(str(v) for v in row)
                for secret in ("Ann Smith", "ann@example.com", "Bob", "C-001", "c-001"):
                    assert secret not in flat, (table.name, row)


BAD_ORDERS = """order_id,customer_id,variant_id,quantity,unit_price,order_date,due_date,kind,promo
O1,c1,V1,2,40,2024-03-01,2024-03-15,stock,0
O2,c2,V1,-3,40,2024-03-01,2024-03-15,stock,0
O3,c3,NOPE,1,40,2024-03-01,2024-03-15,stock,0
O4,c4,V2,1,45,2024-13-45,2024-03-15,stock,0
O1,c5,V1,1,40,2024-03-02,2024-03-16,stock,0
O6,c6,V2,1,45,2024-03-05,2024-03-01,custom,0
O7,,V2,1,45,2024-03-05,2024-03-09,custom,0
O8,c8,V2,1,45,2024-03-05,2024-03-09,bulk,2
O9,c9,V3,2,80,2024-03-05,2024-03-20,custom,yes
"""


def test_bad_rows_are_reported_and_the_good_ones_loaded(mini_dir: Path, engine) -> None:
    (mini_dir / "orders.csv").write_text(BAD_ORDERS)
    (mini_dir / "reviews.csv").write_text(
        "review_id,variant_id,customer_id,date,rating\nR1,V1,c1,2024-03-20,6\nR2,V1,c1,2024-03-20,4\n"
    )
    report = ingest_dir(mini_dir, engine, CoreSettings())
    got = {(i.file, i.row, i.column, i.reason) for i in report.issues}
    assert got == {
        ("orders.csv", 2, "quantity", "must be > 0"),
        ("orders.csv", 3, "variant_id", "unknown variant_id (not in variants)"),
        ("orders.csv", 4, "order_date", "malformed date (want YYYY-MM-DD)"),
        ("orders.csv", 5, "order_id", "duplicate order_id (first at row 1)"),
        ("orders.csv", 6, "due_date", "due_date before order_date"),
        ("orders.csv", 7, "customer_id", "missing required value"),
        ("orders.csv", 8, "kind", "must be one of ['custom', 'stock']"),
        ("orders.csv", 8, "promo", "must be 0 or 1"),
        ("reviews.csv", 1, "rating", "must be <= 5"),
    }
    by_table = report.counts()
    assert by_table["orders"]["rejected"] == 7 and by_table["orders"]["loaded"] == 2
    assert by_table["reviews"]["rejected"] == 1 and by_table["reviews"]["loaded"] == 1
    orders = load_frames(engine, ["orders"])["orders"]
    assert sorted(orders.order_id) == ["O1", "O9"]
    assert orders.set_index("order_id").loc["O1", "quantity"] == 2  # the first O1 won
    assert orders.set_index("order_id").loc["O9", "promo"] == 1  # "yes" means 1
    values = {(i.row, i.column): i.value for i in report.issues}
    assert values[(2, "quantity")] == "-3" and values[(4, "order_date")] == "2024-13-45"


def test_outliers_are_loaded_and_flagged(mini_dir: Path, engine) -> None:
    rows = [f"X{i},c{i},V1,1,40,2024-04-01,2024-04-10,stock,0" for i in range(8)]
    rows += ["XBIG,c9,V1,50,40,2024-04-01,2024-04-10,stock,0"]  # 50 x the median of 1
    rows += ["XCHEAP,c9,V2,1,5,2024-04-01,2024-04-10,stock,0"]  # 5 EUR for a 45 EUR list price
    header = BAD_ORDERS.splitlines()[0]
    (mini_dir / "orders.csv").write_text("\n".join([header, *rows]) + "\n")
    report = ingest_dir(mini_dir, engine, CoreSettings())
    assert report.counts()["orders"]["flagged"] == 2
    assert report.counts()["orders"]["loaded"] == 10
    orders = load_frames(engine, ["orders"], include_flags=True)["orders"].set_index("order_id")
    assert orders.flagged.sum() == 2
    assert "median" in orders.loc["XBIG", "flag_reason"]
    assert "list price" in orders.loc["XCHEAP", "flag_reason"]


def test_new_attribute_value_is_accepted_and_flagged(mini_dir: Path, engine) -> None:
    with (mini_dir / "variants.csv").open("a") as fh:
        fh.write("V4,SHIRT,49,2024-05-06,silk,m\n")
    report = ingest_dir(mini_dir, engine, CoreSettings())
    assert report.counts()["variants"] == {
        "read": 4, "loaded": 4, "updated": 0, "already_present": 0, "rejected": 0, "flagged": 1,
    }  # fmt: skip
    variants = load_frames(engine, ["variants"], include_flags=True)["variants"]
    v4 = variants.set_index("variant_id").loc["V4"]
    assert v4.flagged and v4.flag_reason == "new value fabric=silk" and v4.attr_fabric == "silk"


def test_master_data_is_upserted(mini_dir: Path, engine) -> None:
    settings = CoreSettings()
    ingest_dir(mini_dir, engine, settings)
    text_ = (mini_dir / "variants.csv").read_text().replace("V2,SHIRT,45,", "V2,SHIRT,47.5,")
    (mini_dir / "variants.csv").write_text(text_.replace("Denim,L", "denim,m"))
    report = ingest_dir(mini_dir, engine, settings)
    assert report.counts()["variants"]["updated"] == 2
    assert report.counts()["variants"]["loaded"] == 0
    variants = load_frames(engine, ["variants"])["variants"].set_index("variant_id")
    assert variants.loc["V2", "list_price"] == 47.5
    assert variants.loc["V3", "attr_size"] == "m"
    assert _counts(engine)["variant_attributes"] == 6


def test_ingest_frames_takes_typed_frames_and_references_the_store(mini_dir, engine) -> None:
    settings = CoreSettings()
    ingest_dir(mini_dir, engine, settings)
    events = pd.DataFrame(
        {
            "Order_ID": ["s1", "s2", "O1"],  # names are case-insensitive; O1 is already stored
            "customer_id": ["c1", "c2", "c-001"],
            "variant_id": ["v1", "v3", "V1"],
            "quantity": [1, 2, 2],
            "unit_price": [40.0, 80.0, 40.0],
            "order_date": pd.to_datetime(["2024-05-01", "2024-05-02", "2024-03-01"]),
            "due_date": pd.to_datetime(["2024-05-10", "2024-05-12", "2024-03-15"]),
            "kind": ["stock", "custom", "stock"],
        }
    )
    report = ingest_frames({"orders": events}, engine, settings)
    assert report.counts()["orders"]["loaded"] == 2
    assert report.counts()["orders"]["already_present"] == 1
    assert _counts(engine)["orders"] == MINI_COUNTS["orders"] + 2


def test_parquet_and_gzip_inputs(mini_dir: Path, tmp_path: Path, engine) -> None:
    folder = tmp_path / "mixed"
    shutil.copytree(mini_dir, folder)
    frame = pd.read_csv(folder / "orders.csv")
    (folder / "orders.csv").unlink()
    frame["order_date"] = pd.to_datetime(frame["order_date"]).dt.date
    frame.to_parquet(folder / "orders.parquet")
    pd.read_csv(folder / "production.csv", dtype=str).to_csv(
        folder / "production.csv.gz", index=False, compression="gzip"
    )
    (folder / "production.csv").unlink()
    report = ingest_dir(folder, engine, CoreSettings())
    assert report.rejected_rows == 0
    assert _counts(engine) == MINI_COUNTS


def test_a_table_in_two_formats_is_an_error(mini_dir: Path, tmp_path: Path) -> None:
    pd.read_csv(mini_dir / "orders.csv").to_parquet(mini_dir / "orders.parquet")
    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    with pytest.raises(InvalidArgument, match="two formats"):
        ingest_dir(mini_dir, engine, CoreSettings())


def test_a_failure_half_way_leaves_the_store_as_it_was(mini_dir: Path, engine, monkeypatch) -> None:
    migrate(engine)
    from services.ingest import api

    real = api.write_events

    def broken(conn, spec, *args, **kwargs):
        if spec.name == "production":  # after families ... orders were written
            raise RuntimeError("disk on fire")
        return real(conn, spec, *args, **kwargs)

    monkeypatch.setattr(api, "write_events", broken)
    with pytest.raises(RuntimeError):
        ingest_dir(mini_dir, engine, CoreSettings())
    assert set(_counts(engine).values()) == {0}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM ingest_runs")).scalar() == 0


def test_concurrent_imports_into_one_sqlite_file_both_succeed(mini_dir: Path, tmp_path) -> None:
    """Two writers at once (a CLI import and streamed events): each waits, neither fails."""
    import threading

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    settings = CoreSettings()
    base = make_engine(url)
    ingest_dir(mini_dir, base, settings)

    def batch(prefix: str, n: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "order_id": [f"{prefix}{i}" for i in range(n)],
                "customer_id": "c1",
                "variant_id": "V1",
                "quantity": 1,
                "unit_price": 40.0,
                "order_date": "2024-05-01",
                "due_date": "2024-05-09",
                "kind": "stock",
            }
        )

    errors: list[BaseException] = []

    def work(prefix: str, n: int, rounds: int) -> None:
        engine = make_engine(url)
        try:
            for r in range(rounds):
                ingest_frames({"orders": batch(f"{prefix}{r}-", n)}, engine, settings)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [
        threading.Thread(target=work, args=("BIG", 5000, 2)),
        threading.Thread(target=work, args=("EV", 20, 10)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert _counts(base)["orders"] == MINI_COUNTS["orders"] + 2 * 5000 + 10 * 20
    base.dispose()


def test_bulk_path_stores_the_same_values_as_the_row_path(tmp_path: Path, store_url) -> None:
    """Big tables take the driver fast path (executemany / COPY); small batches go through
    SQLAlchemy. Both must store identical values, NULLs and flags included."""
    from .conftest import write_big

    folder = write_big(tmp_path / "big", 3000)
    frame = pd.read_csv(folder / "orders.csv", dtype=str)
    frame.loc[5, "quantity"] = "90"  # an outlier, so flag_reason is set on some rows only
    frame.to_csv(folder / "orders.csv", index=False)
    settings = CoreSettings()
    bulk = make_engine(store_url)
    rows = make_engine(f"sqlite:///{tmp_path / 'rows.db'}")
    try:
        ingest_dir(folder, bulk, settings)
        master = folder.parent / "master"
        shutil.copytree(folder, master)
        (master / "orders.csv").unlink()
        ingest_dir(master, rows, settings)
        for start in range(0, len(frame), 1000):  # 1000 < SMALL_BATCH: the row path
            ingest_frames({"orders": frame.iloc[start : start + 1000]}, rows, settings)
        got = load_frames(bulk, ["orders"], include_flags=True)["orders"]
        want = load_frames(rows, ["orders"], include_flags=True)["orders"]
        pd.testing.assert_frame_equal(got, want)
        assert got.flagged.sum() >= 1 and got.flag_reason.isna().sum() >= 2900
    finally:
        bulk.dispose()
        rows.dispose()
