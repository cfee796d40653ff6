"""The changelog's snapshots: once a partition's changelog has grown past its threshold, the commit
point writes every state of that partition again and records where that starts, and recovery
(``SnapshotTable.persisted_offset``) begins there: what it reads holds every key's newest state."""

from __future__ import annotations

import pytest
from faust.types import TP

from bankguard.stream_agents import snapshots as snapshots_module
from bankguard.stream_agents.faust_seam import SnapshotTable, WorkerApp
from bankguard.stream_agents.sink import BatchSink, CommitPoint
from bankguard.stream_agents.snapshots import SnapshotIndex, SnapshotPolicy, key_partition
from bankguard.stream_agents.state import StateStore
from bankguard.topics import Topics
from kafka_helpers import read_topic

KEYS = [f"aml_kyc:ACC-{i}".encode() for i in range(40)]


class Stored(StateStore):
    """A state store whose batches are written by hand (the scorer's part is not under test)."""

    def put(self, key: bytes, value: bytes, partitions: int) -> None:
        self.backing[key] = value
        self._unwritten[key] = (key_partition(key, partitions), value)


@pytest.mark.broker
async def test_recovery_reads_from_the_latest_snapshot_and_misses_no_key(settings, tmp_path, monkeypatch):
    monkeypatch.setattr(snapshots_module, "SNAPSHOT_MIN_RECORDS", 30)
    changelog = Topics(settings.topics.prefix).state_changelog
    partitions = settings.topics.partitions
    index = SnapshotIndex(settings, changelog)
    store = Stored({})
    commit_point = CommitPoint(BatchSink(settings), store, changelog, SnapshotPolicy(index))
    for round_ in range(6):  # 240 changelog records for 40 keys: snapshots fall due
        for key in KEYS:
            store.put(key, b"%s=%d" % (key, round_), partitions)
        await commit_point()
    store.put(KEYS[0], b"last", partitions)  # after the snapshots: the tail matters too
    await commit_point()

    app = WorkerApp("snapshot-test", broker=f"bankguard://{settings.kafka.bootstrap_servers}",
                    store="memory://", datadir=str(tmp_path))
    table = SnapshotTable(app, index=index, name="entity-state", key_type=bytes, value_type=bytes,
                          partitions=partitions)
    log = read_topic(settings, changelog, expected=sum(index.end(p) for p in range(partitions)))
    recovery_starts = {p: table.persisted_offset(TP(changelog, p)) for p in range(partitions)}
    assert all(start is not None and start > 0 for start in recovery_starts.values()), recovery_starts
    replayed = {record.key: record.value for record in log}
    recovered = {record.key: record.value for record in log if record.offset >= recovery_starts[record.partition]}
    assert replayed == recovered == {**{key: b"%s=5" % key for key in KEYS}, KEYS[0]: b"last"}
    assert sum(record.offset >= recovery_starts[record.partition] for record in log) < len(log) / 2
    index.close()
