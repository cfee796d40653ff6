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

    reasons = pd.Series("", index=raw.index)
    reasons = reasons.mask(when.isna(), "unparseable datetime " + raw["datetime"].str.slice(0, 40).map(repr))
    reasons = reasons.mask((reasons == "") & (amount.isna() | ~np.isfinite(amount.fillna(0))),
                           "unparseable amount " + raw["txAmount"].str.slice(0, 40).map(repr))
    reasons = reasons.mask((reasons == "") & direction.isna(),
                           "unknown direction " + raw["txDirection"].str.slice(0, 20).map(repr)
                           + " (expected 收入/支出 or income/expense)")
    bad = reasons != ""
    rejected = [RejectedRow(int(n), r) for n, r in zip(line[bad.to_numpy()], reasons[bad], strict=True)]

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


STATEMENT_SCENARIO = "aml_kyc"
EVENT_COLUMNS = ("schema_version", "event_id", "scenario", "entity_id", "event_time", "amount", "currency",
                 "direction", "channel", "source_country", "destination_country", "pep", "memo", "counterparty")


def statement_event_id(account: str, tx_id: str, line: int) -> str:
    """Stable id for a statement row; long ids are hashed to fit the schema's 64 chars."""
    event_id = f"stmt-{account}-{tx_id or f'line{line}'}"
    if len(event_id) <= 64:
        return event_id
    return "stmt-" + hashlib.sha256(event_id.encode()).hexdigest()[:40]


def statement_frame(statement: Statement, *, currency: str = "CNY", country: str = "CN") -> pd.DataFrame:
    """The statement's rows as ``aml_kyc`` events (``EVENT_COLUMNS``) plus ``t_ms``, ``tx_id``
    and ``line``: what ingest publishes and what the scan scores, from one mapping."""
    rows = statement.rows
    frame = pd.DataFrame({
        "schema_version": 1,
        "event_id": [statement_event_id(a, t, n) for a, t, n in
                     zip(rows["account"].tolist(), rows["tx_id"].tolist(), rows["line"].tolist(), strict=True)],
        "scenario": STATEMENT_SCENARIO,
        "entity_id": rows["account"],
        "event_time": rows["time"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str.slice(0, 23) + "Z",
        "amount": rows["amount"],
        "currency": currency,
        "direction": rows["direction"],
        "channel": "statement",
        "source_country": country,
        "destination_country": country,
        "pep": False,
        "memo": rows["memo"].replace("", None),
        "counterparty": rows["counterparty"].replace("", None),
        "t_ms": (rows["time"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1),
        "tx_id": rows["tx_id"],
        "line": rows["line"],
    })
    return frame
