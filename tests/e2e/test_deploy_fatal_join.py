"""A worker whose consumer group the broker refuses for good exits with status 78 instead of hanging unready:
another member holds the group with an assignment protocol Faust does not speak, so the broker answers the
worker's join with INCONSISTENT_GROUP_PROTOCOL (a fatal error, like a session timeout outside the broker's limits
on Apache Kafka)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from fapiao.adapters.kafka import ensure_topics
from fapiao.testing import SystemProcess

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


class ForeignMember:
    """An aiokafka consumer in the worker's group with the round-robin assignor only, kept alive in a thread."""

    def __init__(self, bootstrap: str, group: str, topic: str):
        self.joined = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self._run(bootstrap, group, topic),)
        )
        self._thread.start()

    async def _run(self, bootstrap, group, topic):
        from aiokafka import AIOKafkaConsumer
        from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

        self._stop = asyncio.Event()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            partition_assignment_strategy=(RoundRobinPartitionAssignor,),
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
        )
        await consumer.start()
        try:
            await consumer.getmany(timeout_ms=1000)
            self.joined.set()
            while not self._stop.is_set():
                await consumer.getmany(timeout_ms=200)
        finally:
            await consumer.stop()

    def stop(self):
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


def test_a_refused_group_join_stops_the_worker_with_78(broker, settings, tmp_path):
    s = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap})
    ensure_topics(s)
    member = ForeignMember(broker.bootstrap, f"{s.group_prefix}-delivery", s.topics["delivery.requested"])
    try:
        assert member.joined.wait(30), "the foreign member did not join"
        worker = SystemProcess(s, "worker", "delivery", log=tmp_path / "worker.log")
        try:
            code = worker.proc.wait(60)
        except Exception:
            worker.stop()
            raise AssertionError("the worker kept running: " + (tmp_path / "worker.log").read_text()[-3000:])
    finally:
        member.stop()
    log = (tmp_path / "worker.log").read_text()
    assert code == 78, log[-3000:]
    assert "refused its consumer group for good" in log and "InconsistentGroupProtocol" in log
