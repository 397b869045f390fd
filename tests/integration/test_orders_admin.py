"""The admin order pages and their JSON API on a running gateway (real broker, SQLite and PostgreSQL): list and
filter, one order's timeline, 红冲 requested and confirmed through the API and the page's form (events published
on fapiao.reversals.*), refusals naming the rule with nothing written, the month-end report and its CSV."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import pytest
from sqlalchemy import func, select

from fapiao.adapters.db import RedConfirmationRow
from fapiao.adapters.issuer import SandboxIssuer
from fapiao.services.issue import handle_submission
from fapiao.testing import TopicReader
from tests.support.samples import ADMIN_TOKEN
from tests.support.services import _accepted_and_submission

pytestmark = pytest.mark.kafka
SELLER = "91440300MA5G9GK78Y"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def call(url, body=None, form=None, method=None):
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    headers, data = dict(AUTH), None
    if body is not None:
        headers["Content-Type"], data = "application/json", json.dumps(body, ensure_ascii=False).encode()
    elif form is not None:
        headers["Content-Type"], data = "application/x-www-form-urlencoded", urllib.parse.urlencode(form).encode()
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=15) as r:
            return r.status, r.read().decode(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers


def _issued(sessions, bill_no):
    _, ev = _accepted_and_submission(sessions, bill_no=bill_no)
    [out] = handle_submission(sessions, SandboxIssuer(sessions), ev)
    return out.event.invoice


def test_find_follow_reverse_and_report(admin_gateway, sessions):
    s = admin_gateway()
    inv = _issued(sessions, "ADM-1")
    base = s.base_url

    status, text, _ = call(f"{base}/admin/api/orders?status=issued")
    doc = json.loads(text)
    assert status == 200 and doc["total"] == 1 and doc["orders"][0]["invoice_number"] == inv.number
    status, text, _ = call(f"{base}/admin/api/orders?since=yesterday")
    assert status == 422 and json.loads(text)["field"] == "since"
    status, page, _ = call(f"{base}/admin/orders?seller={SELLER}")
    assert status == 200 and "ADM-1" in page and "已开票" in page
    status, page, _ = call(f"{base}/admin/orders/{SELLER}/ADM-1")
    assert status == 200 and 'id="timeline"' in page and inv.number in page and "提交红字确认单" in page
    status, text, _ = call(f"{base}/admin/api/orders/{SELLER}/ADM-1")
    assert status == 200 and [st["what"] for st in json.loads(text)["timeline"]][:2] == ["pushed", "accepted"]
    assert call(f"{base}/admin/api/orders/{SELLER}/NOPE")[0] == 404

    # Refused: the rule is named, nothing is written.
    for body, code in (
        ({"reason": "退货"}, "RED_REASON"),
        ({"reason": "销货退回", "lines": [{"line_no": 9, "amount": "1"}]}, "RED_UNKNOWN_LINE"),
        ({"reason": "销货退回", "seller_tax_id": "91440300358768292H"}, "RED_FOREIGN_SELLER"),
        ({"reason": "销货退回", "lines": [{"line_no": 2, "amount": "100.01"}]}, "RED_ABOVE_REMAINING"),
    ):
        status, text, _ = call(
            f"{base}/admin/api/reversals", {"seller_tax_id": SELLER, "invoice_number": inv.number, **body}
        )
        assert status == 422 and json.loads(text)["error"] == code and json.loads(text)["message"], text
    with sessions() as db:
        assert db.scalar(select(func.count()).select_from(RedConfirmationRow)) == 0

    ask = {
        "seller_tax_id": SELLER,
        "invoice_number": inv.number,
        "reason": "销售折让",
        "request_id": "api-1",
        "lines": [{"line_no": 1, "amount": "113.00"}],
    }
    status, text, _ = call(f"{base}/admin/api/reversals", ask)
    made = json.loads(text)
    assert status == 201 and made["status"] == "pending" and made["total_with_tax"] == "113.00"
    status, text, _ = call(f"{base}/admin/api/reversals", ask)  # the same request id: done once
    assert status == 200 and json.loads(text)["confirmation_id"] == made["confirmation_id"]
    status, text, _ = call(f"{base}/admin/api/reversals/{made['confirmation_id']}/confirm", {"seller_tax_id": SELLER})
    assert status == 200 and json.loads(text)["events"] == ["reversals.confirmed"]

    # The page's form: the whole of what is left, already confirmed by the buyer.
    status, _, headers = call(
        f"{base}/admin/orders/{SELLER}/ADM-1/reverse",
        form={
            "invoice_number": inv.number,
            "reason": "销货退回",
            "request_id": "form-1",
            "mode": "whole",
            "confirmed": "1",
        },
    )
    assert status == 303 and "/admin/orders/" in headers["Location"]
    status, page, _ = call(base + headers["Location"])
    assert status == 200 and 'id="done-msg"' in page and "已确认" in page
    with sessions() as db:
        assert db.scalar(select(func.sum(RedConfirmationRow.total_with_tax))) == inv.total_with_tax

    for stage in ("reversals.requested", "reversals.confirmed"):  # both confirmations, published once each
        reader, seen = TopicReader(s, s.topics[stage]), set()
        try:
            reader.wait_for(lambda r: seen.add(json.loads(r.value)["confirmation_id"]) or len(seen) == 2, timeout=30)
            assert made["confirmation_id"] in seen and r_keys(reader) == {f"{SELLER}:ADM-1"}
        finally:
            reader.close()

    status, text, _ = call(f"{base}/admin/report.json?month=2026-13")
    assert status == 422 and "YYYY-MM" in json.loads(text)["message"]
    month = inv.issued_at.strftime("%Y-%m")
    status, page, _ = call(f"{base}/admin/report?month={month}")
    assert status == 200 and SELLER in page and "下载 CSV" in page
    status, csv_text, headers = call(f"{base}/admin/report.csv?month={month}")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    header, row = csv_text.splitlines()[:2]
    assert header.startswith("month,seller_tax_id,kind") and row.startswith(f"{month},{SELLER},10xdp")


def r_keys(reader) -> set[str]:
    return {r.key.decode() for r in reader.records}


def test_reissue_from_the_api_and_the_page(admin_gateway, sessions):
    from fapiao.services.reversal import issue_red
    from schemas.reversals import ReversalConfirmed

    s = admin_gateway()
    inv = _issued(sessions, "ADM-RE")
    base = s.base_url
    fixed = {
        "buyer_type": "enterprise",
        "title": "某某科技有限公司深圳分公司",
        "tax_id": "91440300687582704U",
        "email": "finance@example.cn",
    }
    status, text, _ = call(f"{base}/admin/api/orders/{SELLER}/ADM-RE/reissue", fixed)
    assert status == 422 and json.loads(text)["error"] == "REISSUE_NOT_REVERSED"
    status, text, _ = call(
        f"{base}/admin/api/reversals",
        {"seller_tax_id": SELLER, "invoice_number": inv.number, "reason": "开票有误", "confirmed": True},
    )
    made = json.loads(text)
    issue_red(
        sessions,
        SandboxIssuer(sessions),
        ReversalConfirmed(
            event_id="c", order_key=made["order_key"], confirmation_id=made["confirmation_id"], blue_number=inv.number
        ),
    )
    status, page, _ = call(f"{base}/admin/orders/{SELLER}/ADM-RE")
    assert status == 200 and 'id="reissue-form"' in page and "已红冲" in page
    status, text, _ = call(
        f"{base}/admin/api/orders/{SELLER}/ADM-RE/reissue", {**fixed, "tax_id": "91500107MAC3BEU123"}
    )
    assert status == 422 and "tax_id" in json.loads(text)["errors"]
    status, text, _ = call(f"{base}/admin/api/orders/{SELLER}/ADM-RE/reissue", fixed)
    assert status == 202
    reader = TopicReader(s, s.topics["buyer.submitted"])
    try:
        rec = reader.wait_for(lambda r: r.key == f"{SELLER}:ADM-RE".encode(), timeout=30)
    finally:
        reader.close()
    ev = json.loads(rec.value)
    assert ev["merchant_approved"] and ev["buyer"]["title"] == fixed["title"]
