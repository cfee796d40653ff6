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


HEADER = "txId,datetime,txAmount,txDirection,txSummary,txCounterparty\n"


def rejected(statement) -> list[tuple[int, str]]:
    return [(row.line, row.reason) for row in statement.rejected]


def test_gbk_and_bom_statements_read_like_utf8(tmp_path):
    text = (HEADER + "T1,2026-03-01 09:15:00,100,收入,工资,上海某某科技有限公司\n"
            "T2,2026-03-02 10:00:00,5,支出,赌资,张三\n")
    expected = read_statement(write(tmp_path, text, "utf8.csv"))
    for name, data, encoding in [("gbk.csv", text.encode("gbk"), "gb18030"),
                                 ("gb18030.csv", text.encode("gb18030"), "gb18030"),
                                 ("bom.csv", text.encode("utf-8-sig"), "utf-8")]:
        (tmp_path / name).write_bytes(data)
        statement = read_statement(tmp_path / name)
        assert statement.encoding == encoding
        assert statement.rows.drop(columns="account").equals(expected.rows.drop(columns="account"))
    explicit = read_statement(tmp_path / "gbk.csv", encoding="gbk")
    assert explicit.rows["memo"].tolist() == ["工资", "赌资"] and explicit.encoding == "gbk"


def test_ragged_rows_are_rejected_by_line_and_the_rest_is_read(tmp_path):
    text = (HEADER + "T1,2026-03-01 09:15:00,100,收入,工资,甲\n"
            "T2,2026-03-01 09:16:00,100,收入,工资,乙,extra\n"  # line 3: one field too many
            "\n"  # line 4: blank, skipped
            'T3,2026-03-01 09:17:00,"1,000.50",支出,"two\nlines",丙\n'  # lines 5-6: quoted comma and newline
            "T4,2026-03-01\n"  # line 7: too few fields
            "T5,2026-03-01 09:18:00,7,支出,x,丁")  # line 8, no final newline
    statement = read_statement(write(tmp_path, text))
    assert [(line, reason.split(" (")[0]) for line, reason in rejected(statement)] == [
        (3, "7 field(s), expected 6"), (7, "2 field(s), expected 6")]
    rows = statement.rows
    assert rows["tx_id"].tolist() == ["T1", "T3", "T5"] and rows["line"].tolist() == [2, 5, 8]
    assert rows["amount"].tolist() == [100.0, 1000.5, 7.0] and rows["memo"].iloc[1] == "two\nlines"


def test_loose_quotes_fall_back_to_the_exact_reader(tmp_path):
    text = HEADER + 'T1,2026-03-01 09:15:00,100,收入,5" screen,甲\nT2,2026-03-01 09:16:00,9,收入,x,乙,extra\n'
    statement = read_statement(write(tmp_path, text))
    assert statement.rows["memo"].tolist() == ['5" screen']
    assert [line for line, _ in rejected(statement)] == [3]


def test_bad_and_far_dates_are_rejected_by_line(tmp_path):
    text = (HEADER + "T1,2026-03-01 09:15:00,1,收入,a,b\nT2,9999-12-31 00:00:00,1,收入,a,b\n"
            "T3,0001-01-01,1,收入,a,b\nT4,1899-12-31T23:00:00Z,1,收入,a,b\nT5,someday,1,收入,a,b\n"
            "T6,,1,收入,a,b\nT7,2026-03-02,1,收入,a,b\n")
    statement = read_statement(write(tmp_path, text))
    reasons = dict(rejected(statement))
    assert sorted(reasons) == [3, 4, 5, 6, 7]
    assert all("outside 1900-01-01 to 2199-12-31" in reasons[line] for line in (3, 4, 5))
    assert "unparseable" in reasons[6] and "missing" in reasons[7]
    assert statement.rows["tx_id"].tolist() == ["T1", "T7"]


def test_offsets_and_zones_end_in_utc(tmp_path):
    text = (HEADER + "T1,2026-03-01T09:15:00+08:00,1,收入,a,b\nT2,2026-03-01T01:15:00Z,1,收入,a,b\n"
            "T3,2026-02-28T20:15:00-05:00,1,收入,a,b\nT4,2026-03-01 09:15:00,1,收入,a,b\n"
            "T5,2026/03/01 10:15,1,收入,a,b\nT6,2026-03-01 02:15:00 UTC,1,收入,a,b\n")
    path = write(tmp_path, text)
    shanghai = read_statement(path).rows.set_index("tx_id")["time"]
    assert {tx: t.isoformat() for tx, t in shanghai.items()} == {
        "T1": "2026-03-01T01:15:00+00:00", "T2": "2026-03-01T01:15:00+00:00", "T3": "2026-03-01T01:15:00+00:00",
        "T4": "2026-03-01T01:15:00+00:00", "T5": "2026-03-01T02:15:00+00:00", "T6": "2026-03-01T02:15:00+00:00"}
    utc = read_statement(path, timezone="UTC").rows.set_index("tx_id")["time"]
    assert utc["T4"].isoformat() == "2026-03-01T09:15:00+00:00" and utc["T1"] == shanghai["T1"]


def test_an_ambiguous_local_time_is_rejected(tmp_path):
    text = HEADER + "T1,2026-11-01 01:30:00,1,in,a,b\nT2,2026-11-01 03:30:00,1,in,a,b\n"
    statement = read_statement(write(tmp_path, text), timezone="America/New_York")
    assert [line for line, _ in rejected(statement)] == [2] and "ambiguous" in statement.rejected[0].reason


def test_duplicate_tx_ids_are_rejected_per_account(tmp_path):
    text = ("account,txId,datetime,txAmount,txDirection,txSummary,txCounterparty\n"
            "A,T1,2026-03-01 09:00,1,in,a,b\nB,T1,2026-03-01 09:00,1,in,a,b\n"
            "A,T1,2026-03-02 09:00,2,in,a,b\nA,T2,2026-03-02 09:00,2,in,a,b\n")
    statement = read_statement(write(tmp_path, text))
    assert rejected(statement) == [(4, "duplicate txId 'T1' (first on line 2)")]
    assert statement.rows[["account", "tx_id"]].values.tolist() == [["A", "T1"], ["A", "T2"], ["B", "T1"]]


@pytest.mark.broker  # runs a `bankguard` command
def test_scan_reports_rejections_on_stderr_and_in_the_report(tmp_path):
    text = (HEADER + "T1,2026-03-01 09:15:00,1,收入,a,b\nT1,2026-03-01 09:16:00,2,收入,a,b\n"
            "T3,2026-03-01 09:17:00,3,收入,a,b,c\nT4,9999-01-01,4,收入,a,b\n")
    path = tmp_path / "gbk.csv"
    path.write_bytes(text.encode("gbk"))
    result = subprocess.run([sys.executable, "-m", "bankguard", "statements", "scan", str(path), "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [r["line"] for r in report["rejected"]] == [3, 4, 5]
    summary = report["summary"]
    assert (summary["rows"], summary["scanned"], summary["rejected"], summary["encoding"]) == (4, 1, 3, "gb18030")
    assert summary["rejected_by_reason"] == {"ragged row": 1, "bad datetime": 1, "duplicate txId": 1}
    assert result.stderr.count("\n") == 1 and "3 of 4 row(s) rejected" in result.stderr
    assert "under 'rejected' in the report" in result.stderr
