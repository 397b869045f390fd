"""Intake inserts a batch first and looks orders up only when the unique constraint refuses it: a batch that mixes
orders stored before (a redelivered push) with new ones must still answer the stored ones as stored (same link,
same event), store the new ones once, and refuse a changed order with 00565. SQLite and PostgreSQL."""

import json

from sqlalchemy import func, select

from fapiao.adapters.db import OrderRow
from fapiao.services.ingest import LinkMinter, ingest_pushes
from fapiao.services.merchants import ensure_demo_merchant
from schemas.bill_push import parse_push
from tests.support.samples import sample_push

MINTER = LinkMinter(b"k" * 32, "http://h")


def _push(bill_no: str, **bill):
    return parse_push(json.dumps(sample_push(billNo=bill_no, **bill)).encode())


def _events(sessions, pushes):
    return [outcomes[0].event for outcomes in ingest_pushes(sessions, pushes, MINTER)]


def test_a_batch_mixing_stored_and_new_orders(sessions):
    with sessions() as s:
        ensure_demo_merchant(s)
    first = _events(sessions, [_push("MIX-1"), _push("MIX-2")])
    again = _events(sessions, [_push("MIX-1"), _push("MIX-3"), _push("MIX-2"), _push("MIX-4")])
    assert [e.order.bill_no for e in again] == ["MIX-1", "MIX-3", "MIX-2", "MIX-4"]
    assert [(e.event_id, e.link) for e in (again[0], again[2])] == [(e.event_id, e.link) for e in first]
    assert again[1].link != again[3].link
    changed = _events(sessions, [_push("MIX-5"), _push("MIX-3", remark="改了")])
    assert changed[0].code == "0000"
    assert [v.code for v in changed[1].violations] == ["00565"]
    with sessions() as s:
        counts = dict(s.execute(select(OrderRow.bill_no, func.count()).group_by(OrderRow.bill_no)).all())
    assert counts == {f"MIX-{i}": 1 for i in range(1, 6)}
