"""Statement scan speed: rows/s of ``bankguard statements scan`` over a large statement.

Prints JSON. Writes a seeded statement CSV in the seed layout (an ``account`` column,
many accounts, salaries, bills, a few large and keyword-bearing movements), then times,
in the same process: reading and parsing the CSV alone (the baseline every scan pays),
and the whole scan (read, features, rules). The ratio says what the rules cost on top.

    python benchmarks/statements.py [--rows 1000000] [--accounts 20000] [--dirty 0.01]

``--dirty F`` makes a share F of the rows messy the way real exports are: times with
``+08:00`` offsets or ``Z``, repeated txIds, ragged rows; they are read or rejected per row.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bankguard.rules.config import load_rules
from bankguard.statement_scan import scan_statement
from bankguard.statements import read_statement

MEMOS = np.array(["工资", "房租", "水电费", "转账", "餐饮", "网购", "还款", "", "理财", "赌资", "货款"])
MEMO_WEIGHTS = np.array([0.08, 0.05, 0.1, 0.2, 0.2, 0.2, 0.05, 0.05, 0.05, 0.001, 0.019])


def write_statement(path: Path, rows: int, accounts: int, seed: int, dirty: float = 0.0) -> None:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-01-01").value // 1_000_000
    times = start + np.sort(rng.integers(0, 180 * 86_400_000, rows))
    amount = np.round(rng.lognormal(6.0, 1.4, rows), 2)
    large = rng.random(rows) < 0.002
    amount[large] = np.round(rng.uniform(50_000, 400_000, large.sum()), -2)
    frame = pd.DataFrame({
        "account": np.char.add("ACC-", rng.integers(0, accounts, rows).astype(str)),
        "txId": np.char.add("T", np.arange(rows).astype(str)),
        "datetime": pd.to_datetime(times, unit="ms").strftime("%Y-%m-%d %H:%M:%S"),
        "txAmount": amount,
        "txDirection": np.where(rng.random(rows) < 0.4, "收入", "支出"),
        "txSummary": rng.choice(MEMOS, rows, p=MEMO_WEIGHTS / MEMO_WEIGHTS.sum()),
        "txCounterparty": np.char.add("CP-", rng.integers(0, 5_000, rows).astype(str)),
    })
    messy = np.flatnonzero(rng.random(rows) < dirty)
    offsets, repeats, ragged = np.array_split(rng.permutation(messy), 3)
    utc = pd.to_datetime(times[offsets] - 8 * 3_600_000, unit="ms")
    frame.loc[offsets, "datetime"] = np.where(rng.random(len(offsets)) < 0.5,
                                              utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                              frame.loc[offsets, "datetime"].to_numpy() + "+08:00")
    for column in ("account", "txId"):  # the same transaction of the same account, twice
        frame.loc[repeats, column] = frame.loc[np.maximum(repeats - 1, 0), column].to_numpy()
    lines = frame.to_csv(index=False).split("\n")
    for row in ragged.tolist():  # one field too many
        lines[row + 1] += ",extra"
    path.write_text("\n".join(lines), encoding="utf-8")


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dirty", type=float, default=0.0, help="Share of messy rows (offsets, repeats, ragged).")
    args = parser.parse_args()
    config = load_rules()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "statement.csv"
        write_statement(path, args.rows, args.accounts, args.seed, args.dirty)
        read_s, _ = timed(lambda: read_statement(path))
        scan_s, result = timed(lambda: scan_statement(path, config))
    print(json.dumps({
        "benchmark": "statement_scan",
        "rows": args.rows,
        "accounts": args.accounts,
        "dirty": args.dirty,
        "rejected": result.summary["rejected_by_reason"],
        "anomalies": result.summary["anomalies"],
        "read_seconds": round(read_s, 2),
        "scan_seconds": round(scan_s, 2),
        "scan_rows_per_s": round(args.rows / scan_s),
        "rules_cost_ratio": round(scan_s / read_s, 2),
        "by_rule": result.summary["by_rule"],
    }, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
