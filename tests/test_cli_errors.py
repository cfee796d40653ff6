"""User mistakes end in one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from bankguard.broker import free_port
from bankguard.event_files import RecordFileWriter, event_schema
from bankguard.output_files import atomic_output, write_text_atomic
from kafka_helpers import wait_until

pytestmark = pytest.mark.broker  # every test runs a `bankguard` command


def bankguard(*args: str, env: dict[str, str] | None = None, timeout: float = 60,
              cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bankguard", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=cwd)


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


GOOD_STATEMENT = ("txId,datetime,txAmount,txDirection,txSummary,txCounterparty\n"
                  "T1,2026-03-01 09:15:00,100,收入,工资,某某公司\n")
FILES = {
    "s.csv": GOOD_STATEMENT.encode(),
    "gbk.csv": GOOD_STATEMENT.encode("gbk"),
    "latin1.csv": ("txId,datetime,txAmount,txDirection,txSummary,txCounterparty\n"
                   "T1,2026-03-01,1,in,café,x\n").encode("latin-1"),
    "other.csv": b"a,b\n1,2\n",
    "empty.csv": b"",
    "bad.yaml": b"x: [\n",
    "ev.jsonl": b'{"a": 1}\n',
    "garbage.pem": b"not a certificate\n",
    "afile": b"a file where a directory is expected\n",
}
SSL = {"BANKGUARD_KAFKA__SECURITY_PROTOCOL": "SSL"}
REPLAY = ["replay", "--topics", "all", "--from", "2026-01-01", "--to", "2026-02-01"]

# (args, extra environment, a piece of the one line). Every case runs in a directory holding FILES;
# afterwards the directory must hold exactly FILES: nothing written, half-written or created.
CASES = {
    "unknown option": (["produce", "--bogus"], {}, "--bogus"),
    "unknown command": (["frobnicate"], {}, "frobnicate"),
    "unknown scenario": (["produce", "--scenarios", "credit_card,nope"], {}, "nope"),
    "negative rate": (["produce", "--rate", "-3"], {}, "--rate"),
    "rate nan": (["produce", "--rate", "nan", "--out", "x.parquet"], {}, "--rate"),
    "rate inf": (["produce", "--rate", "inf", "--out", "x.parquet"], {}, "--rate"),
    "days inf": (["produce", "--days", "inf", "--out", "x.parquet"], {}, "--days"),
    "days nan": (["produce", "--days", "nan", "--out", "x.parquet"], {}, "--days"),
    "duration nan": (["produce", "--duration", "nan", "--out", "x.parquet"], {}, "--duration"),
    "speed inf": (["produce", "--speed", "inf", "--out", "x.parquet"], {}, "--speed"),
    "start not a date": (["produce", "--start", "soon", "--out", "x.parquet"], {}, "--start"),
    "start year 1": (["produce", "--start", "0001-01-01", "--count", "5", "--out", "x.parquet"], {}, "outside"),
    "out in a missing directory": (["produce", "--count", "5", "--out", "no/dir/x.parquet"], {}, "does not exist"),
    "out of an unknown type": (["produce", "--count", "5", "--out", "x.txt"], {}, "unknown file type"),
    "out is a directory": (["produce", "--count", "5", "--out", "."], {}, "--out"),
    "report in a missing directory": (["produce", "--count", "5", "--out", "x.parquet", "--report", "no/dir/r.json"],
                                      {}, "--report"),
    "report under a file": (["produce", "--count", "5", "--out", "x.jsonl", "--report", "afile/r.json"],
                            {}, "--report"),
    "settings group not JSON": (["topics"], {"BANKGUARD_KAFKA": "{not json"}, "BANKGUARD_KAFKA"),
    "setting not a number": (["topics"], {"BANKGUARD_TOPICS__PARTITIONS": "zero"}, "topics.partitions"),
    "setting not a choice": (["topics"], {"BANKGUARD_KAFKA__SECURITY_PROTOCOL": "TLS"}, "security_protocol"),
    "ssl ca file missing": (["topics"], SSL | {"BANKGUARD_KAFKA__SSL_CAFILE": "missing.pem"}, "ssl.ca.location"),
    "ssl ca file not a certificate": (["produce", "--count", "5", "--no-progress"],
                                      SSL | {"BANKGUARD_KAFKA__SSL_CAFILE": "garbage.pem"}, "ssl.ca.location"),
    "up summary without duration": (["up", "--summary", "s.json"], {}, "--duration"),
    "up summary in a missing directory": (["up", "--duration", "5", "--summary", "no/dir/s.json"], {}, "--summary"),
    "up rate inf": (["up", "--rate", "inf"], {}, "--rate"),
    "up run dir under a file": (["up", "--duration", "5"], {"BANKGUARD_RUN_DIR": "afile/run"}, "run directory"),
    "ingest missing file": (["ingest", "statements", "missing.csv"], {}, "not found"),
    "ingest currency not ISO": (["ingest", "statements", "s.csv", "--currency", "dollars"], {}, "--currency"),
    "ingest unknown time zone": (["ingest", "statements", "s.csv", "--timezone", "Mars/Olympus"], {}, "Mars/Olympus"),
    "ingest unknown encoding": (["ingest", "statements", "s.csv", "--encoding", "klingon"], {}, "klingon"),
    "scan missing file": (["statements", "scan", "missing.csv"], {}, "not found"),
    "scan a directory": (["statements", "scan", "."], {}, "not found"),
    "scan unknown time zone": (["statements", "scan", "s.csv", "--timezone", "Mars/Olympus"], {}, "Mars/Olympus"),
    "scan empty time zone": (["statements", "scan", "s.csv", "--timezone", ""], {}, "--timezone"),
    "scan unknown encoding": (["statements", "scan", "s.csv", "--encoding", "klingon"], {}, "klingon"),
    "scan wrong encoding": (["statements", "scan", "gbk.csv", "--encoding", "ascii"], {}, "--encoding"),
    "scan neither UTF-8 nor GB18030": (["statements", "scan", "latin1.csv"], {}, "--encoding"),
    "scan without statement columns": (["statements", "scan", "other.csv"], {}, "missing column"),
    "scan empty file": (["statements", "scan", "empty.csv"], {}, "empty statement"),
    "scan missing rules": (["statements", "scan", "s.csv", "--config", "missing.yaml"], {}, "not found"),
    "scan rules not YAML": (["statements", "scan", "s.csv", "--config", "bad.yaml"], {}, "YAML"),
    "rules check missing": (["rules", "check", "missing.yaml"], {}, "not found"),
    "keygen in a missing directory": (["rules", "keygen", "--out", "no/dir"], {}, "does not exist"),
    "schemas in a missing directory": (["schemas", "export", "no/dir"], {}, "does not exist"),
    "dashboards in a missing directory": (["dashboards", "build", "--out", "no/dir"], {}, "does not exist"),
    "train in a missing directory": (["models", "train", "--out", "no/dir", "--quick"], {}, "does not exist"),
    "models report missing directory": (["models", "report", "--dir", "missing"], {}, "missing"),
    "backtest unknown source type": (["backtest", "--source", "x.txt"], {}, "unknown file type"),
    "backtest report in a missing directory": (["backtest", "--source", "ev.jsonl", "--json", "no/dir/r.json"],
                                               {}, "--json"),
    "backtest warmup inf": (["backtest", "--source", "ev.jsonl", "--warmup-days", "inf"], {}, "--warmup-days"),
    "replay speed inf": ([*REPLAY, "--speed", "inf"], {}, "--speed"),
    "replay checkpoint in a missing directory": ([*REPLAY, "--checkpoint", "no/dir/c.json"], {}, "--checkpoint"),
    "worker unknown log level": (["worker", "--loglevel", "nonsense"], {}, "--loglevel"),
    "broker on an address that does not exist": (["broker", "--host", "999.1.1.1"], {}, "--host"),
}


def tree(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_every_mistake_is_one_line_and_writes_nothing(case, tmp_path):
    args, env, needle = CASES[case]
    for name, data in FILES.items():
        (tmp_path / name).write_bytes(data)
    before = tree(tmp_path)
    environment = os.environ | {"BANKGUARD_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"} | env
    result = bankguard(*args, env=environment, cwd=tmp_path)
    assert_one_line_error(result, needle)
    assert tree(tmp_path) == before  # no output, no temporary file, no directory made


def test_unreachable_cluster():
    port = free_port()
    result = bankguard("topics", env=os.environ | {"BANKGUARD_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{port}"})
    assert_one_line_error(result, "cannot reach Kafka")


def test_broker_on_a_busy_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert_one_line_error(bankguard("broker", "--port", str(port)), "busy")


def test_broker_without_its_binary():
    result = bankguard("broker", "--port", str(free_port()),
                       env=os.environ | {"CALF_TANSU_BIN": "/nonexistent/tansu"})
    assert_one_line_error(result, "binary not found")


def test_broker_command_serves_topics_and_stops_cleanly(tmp_path):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bankguard", "broker", "--port", str(port)],
                               stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        line = process.stderr.readline()
        assert f"127.0.0.1:{port}" in line, line
        topics = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"}).list_topics(timeout=10).topics
        assert "bankguard.tx.credit_card" in topics and "bankguard.dlq" in topics
        assert len(topics["bankguard.tx.credit_card"].partitions) == 6
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(20) == 0
    def port_closed() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) != 0

    wait_until(port_closed, "the broker process gone with its port", timeout_s=10)



def test_an_output_is_whole_or_absent(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(target) as path:
        path.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old" and tree(tmp_path) == {"report.json"}
    write_text_atomic(target, "new")
    assert target.read_text() == "new" and tree(tmp_path) == {"report.json"}


def test_a_file_writer_never_closed_leaves_nothing(tmp_path):
    writer = RecordFileWriter(tmp_path / "events.jsonl", event_schema())
    writer.write("credit_card", [{"event_id": "e1"}])
    del writer
    gc.collect()
    assert tree(tmp_path) == set()
