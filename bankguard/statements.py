"""Reader of the bank-statement CSV layout, shared by statement ingest and statement scan.

Layout: ``txId, datetime, txAmount, txDirection, txSummary, txCounterparty`` with an
optional account column; one account per file otherwise. Rows whose date or amount
cannot be parsed, or whose direction is unknown, are returned as rejected rows with
their line number and reason; they never abort the read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bankguard.errors import BankguardError
from bankguard.events import iso_times

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


@dataclass(frozen=True)
class Statement:
    """Parsed rows, sorted by account then time.

    Columns: ``line, tx_id, account, time`` (UTC), ``amount, direction, memo,
    counterparty``.
    """

    rows: pd.DataFrame
    rejected: list[RejectedRow]


def read_statement(path: Path, *, account: str | None = None, timezone: str = "Asia/Shanghai") -> Statement:
    """Parse a statement file; raise :class:`BankguardError` only for an unusable file."""
    if not path.is_file():
        raise BankguardError(f"statement file not found: {path}")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True,
                          encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise BankguardError(f"{path}: not a readable CSV statement ({exc})") from None
    raw.columns = [str(col).strip() for col in raw.columns]
    missing = [col for col in REQUIRED if col not in raw.columns]
    if missing:
        raise BankguardError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(REQUIRED)}")
    account_column = next((col for col in ACCOUNT_COLUMNS if col in raw.columns), None)

    line = np.arange(2, len(raw) + 2)
    when = pd.to_datetime(raw["datetime"].str.strip(), errors="coerce", format="mixed")
    amount = pd.to_numeric(raw["txAmount"].str.replace(",", "", regex=False).str.strip(),
                           errors="coerce")
    direction_text = raw["txDirection"].str.strip().str.lower()
    direction = direction_text.map(DIRECTIONS)
    inferred = np.where(amount < 0, "out", "in")
    direction = direction.where(direction_text != "", pd.Series(inferred, index=raw.index))

    bad_when = when.isna().to_numpy()
    bad_amount = ~bad_when & ~np.isfinite(amount.to_numpy(dtype=float, na_value=np.nan))
    bad_direction = ~bad_when & ~bad_amount & direction.isna().to_numpy()
    bad = pd.Series(bad_when | bad_amount | bad_direction, index=raw.index)
    rejected = [RejectedRow(int(line[i]), _reason(raw, i, bool(bad_when[i]), bool(bad_amount[i])))
                for i in np.flatnonzero(bad.to_numpy()).tolist()]

    good = ~bad
    if when.dt.tz is None:
        when = when.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="shift_forward")
    default_account = account or path.stem
    rows = pd.DataFrame({
        "line": line[good.to_numpy()],
        "tx_id": raw.loc[good, "txId"].str.strip(),
        "account": (raw.loc[good, account_column].str.strip().replace("", default_account)
                    if account_column else default_account),
        "time": when[good].dt.tz_convert("UTC"),
        "amount": amount[good].astype(float),
        "direction": direction[good],
        "memo": raw.loc[good, "txSummary"].str.strip(),
        "counterparty": raw.loc[good, "txCounterparty"].str.strip(),
    })
    rows = rows.sort_values(["account", "time", "line"], kind="stable").reset_index(drop=True)
    return Statement(rows, rejected)


def _reason(raw: pd.DataFrame, i: int, bad_when: bool, bad_amount: bool) -> str:
    """Why row ``i`` was rejected, quoting the offending value (shortened)."""
    if bad_when:
        return f"unparseable datetime {raw['datetime'].iat[i][:40]!r}"
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
