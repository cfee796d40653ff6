"""Statement CSV: bad rows reported with line and reason, good rows published."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from bankguard.statements import read_statement
from bankguard.topics import Topics
from bankguard.settings import settings_env
from kafka_helpers import read_topic

STATEMENT = """txId,datetime,txAmount,txDirection,txSummary,txCounterparty
T1,2026-03-01 09:15:00,12000.00,收入,工资,上海某某科技有限公司
T2,2026-03-02 14:00:00,-350.5,支出,水电费,国家电网
T3,not-a-date,100,支出,消费,超市
T4,2026-03-03 10:00:00,abc,支出,消费,超市
T5,2026-03-04 11:30:00,"60,000.00",支出,,张三
T6,2026-03-05 12:00:00,10,sideways,消费,超市
T7,2026-03-06 08:00:00,8000,,报销,上海某某科技有限公司
"""


def write(tmp_path: Path, text: str = STATEMENT, name: str = "ACC-42.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_reader_keeps_good_rows_and_names_bad_ones(tmp_path):
    statement = read_statement(write(tmp_path))
    assert [(r.line, r.reason.split(" ")[0]) for r in statement.rejected] == [
        (4, "unparseable"), (5, "unparseable"), (7, "unknown")]
    assert "datetime" in statement.rejected[0].reason and "amount" in statement.rejected[1].reason
    rows = statement.rows
    assert rows["tx_id"].tolist() == ["T1", "T2", "T5", "T7"]
    assert set(rows["account"]) == {"ACC-42"}  # one account per file: the file name
    assert rows["amount"].tolist() == [12000.0, -350.5, 60000.0, 8000.0]
    assert rows["direction"].tolist() == ["in", "out", "out", "in"]
    # Local Shanghai time becomes UTC.
    assert rows["time"].iloc[0].isoformat() == "2026-03-01T01:15:00+00:00"


def test_account_column_splits_accounts(tmp_path):
    text = ("account,txId,datetime,txAmount,txDirection,txSummary,txCounterparty\n"
            "A,1,2026-01-02 10:00,5,收入,x,y\nB,2,2026-01-01 10:00,6,支出,x,y\n")
    rows = read_statement(write(tmp_path, text)).rows
    assert rows[["account", "tx_id"]].values.tolist() == [["A", "1"], ["B", "2"]]


@pytest.mark.broker  # runs a `bankguard` command
def test_ingest_publishes_good_rows_and_reports_bad_ones(settings, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bankguard", "ingest", "statements", str(write(tmp_path)), "--json"],
        env=settings_env(settings), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["published"] == 4
    assert [r["line"] for r in report["rejected"]] == [4, 5, 7]
    records = read_topic(settings, Topics(settings.topics.prefix).scenario("aml_kyc"), expected=4)
    events = sorted((orjson.loads(r.value) for r in records), key=lambda e: e["event_time"])
    assert [e["event_id"] for e in events] == ["stmt-ACC-42-T1", "stmt-ACC-42-T2", "stmt-ACC-42-T5", "stmt-ACC-42-T7"]
    assert events[2]["memo"] is None and events[2]["counterparty"] == "张三"
    assert {r.key for r in records} == {b"ACC-42"}


@pytest.mark.broker  # runs a `bankguard` command
def test_a_file_without_the_statement_columns_is_one_clear_line(settings, tmp_path):
    bad = write(tmp_path, "a,b\n1,2\n", "other.csv")
    result = subprocess.run(
        [sys.executable, "-m", "bankguard", "ingest", "statements", str(bad)],
        env=settings_env(settings), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and "missing column" in result.stderr
    assert "Traceback" not in result.stderr
