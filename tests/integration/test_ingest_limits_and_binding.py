"""Intake refuses what it must not accept: bills over a size limit (issue #12 item 1) and orders a business system
pushes for an organisation not bound to it (issue #12 item 7). Both answer with a code before anything is stored."""

from __future__ import annotations

import json
import secrets
from decimal import Decimal

from sqlalchemy import func, select

from fapiao.adapters.db import BusinessSystemRow, OrderRow, OrgRow, QrSettingRow
from fapiao.domain.intake_limits import IntakeLimits, check_limits
from fapiao.services.ingest import LinkMinter, ingest_push
from fapiao.services.merchants import ensure_demo_merchant
from schemas.bill_push import parse_push
from tests.support.samples import sample_push

MINTER = LinkMinter(b"k" * 32, "http://fapiao.test")
OTHER_TAX_ID = "91440300358768292H"


def push(doc: dict):
    return parse_push(json.dumps(doc, ensure_ascii=False).encode())


def codes(outcome) -> set[str]:
    return {v.code for v in outcome.event.violations}


def stored(sessions) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(OrderRow))


def test_each_limit_has_its_code_and_names_the_field():
    limits = IntakeLimits(max_lines=3, max_bill_bytes=2000, max_field_chars=300)
    lines = sample_push()["data"][0]["billDetail"] * 2
    bill = push(sample_push(billDetail=lines, drawer="张" * 301)).data[0]
    got = {(v.code, v.field) for v in check_limits(bill, 2001, limits)}
    assert got == {("00630", "billDetail"), ("00631", "billNo"), ("00632", "drawer")}
    assert check_limits(push(sample_push()).data[0], 1500, limits) == []


def test_oversized_bills_are_refused_before_the_rules(sessions):
    with sessions() as s:
        ensure_demo_merchant(s)
    line = sample_push()["data"][0]["billDetail"][0]
    many = sample_push(billNo="MANY", billDetail=[line] * 1001, totalAmount=str(Decimal("1130.00") * 1001))
    [refused] = ingest_push(sessions, push(many), MINTER)
    assert refused.stage == "orders.rejected" and codes(refused) == {"00630"}
    assert refused.event.original["billDetailCount"] == 1001 and len(refused.event.original["billDetail"]) == 5
    [remark] = ingest_push(sessions, push(sample_push(billNo="REMARK", remark="备" * 200_000)), MINTER)
    assert codes(remark) == {"00631", "00632"} and len(remark.event.original["remark"]) == 200
    [ok] = ingest_push(sessions, push(sample_push(billNo="FITS")), MINTER)
    assert ok.stage == "orders.accepted"
    assert stored(sessions) == 1


def _other_org(sessions, system_code: str) -> None:
    with sessions() as s:
        ensure_demo_merchant(s)
        s.add(OrgRow(org_code="OTHER", seller_name="广州另一家有限公司", tax_id=OTHER_TAX_ID))
        s.add(BusinessSystemRow(code=system_code, name="另一收银系统", enabled=True, secret=secrets.token_hex(8)))
        s.flush()
        s.add(
            QrSettingRow(
                key=secrets.token_urlsafe(8),
                org_code="OTHER",
                business_system_code=system_code,
                scan_type="issue",
                kinds=["10xdp"],
                validity_days=7,
                enabled=True,
                link_mode="hmac",
            )
        )
        s.commit()


def test_a_business_system_pushes_only_for_its_own_organisations(sessions):
    _other_org(sessions, "OTHER-POS")
    theirs = sample_push(billNo="NOT-MINE", sellerTaxpayerId=OTHER_TAX_ID, sellerName="广州另一家有限公司")
    [refused] = ingest_push(sessions, push(theirs), MINTER)  # DEMO-POS pushing for OTHER's tax ID
    assert refused.stage == "orders.rejected" and "00633" in codes(refused)
    [v] = [v for v in refused.event.violations if v.code == "00633"]
    assert v.field == "sellerTaxpayerId" and "DEMO-POS" in v.message and OTHER_TAX_ID in v.message

    [ok] = ingest_push(sessions, push({**theirs, "businessSystemCode": "OTHER-POS"}), MINTER)
    assert ok.stage == "orders.accepted", ok.event
    [mine] = ingest_push(sessions, push(sample_push(billNo="MINE")), MINTER)
    assert mine.stage == "orders.accepted"
    assert stored(sessions) == 2
