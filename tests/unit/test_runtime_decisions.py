"""The runtime's decisions about what it could not publish, tested directly (house style #12): which record is
dead-lettered and with what, and that a dead letter it cannot write stops the process instead of letting the record
be acknowledged. What the broker does with all this is shown on the real broker in test_runtime_unpublishable.py."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from aiokafka.errors import MessageSizeTooLargeError

from fapiao.config import Settings
from fapiao.services import Outcome
from schemas.events import OrderRejected
from workers.runtime import DLQ_MAX_VALUE, Runtime

ROOT = Path(__file__).parents[2]


def _done(result=None, error: BaseException | None = None) -> asyncio.Future:
    fut = asyncio.get_running_loop().create_future()
    fut.set_exception(error) if error else fut.set_result(result)
    return fut


class FakeApp:
    """Just what Runtime touches: topics to send to (the DLQ) and a producer with a message size limit."""

    def __init__(self, max_size: int = 10_000, dlq_fails: bool = False):
        self.conf = SimpleNamespace(id="fapiao-order-ingest")
        self.sent: list[tuple[str, bytes | None, bytes, list | None]] = []
        app = self

        class Producer:
            async def send(self, topic, key, value, partition, timestamp, headers):
                if len(value) > max_size:
                    raise MessageSizeTooLargeError(f"The message is {len(value)} bytes")
                app.sent.append((topic, key, value, headers))
                return _done()

        class Topic:
            def __init__(self, name):
                self.name = name

            def get_topic_name(self):
                return self.name

            async def send(self, key, value, headers=None):
                if dlq_fails:
                    raise ConnectionError("broker gone")
                app.sent.append((self.name, key, value, headers))
                return _done()

        self.producer = Producer()
        self.topic = lambda name, **_: Topic(name)


def message(offset: int, value: bytes = b"{}") -> SimpleNamespace:
    return SimpleNamespace(
        topic="t.orders.pushed", partition=0, offset=offset, timestamp=1.0, key=f"S:{offset}".encode(), value=value
    )


def rejected(offset: int, remark_size: int) -> Outcome:
    return Outcome(
        "orders.rejected",
        OrderRejected(
            event_id=str(offset), order_key=f"S:{offset}", violations=[], original={"remark": "x" * remark_size}
        ),
    )


def runtime(app: FakeApp) -> Runtime:
    return Runtime(app, Settings(_env_file=None, topic_prefix="t"), "orders.pushed")


def test_only_the_unpublishable_record_is_dead_lettered_with_its_error():
    app = FakeApp()
    rt = runtime(app)
    pairs = [(message(1), [rejected(1, 10)]), (message(2), [rejected(2, 50_000)]), (message(3), [rejected(3, 10)])]
    published = asyncio.run(rt.emit(pairs))
    assert published == 2
    assert [(t, k) for t, k, _, _ in app.sent] == [
        ("t.orders.rejected", b"S:1"),
        ("t.orders.rejected", b"S:3"),
        ("t.orders.pushed.dlq", b"S:2"),
    ]
    headers = {k: v.decode() for k, v in app.sent[-1][3]}
    assert headers["fapiao-error-kind"] == "unpublishable"
    assert headers["kafka_dlt-original-offset"] == "2" and "MessageSizeTooLarge" in headers["kafka_dlt-exception-fqcn"]


def test_a_dead_letter_keeps_at_most_its_limit_and_names_the_size():
    app = FakeApp()
    big = b"x" * (DLQ_MAX_VALUE + 10)
    asyncio.run(runtime(app).dead_letter(message(7, big), ValueError("bad"), "poison"))
    (_, _, value, headers) = app.sent[0]
    assert len(value) == DLQ_MAX_VALUE and dict(headers)["fapiao-value-truncated"] == str(len(big)).encode()


def _dead_letter_that_fails() -> None:
    asyncio.run(runtime(FakeApp(dlq_fails=True)).dead_letter(message(9), ValueError("bad"), "poison"))


def test_a_dead_letter_that_cannot_be_written_stops_the_process():
    run = subprocess.run(
        [sys.executable, "-c", "import tests.unit.test_runtime_decisions as t; t._dead_letter_that_fails()"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 70 and "cannot write the dead letter" in run.stderr, run.stderr[-2000:]
