"""Validation and cleaning of one input table, vectorised with pandas.

``validate_table(spec, raw, refs, file, limits)`` parses every documented column (ids trimmed and
upper-cased, codes lower-cased, units normalised, numbers and ISO dates parsed, weeks moved to their
Monday), applies the documented rules and bounds (:mod:`services.ingest.spec`: caps on numbers,
text lengths, no control characters, the date window), foreign keys (against the store and the
rows accepted so far in the same import) and the in-file duplicate rule, and returns the clean rows
plus one issue per (row, column, reason). ``raw`` may be one chunk of a big file: its index holds
the rows' 0-based positions in the file. Nothing here touches the database: the caller passes what
the store knows in :class:`Refs`. Outliers (loaded, but flagged) are
:mod:`services.ingest.outliers`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from services.ingest.report import shown_value
from services.ingest.spec import DEFAULT_LIMITS, UNIT_SYNONYMS, Col, Limits, TableSpec

ISSUE_COLUMNS = ["file", "row", "column", "reason", "value"]
_TRUTHY = {"true": "1", "yes": "1", "false": "0", "no": "0"}
#: C0 control characters and DEL (NUL, tab, newline, escape, ...): never part of a stored text.
CONTROL = r"[\x00-\x1f\x7f]"
CONTROL_REASON = "contains a control character (NUL, tab, newline, ...) or invalid Unicode"


@dataclass
class Refs:
    """What the store (plus the rows accepted so far in this import) already holds."""

    keys: dict[str, set[str]] = field(default_factory=dict)  # families, variants, lines, materials
    allowed: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["family_id", "attribute", "value"])
    )
    list_price: dict[str, float] = field(default_factory=dict)  # variant_id -> list price

    def known(self, table: str) -> set[str]:
        return self.keys.setdefault(table, set())


@dataclass
class Validated:
    frame: pd.DataFrame  # clean rows, parsed; index = 0-based position in the input
    issues: pd.DataFrame  # ISSUE_COLUMNS
    rejected: int
    notes: list[str]
    attributes: pd.DataFrame | None = None  # variants: long (variant_id, attribute, value)


class _Issues:
    def __init__(self, file: str, raw: pd.DataFrame, max_value_chars: int) -> None:
        self.file = file
        self.raw = raw
        self.max_value_chars = max_value_chars
        self.parts: list[pd.DataFrame] = []

    def add(self, mask: pd.Series, column: str, reason: str | pd.Series) -> None:
        mask = mask.fillna(False).astype(bool)
        if not mask.any():
            return
        idx = mask.index[mask.to_numpy()]
        values = self.raw[column].loc[idx] if column in self.raw else pd.Series("", index=idx)
        limit = self.max_value_chars
        shown = [shown_value(v, limit) for v in values.astype(object).tolist()]
        reasons = reason.loc[idx] if isinstance(reason, pd.Series) else reason
        self.parts.append(
            pd.DataFrame(
                {
                    "file": self.file,
                    "row": idx.to_numpy() + 1,
                    "column": column,
                    "reason": reasons,
                    "value": shown,
                }
            )
        )

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame(columns=ISSUE_COLUMNS)
        return pd.concat(self.parts, ignore_index=True).sort_values(
            ["row", "column"], kind="stable"
        )

    def rows(self) -> pd.Index:
        if not self.parts:
            return pd.Index([], dtype="int64")
        return pd.Index(np.unique(np.concatenate([p["row"].to_numpy() - 1 for p in self.parts])))


def _is_text(s: pd.Series) -> bool:
    return s.dtype == object or pd.api.types.is_string_dtype(s)


def _no_surrogates(v: object) -> object:
    """A text with lone surrogates (only Python can hold them, UTF-8 cannot) -> NUL there, so the
    control-character rule rejects it; anything else unchanged."""
    if not isinstance(v, str):
        return v
    return "".join("\x00" if "\ud800" <= ch <= "\udfff" else ch for ch in v)


def _arrow_text(s: pd.Series) -> pd.Series:
    try:
        return s.astype("string[pyarrow]")
    except (UnicodeError, TypeError, ValueError):  # lone surrogates from a Python caller
        return s.map(_no_surrogates, na_action="ignore").astype("string[pyarrow]")


def _stripped(s: pd.Series) -> pd.Series:
    """Text cells as Arrow strings (fast vectorised string ops), trimmed; other dtypes as is."""
    if _is_text(s):
        return _arrow_text(s).str.strip()
    return s


def _missing(s: pd.Series) -> pd.Series:
    """Missing or blank; ``s`` as returned by :func:`_stripped`."""
    if _is_text(s):
        return (s.isna() | s.eq("")).fillna(True).astype(bool)
    return s.isna()


def _text(s: pd.Series) -> pd.Series:
    return _arrow_text(s).str.strip()


def _text_problems(
    s: pd.Series, missing: pd.Series, max_len: int | None, kind: str = "code"
) -> list[tuple[pd.Series, str]]:
    """(mask, reason) for cells with a control character or longer than ``max_len`` once
    normalised as they would be stored (upper-casing can lengthen: 'ß' -> 'SS')."""
    txt = _text(s)
    txt = txt.str.upper() if kind == "id" else txt if kind == "text" else txt.str.lower()
    control = ~missing & txt.str.contains(CONTROL, regex=True).fillna(False).astype(bool)
    out = [(control, CONTROL_REASON)]
    if max_len is not None:
        long = ~missing & ~control & (txt.str.len() > max_len).fillna(False).astype(bool)
        out.append((long, f"longer than {max_len} characters"))
    return out


def _objects(s: pd.Series, missing: pd.Series, fill: object = None) -> pd.Series:
    """Plain Python objects (str), with ``fill`` where missing."""
    return s.astype(object).where(~missing, fill)


def _to_float(s: pd.Series) -> pd.Series:
    """Numbers from text; unparseable or blank -> NaN. Arrow's cast first, pandas when it fails."""
    if isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow":
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = pa.array(s.array)
        blank = pc.equal(arr, "")
        try:
            cast = pc.cast(pc.if_else(blank, pa.scalar(None, arr.type), arr), pa.float64())
            return pd.Series(cast.to_numpy(zero_copy_only=False), index=s.index, dtype="float64")
        except pa.ArrowInvalid:
            pass
    return pd.to_numeric(s, errors="coerce").astype("float64")


def _canonical_condition(text: str) -> str | None:
    """'Size=L; fabric = denim' -> 'fabric=denim;size=l'; None when malformed."""
    text = text.strip().lower()
    if not text:
        return ""
    pairs = []
    for part in text.split(";"):
        if not part.strip():
            continue
        attr, sep, value = part.partition("=")
        if not sep or not attr.strip() or not value.strip():
            return None
        pairs.append(f"{attr.strip()}={value.strip()}")
    return ";".join(sorted(pairs))


def _parse(
    col: Col, s: pd.Series, missing: pd.Series, limits: Limits
) -> tuple[pd.Series, pd.Series, str | pd.Series]:
    """(parsed values, bad-format mask, reason) for one column; missing values stay NaN/None."""
    none = pd.Series(False, index=s.index)
    if col.kind in ("id", "text", "code", "unit", "condition"):
        out = _text(s)
        if col.kind == "id":
            out = out.str.upper()
        elif col.kind != "text":
            out = out.str.lower()
        out = _objects(out, missing)
        if col.kind == "unit":
            out = out.map(lambda u: UNIT_SYNONYMS.get(u, u))
        if col.kind == "condition":
            uniq = {v: _canonical_condition(v) for v in out[~missing].unique()}
            out = out.map(lambda v: uniq.get(v, "")).astype(object)
            bad = ~missing & out.isna()
            return (
                out.where(~missing, col.default),
                bad,
                "malformed condition (want attr=value;...)",
            )
        return out.where(~missing, None), none, ""
    if col.kind in ("float", "int", "flag01"):
        src = s
        if col.kind == "flag01" and _is_text(s):
            src = _text(s).str.lower().replace(_TRUTHY)
        num = _to_float(src)
        bad = ~missing & ~np.isfinite(num)
        reason = "not a number"
        if col.kind in ("int", "flag01"):
            frac = ~bad & ~missing & (num != np.round(num))
            bad = bad | frac
            reason = "not a whole number" if frac.any() and not bad[~frac].any() else reason
        if col.kind == "flag01":
            bad = bad | (~missing & ~num.isin([0.0, 1.0]))
            reason = "must be 0 or 1"
        return num, bad, reason
    # dates
    if pd.api.types.is_datetime64_any_dtype(s):
        parsed = pd.to_datetime(s).dt.tz_localize(None) if getattr(s.dt, "tz", None) else s
        parsed = pd.to_datetime(parsed).dt.normalize()
    else:
        txt = _text(s)
        parsed = pd.to_datetime(txt.str[:10], format="%Y-%m-%d", errors="coerce")
        longer = (txt.str.len() > 10).fillna(False).astype(bool)
        midnight = txt.str[10:].str.match(r"^[T ]00:00(:00)?$").fillna(False).astype(bool)
        parsed = parsed.where(~longer | midnight)
        bad = ~missing & parsed.isna()
        if bad.any():  # a well-formed date pandas cannot hold (year 9999) is out of the window
            year = pd.to_numeric(txt.str.extract(r"^(\d{4})-\d\d-\d\d", expand=False))
            far = bad & ((year < limits.date_min.year) | (year > limits.date_max.year))
            reason = pd.Series("malformed date (want YYYY-MM-DD)", index=s.index, dtype=object)
            reason[far.fillna(False).astype(bool)] = f"outside {limits.window}"
            return parsed, bad, reason
    bad = ~missing & parsed.isna()
    return parsed, bad, "malformed date (want YYYY-MM-DD)"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def validate_table(
    spec: TableSpec,
    raw: pd.DataFrame,
    refs: Refs,
    file: str,
    limits: Limits = DEFAULT_LIMITS,
    *,
    missing_reason: str = "missing column",
) -> Validated:
    """Parse, normalise and check ``raw`` (columns already lower-cased; index: row positions).

    When a required column is absent every row is rejected with ``missing_reason``.
    """
    issues = _Issues(file, raw, limits.max_value_chars)
    notes: list[str] = []
    n = len(raw)
    out = pd.DataFrame(index=raw.index)
    absent_required = [c.name for c in spec.columns if c.required and c.name not in raw.columns]
    window = (pd.Timestamp(limits.date_min), pd.Timestamp(limits.date_max))
    for col in spec.columns:
        if col.name not in raw.columns:
            out[col.name] = None if col.required else col.default
            continue
        s = _stripped(raw[col.name])
        missing = _missing(s)
        if col.kind in ("id", "text", "code", "unit", "condition"):
            for mask, why in _text_problems(s, missing, col.max_len, col.kind):
                issues.add(mask, col.name, why)
                missing = missing | mask  # judged: no further rule applies to it
        parsed, bad, reason = _parse(col, s, missing, limits)
        if col.required:
            issues.add(_missing(s), col.name, "missing required value")
        issues.add(bad, col.name, reason)
        ok = ~missing & ~bad
        if col.kind in ("date", "week"):
            outside = ok & ((parsed < window[0]) | (parsed > window[1]))
            issues.add(outside, col.name, f"outside {limits.window}")
            ok = ok & ~outside
        if col.kind == "week":
            monday = parsed - pd.to_timedelta(parsed.dt.weekday, unit="D")
            moved = int((ok & (monday != parsed)).sum())
            if moved:
                notes.append(f"{file}: {moved} week dates moved to their Monday")
            parsed = monday
        if col.allowed is not None:
            allowed = sorted(col.allowed)
            issues.add(ok & ~parsed.isin(col.allowed), col.name, f"must be one of {allowed}")
        if col.gt is not None:
            issues.add(ok & (parsed <= col.gt), col.name, f"must be > {_fmt(col.gt)}")
        if col.min is not None:
            issues.add(ok & (parsed < col.min), col.name, f"must be >= {_fmt(col.min)}")
        if col.max is not None:
            issues.add(ok & (parsed > col.max), col.name, f"must be <= {_fmt(col.max)}")
        if not col.required and col.default is not None and col.kind != "condition":
            parsed = parsed.where(~missing, col.default)
        if col.ref is not None:
            unknown = ok & ~parsed.isin(refs.known(col.ref))
            issues.add(unknown, col.name, "unknown " + col.name + " (not in " + col.ref + ")")
        out[col.name] = parsed
    if absent_required:
        issues.add(pd.Series(True, index=raw.index), absent_required[0], missing_reason)
        notes.append(f"{file}: required columns missing: {', '.join(absent_required)}")
    attr_cols: list[str] = []
    if spec.extra_prefix:
        attr_cols, attr_notes = _attribute_columns(spec, raw, file)
        notes += attr_notes
        for c in attr_cols:
            s = _stripped(raw[c])
            for mask, why in _text_problems(s, _missing(s), spec.extra_max_len):
                issues.add(mask, c, why)

    if spec.name == "orders" and {"order_date", "due_date"} <= set(raw.columns):
        issues.add(out["due_date"] < out["order_date"], "due_date", "due_date before order_date")
    if spec.name == "production" and {"scrap", "quantity"} <= set(raw.columns):
        over = (out["quantity"] > 0) & (out["scrap"] > out["quantity"])
        issues.add(over, "scrap", "scrap above quantity")

    # duplicates of the key inside this input: the first one counts
    if not absent_required and n:
        key = list(spec.key)
        keyed = out[key].notna().all(axis=1)
        dup = keyed & out.duplicated(subset=key, keep="first")
        if dup.any():
            first = (
                out.index.to_series().groupby([out[k] for k in key], dropna=True).transform("min")
            )
            reason = (
                "duplicate "
                + "/".join(key)
                + " (first at row "
                + (first + 1).astype("Int64").astype(str)
                + ")"
            )
            issues.add(dup, key[0], reason)

    bad_rows = issues.rows()
    clean = out.drop(index=bad_rows)
    attributes = None
    if spec.extra_prefix:
        clean, attributes = _variant_attributes(spec.extra_prefix, attr_cols, raw, clean, refs)
    _remember(spec.name, clean, attributes, refs)
    return Validated(clean, issues.frame(), len(bad_rows), notes, attributes)


def _attribute_columns(
    spec: TableSpec, raw: pd.DataFrame, file: str
) -> tuple[list[str], list[str]]:
    """The usable ``attr_*`` columns, and notes on those ignored (name too long, control chars)."""
    prefix = spec.extra_prefix or ""
    cols, bad = [], []
    for c in raw.columns:
        if not (c.startswith(prefix) and len(c) > len(prefix)):
            continue
        name = c[len(prefix) :]
        if len(name) > spec.extra_max_len or re.search(CONTROL, name):
            bad.append(c)
        else:
            cols.append(c)
    notes = []
    if bad:
        shown = ", ".join(shown_value(c, 40) for c in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        notes.append(
            f"{file}: ignored attribute columns {shown}{more} (name longer than "
            f"{spec.extra_max_len} characters or with control characters)"
        )
    return cols, notes


def _variant_attributes(
    prefix: str, cols: list[str], raw: pd.DataFrame, clean: pd.DataFrame, refs: Refs
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long attribute frame of the clean variants, and a flag on those with unknown values."""
    clean = clean.copy()
    clean["flagged"] = False
    clean["flag_reason"] = None
    if not cols or clean.empty:
        return clean, pd.DataFrame(columns=["variant_id", "attribute", "value"])
    vals = pd.DataFrame(index=clean.index)
    for c in cols:
        s = _stripped(raw.loc[clean.index, c])
        vals[c] = _objects(s.str.lower() if _is_text(s) else s.astype(str), _missing(s))
    vals.columns = [c[len(prefix) :] for c in cols]
    vals["variant_id"] = clean["variant_id"]
    vals["family_id"] = clean["family_id"]
    long = vals.melt(id_vars=["variant_id", "family_id"], var_name="attribute", value_name="value")
    long = long.dropna(subset=["value"])
    known = long.merge(
        refs.allowed.drop_duplicates(), on=["family_id", "attribute", "value"], how="left",
        indicator=True,
    )  # fmt: skip
    new = known[known["_merge"] == "left_only"]
    if not new.empty:
        reason = (
            ("new value " + new["attribute"] + "=" + new["value"])
            .groupby(new["variant_id"])
            .agg("; ".join)
        )
        hit = clean["variant_id"].isin(reason.index)
        clean.loc[hit, "flagged"] = True
        clean.loc[hit, "flag_reason"] = clean.loc[hit, "variant_id"].map(reason).str[:200]
    return clean, long[["variant_id", "attribute", "value"]].reset_index(drop=True)


def _remember(name: str, clean: pd.DataFrame, attributes: pd.DataFrame | None, refs: Refs) -> None:
    """Make the accepted rows visible to the tables validated after this one."""
    keyed = {"families": "family_id", "variants": "variant_id", "lines": "line_id"}
    keyed["materials"] = "material_id"
    if name in keyed:
        refs.known(name).update(clean[keyed[name]].tolist())
    if name == "family_attributes":
        parts = [refs.allowed] if len(refs.allowed) else []
        refs.allowed = pd.concat(
            [*parts, clean[["family_id", "attribute", "value"]]], ignore_index=True
        )
    if name == "variants":
        refs.list_price.update(zip(clean["variant_id"], clean["list_price"], strict=True))
