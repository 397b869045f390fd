"""Consumer lag: the status rules, and real lag built on the embedded broker (publish while the worker is stopped)."""

import json
import time
import urllib.request

import pytest
from click.testing import CliRunner

from fapiao.adapters.kafka import ensure_topics, free_port, producer
from fapiao.adapters.lag import snapshot
from fapiao.cli import main
from fapiao.domain.lag import Observation, group_status, partition_status, time_lag
from fapiao.services.merchants import ensure_demo_merchant
from fapiao.testing import SystemProcess, TopicReader, settings_env
from tests.support.samples import sample_push


def obs(*rows):
    return [Observation(float(i), c, e) for i, (c, e) in enumerate(rows)]


@pytest.mark.parametrize(
    "rows,members,status",
    [
        ([(5, 5), (6, 6)], True, "OK"),
        ([(5, 9), (7, 12), (9, 15)], True, "WARN"),
        ([(5, 9), (7, 9), (9, 12)], True, "OK"),
        ([(5, 9), (5, 10), (5, 12)], True, "STALL"),
        ([(5, 9), (5, 9)], False, "STOP"),
        ([(None, 9), (None, 9)], False, "OK"),
        ([(9, 9), (9, 12)], False, "OK"),
    ],
)
def test_partition_status(rows, members, status):
    assert partition_status(obs(*rows), members) == status


def test_group_status_and_time_lag():
    assert group_status(["OK", "OK"]) == "OK"
    assert group_status(["OK", "WARN"]) == "WARN"
    assert group_status(["OK", "STALL"]) == "ERR"
    assert group_status(["STOP", "STOP"]) == "STOP"
    window = [Observation(0.0, 0, 10), Observation(10.0, 10, 20), Observation(20.0, 15, 30)]
    assert time_lag(window) == pytest.approx(15.0)  # end was 15 at t=5
    assert time_lag([Observation(0.0, None, 3)]) is None
    assert time_lag([Observation(0.0, 3, 3)]) == 0.0


@pytest.mark.kafka
def test_real_lag_with_worker_stopped(broker, settings, sessions, tmp_path, monkeypatch):
    s = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap})
    ensure_topics(s)
    with sessions() as db:
        ensure_demo_merchant(db)
    key = b"LAG-KEY"  # one key: every message on one partition

    def push(bill_nos):
        p = producer(s)
        for b in bill_nos:
            p.send(s.topics["orders.pushed"], key=key, value=json.dumps(sample_push(billNo=b)).encode())
        p.flush()
        p.close()

    worker = SystemProcess(s, "worker", "order-ingest", log=tmp_path / "w.log")
    try:
        push([f"LAG-{i}" for i in range(3)])
        reader = TopicReader(s, s.topics["orders.accepted"])
        deadline = time.monotonic() + 60
        while len([r for r in reader.records if b":LAG-" in r.key]) < 3:
            reader.poll()
            assert time.monotonic() < deadline, (tmp_path / "w.log").read_text()[-2000:]
        reader.close()
    finally:
        code = worker.stop()
    assert code in (0, -15)  # a clean stop commits what it processed
    push([f"LAG-{i}" for i in range(3, 13)])

    for k, v in settings_env(s).items():
        monkeypatch.setenv(k, v)
    group = f"{s.group_prefix}-order-ingest"
    # Apache Kafka drops a member that left; Tansu keeps listing it, so the status follows what the broker says.
    expected = "STALL" if snapshot(s, [group]).members.get(group) else "STOP"
    res = CliRunner().invoke(main, ["lag", "--json", "--group", group, "--samples", "2", "--interval", "0.2"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    rows = [p for p in report["partitions"] if p["topic"] == s.topics["orders.pushed"]]
    busy = [p for p in rows if p["end"] > 0]
    assert len(busy) == 1 and busy[0]["committed"] == 3 and busy[0]["end"] == 13 and busy[0]["lag"] == 10
    assert busy[0]["status"] == expected and busy[0]["lag_seconds"] is not None
    assert all(p["committed"] is None and p["lag"] is None for p in rows if p["end"] == 0)
    assert report["groups"][group] == expected

    table = CliRunner().invoke(main, ["lag", "--group", group, "--samples", "2", "--interval", "0.2"])
    assert "LAG" in table.output and " - " in table.output and f"group {group}: {expected}" in table.output

    # The one lag exporter's /metrics exports the stopped group's lag with kafka-lag-exporter's names.
    s = s.model_copy(update={"lag_exporter_port": free_port(), "lag_interval": 1.0})
    exporter = SystemProcess(s, "lag-exporter", log=tmp_path / "exporter.log")
    try:
        labels = f'group="{group}",partition="{busy[0]["partition"]}",topic="{s.topics["orders.pushed"]}"'
        deadline = time.monotonic() + 60
        text = ""
        while f"kafka_consumergroup_group_lag{{{labels}}} 10.0" not in text:
            assert time.monotonic() < deadline, text[-3000:]
            time.sleep(0.5)
            try:
                text = (
                    urllib.request.urlopen(f"http://127.0.0.1:{s.lag_exporter_port}/metrics", timeout=2).read().decode()
                )
            except OSError:
                continue
        assert f'kafka_consumergroup_group_max_lag{{group="{group}"}} 10.0' in text
        assert f"kafka_consumergroup_group_lag_seconds{{{labels}}}" in text
        assert json.loads(urllib.request.urlopen(f"http://127.0.0.1:{s.lag_exporter_port}/readyz").read())["ready"]
    finally:
        exporter.stop()
