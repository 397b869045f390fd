"""Talking to the running system through the real broker."""

from __future__ import annotations

import json

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
