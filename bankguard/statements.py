"""Reader of the bank-statement CSV layout, shared by statement ingest and statement scan.

Layout: ``txId, datetime, txAmount, txDirection, txSummary, txCounterparty`` with an
optional account column; one account per file otherwise. The file may be UTF-8 (with or
without a BOM) or GBK/GB18030. Rows with the wrong number of fields, a datetime that does
not parse or lies outside 1900-2199, a bad amount or direction, or a txId the account
already used are returned as rejected rows with their line number and reason; they never
abort the read. Datetimes with an offset keep it; the others are local to ``timezone``;
all end in UTC.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from bankguard.csv_records import split_records
from bankguard.errors import BankguardError
from bankguard.events import iso_times
from bankguard.statement_times import parse_times
from bankguard.text_encoding import AUTO, to_utf8
from bankguard.time_zones import check_time_zone

REQUIRED = ("txId", "datetime", "txAmount", "txDirection", "txSummary", "txCounterparty")
ACCOUNT_COLUMNS = ("account", "accountId", "account_id", "txAccount")
DIRECTIONS = {
    "收入": "in", "income": "in", "in": "in", "credit": "in", "cr": "in",
    "支出": "out", "expense": "out", "out": "out", "debit": "out", "dr": "out",
}


@dataclass(frozen=True)
class RejectedRow:
    line: int  # 1-based line in the file, header is line 1
    reason: str


REASON_KINDS = (("field(s), expected", "ragged row"), ("duplicate txId", "duplicate txId"),
                ("datetime", "bad datetime"), ("amount", "bad amount"), ("direction", "bad direction"))


def reason_kind(reason: str) -> str:
    """The kind of a rejection (``ragged row``, ``bad datetime`` ...), for summaries."""
    return next((kind for needle, kind in REASON_KINDS if needle in reason), "other")


@dataclass(frozen=True)
class Statement:
    """Parsed rows, sorted by account then time.

    Columns: ``line, tx_id, account, time`` (UTC), ``amount, direction, memo,
    counterparty``.
    """

    rows: pd.DataFrame
    rejected: list[RejectedRow]
    encoding: str = "utf-8"


def read_statement(path: Path, *, account: str | None = None, timezone: str = "Asia/Shanghai",
                   encoding: str = AUTO) -> Statement:
    """Parse a statement file; raise :class:`BankguardError` only for an unusable file.

    Every row that cannot be used (ragged, bad datetime, amount or direction, a repeated
    txId of the same account) is rejected on its own, by line and reason; the rest is read."""
    check_time_zone(timezone)
    data, used_encoding = to_utf8(_read_bytes(path), encoding, name=str(path))
    records = split_records(data)
    present = records.fields > 0
    if not present.any():
        raise BankguardError(f"{path}: empty statement; expected a header {', '.join(REQUIRED)}")
    header = int(np.flatnonzero(present)[0])
    expected = int(records.fields[header])
    ragged = present & (records.fields != expected)
    keep = present & ~ragged
    raw = _parse_csv(path, records.keep_bytes(data, keep))
    line = records.line[keep][1:]
    if len(raw) != len(line):  # the record split and the parser disagree: never guess which row is which
        raise BankguardError(f"{path}: {len(raw)} rows parsed but {len(line)} records found; check its quoting")
    raw.columns = [str(col).strip() for col in raw.columns]
    missing = [col for col in REQUIRED if col not in raw.columns]
    if missing:
        raise BankguardError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(REQUIRED)}")
    account_column = next((col for col in ACCOUNT_COLUMNS if col in raw.columns), None)
    rejected = [RejectedRow(int(n), f"{int(f)} field(s), expected {expected} (a ragged row: check its commas "
                                    "and quotes)") for n, f in zip(records.line[ragged].tolist(),
                                                                     records.fields[ragged].tolist(), strict=True)]

    times = parse_times(raw["datetime"].str.strip(), timezone)
    amount = pd.to_numeric(raw["txAmount"].str.replace(",", "", regex=False).str.strip(), errors="coerce")
    direction_text = raw["txDirection"].str.strip().str.lower()
    direction = direction_text.map(DIRECTIONS)
    inferred = np.where(amount < 0, "out", "in")
    direction = direction.where(direction_text != "", pd.Series(inferred, index=raw.index))

    bad_when = np.zeros(len(raw), dtype=bool)
    bad_when[times.bad] = True
    bad_amount = ~bad_when & ~np.isfinite(amount.to_numpy(dtype=float, na_value=np.nan))
    bad_direction = ~bad_when & ~bad_amount & direction.isna().to_numpy()
    when_reasons = dict(zip(times.bad.tolist(), times.reasons, strict=True))
    rejected += [RejectedRow(int(line[i]), when_reasons.get(i) or _reason(raw, i, bool(bad_amount[i])))
                 for i in np.flatnonzero(bad_when | bad_amount | bad_direction).tolist()]
    good = ~(bad_when | bad_amount | bad_direction)

    default_account = account or path.stem
    rows = pd.DataFrame({
        "line": line[good],
        "tx_id": raw.loc[good, "txId"].str.strip(),
        "account": (raw.loc[good, account_column].str.strip().replace("", default_account)
                    if account_column else default_account),
        "time": times.utc[good],
        "amount": amount[good].astype(float),
        "direction": direction[good],
        "memo": raw.loc[good, "txSummary"].str.strip(),
        "counterparty": raw.loc[good, "txCounterparty"].str.strip(),
    })
    rows, duplicates = _drop_duplicate_ids(rows)
    rejected = sorted(rejected + duplicates, key=lambda row: row.line)
    rows = rows.sort_values(["account", "time", "line"], kind="stable").reset_index(drop=True)
    return Statement(rows, rejected, used_encoding)


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise BankguardError(f"statement file not found: {path}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BankguardError(f"cannot read {path}: {exc.strerror}") from None


def _parse_csv(path: Path, data: bytes) -> pd.DataFrame:
    """The rectangular rows (ragged ones already taken out) as strings, by the fast Arrow parser."""
    try:
        return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, engine="pyarrow", encoding="utf-8")
    except (pa.ArrowInvalid, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise BankguardError(f"{path}: not a readable CSV statement ({exc})") from None


def _drop_duplicate_ids(rows: pd.DataFrame) -> tuple[pd.DataFrame, list[RejectedRow]]:
    """Later rows repeating an account's txId are rejected: one transaction, one event id."""
    repeated = (rows["tx_id"].duplicated(keep=False) & (rows["tx_id"] != "")).to_numpy()
    if not repeated.any():  # the usual case, decided on one column
        return rows, []
    dup = np.zeros(len(rows), dtype=bool)
    dup[repeated] = rows[repeated].duplicated(["account", "tx_id"], keep="first").to_numpy()
    if not dup.any():
        return rows, []
    first = rows[~dup].set_index(["account", "tx_id"])["line"]
    repeats = rows[dup]
    first_lines = first.reindex(pd.MultiIndex.from_frame(repeats[["account", "tx_id"]])).tolist()
    rejected = [RejectedRow(int(n), f"duplicate txId {tx[:40]!r} (first on line {int(f)})")
                for n, tx, f in zip(repeats["line"].tolist(), repeats["tx_id"].tolist(), first_lines, strict=True)]
    return rows[~dup], rejected


def _reason(raw: pd.DataFrame, i: int, bad_amount: bool) -> str:
    """Why row ``i`` was rejected, quoting the offending value (shortened)."""
    if bad_amount:
        return f"unparseable amount {raw['txAmount'].iat[i][:40]!r}"
    return f"unknown direction {raw['txDirection'].iat[i][:20]!r} (expected 收入/支出 or income/expense)"


STATEMENT_SCENARIO = "aml_kyc"
EVENT_COLUMNS = ("schema_version", "event_id", "scenario", "entity_id", "event_time", "amount", "currency",
                 "direction", "channel", "source_country", "destination_country", "pep", "memo", "counterparty")


def _event_ids(rows: pd.DataFrame) -> list[str]:
    """Stable ids ``stmt-<account>-<txId or line>``; ids over the schema's 64 chars are hashed."""
    tx_ids = rows["tx_id"].where(rows["tx_id"] != "", "line" + rows["line"].astype(str))
    ids = ("stmt-" + rows["account"] + "-" + tx_ids).tolist()
    return [i if len(i) <= 64 else "stmt-" + hashlib.sha256(i.encode()).hexdigest()[:40] for i in ids]


def statement_frame(statement: Statement, *, currency: str = "CNY", country: str = "CN") -> pd.DataFrame:
    """The statement's rows as ``aml_kyc`` events (``EVENT_COLUMNS``) plus ``t_ms``, ``tx_id``
    and ``line``: what ingest publishes and what the scan scores, from one mapping."""
    rows = statement.rows
    t_ms = ((rows["time"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)).to_numpy(np.int64)
    frame = pd.DataFrame({
        "schema_version": 1,
        "event_id": _event_ids(rows),
        "scenario": STATEMENT_SCENARIO,
        "entity_id": rows["account"],
        "event_time": iso_times(t_ms),
        "amount": rows["amount"],
        "currency": currency,
        "direction": rows["direction"],
        "channel": "statement",
        "source_country": country,
        "destination_country": country,
        "pep": False,
        "memo": rows["memo"].replace("", None),
        "counterparty": rows["counterparty"].replace("", None),
        "t_ms": t_ms,
        "tx_id": rows["tx_id"],
        "line": rows["line"],
    })
    return frame
