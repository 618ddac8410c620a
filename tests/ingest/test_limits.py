"""The input bounds of services/ingest/spec.py agree with what the store can hold."""

from __future__ import annotations

import pytest
from sqlalchemy import Float, Integer, String

from services.ingest.spec import SPECS, TableSpec
from services.store import schema

#: Input columns stored as something else (the pseudonym is 32 hex characters, not the id).
NOT_STORED_AS_IS = {("orders", "customer_id"), ("reviews", "customer_id")}


@pytest.mark.parametrize("spec", list(SPECS.values()), ids=list(SPECS))
def test_every_bound_fits_the_store_column(spec: TableSpec) -> None:
    table = schema.metadata.tables[spec.name]
    for col in spec.columns:
        stored = table.c[col.name].type
        if col.kind in ("id", "text", "code", "unit", "condition"):
            assert col.max_len is not None, f"{spec.name}.{col.name} has no length limit"
            if (spec.name, col.name) not in NOT_STORED_AS_IS:
                assert isinstance(stored, String) and stored.length is not None
                assert col.max_len <= stored.length, f"{spec.name}.{col.name}"
        elif col.kind in ("float", "int", "flag01"):
            assert isinstance(stored, Float | Integer)
            if col.kind != "flag01":
                assert col.max is not None, f"{spec.name}.{col.name} has no upper cap"
            if isinstance(stored, Integer):  # PostgreSQL INTEGER is 32-bit
                assert (col.max if col.max is not None else 1) < 2**31
    if spec.extra_prefix:
        va = schema.variant_attributes
        assert spec.extra_max_len <= min(va.c.attribute.type.length, va.c.value.type.length)
