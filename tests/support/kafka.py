"""Talking to the running system through the real broker."""

from __future__ import annotations

import json
import threading
import time

from fapiao.adapters.kafka import producer
from fapiao.testing import TopicReader, json_value
from fapiao.topics import order_key
from tests.support.samples import sample_push


def push(s, bill_no: str, **bill) -> str:
    """Push the sample order under ``bill_no`` and return its QR link from orders.accepted."""
    key = order_key("91440300MA5G9GK78Y", bill_no)
    reader = TopicReader(s, s.topics["orders.accepted"])
    p = producer(s)
    p.send(s.topics["orders.pushed"], key=key, value=json.dumps(sample_push(billNo=bill_no, **bill)).encode())
    p.flush()
    p.close()
    link = json_value(reader.wait_for(lambda r: r.key == key, timeout=90))["link"]
    reader.close()
    return link


def trickle(s, stage: str, events, pause: float = 0.0) -> threading.Thread:
    """Publish ``events`` on ``stage`` one by one in a background thread (flushed each), so a worker is mid-stream
    when a test kills it; join the thread to wait for the last one."""

    def send():
        p = producer(s)
        for ev in events:
            p.send(s.topics[stage], key=ev.order_key.encode(), value=ev.model_dump_json().encode())
            p.flush()
            time.sleep(pause)
        p.close()

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread
