"""Issue #15 point 3 (V7.0.18, seed 000): the buyer sees a QR key / order tax ID mismatch at scan time, the order's
tax ID wins (also in business-system mode), and the buyer's own entry wins over a buyer-title mapping."""

import json
from datetime import datetime, timezone
from decimal import Decimal

from fapiao.domain.links import read_token
from fapiao.gateway.rendering import render
from fapiao.services.ingest import LinkMinter, ingest_push
from fapiao.services.merchants import ensure_demo_merchant
from fapiao.services.scan import prefilled_form, scan_view, submission_event, with_key_tax_id_check
from fapiao.services.system_scan import obtain_order
from schemas.bill_push import parse_push
from schemas.settings import OrgDoc, SettingsRecord
from tests.support.samples import sample_push

MINTER = LinkMinter(b"k" * 32, "http://h")
MISMATCH = "二维码key值对应税号和订单税号不一致，请联系商家提供新的二维码"
OTHER_SELLER = "91440300358768292H"


def pushed_view(sessions, **bill):
    with sessions() as s:
        ensure_demo_merchant(s)
    [acc] = ingest_push(sessions, parse_push(json.dumps(sample_push(**bill)).encode()), MINTER)
    assert acc.stage == "orders.accepted", acc.event
    return scan_view(sessions, read_token(MINTER.secret, acc.event.link.rsplit("/", 1)[1]).link_id)


def page(view, form=None) -> str:
    return render("h5.html", view=view, token="t", form=form or {}, errors={}, special=False).text


def test_mismatch_is_shown_to_the_buyer_at_scan_time(sessions):
    view = pushed_view(sessions)
    assert MISMATCH not in page(with_key_tax_id_check(view, view.order.seller_tax_id))
    checked = with_key_tax_id_check(view, OTHER_SELLER)
    assert checked.tax_id_notice == MISMATCH and MISMATCH in page(checked)
    assert checked.status == "accepted"  # issuing may proceed, with the order's tax ID


def test_the_buyers_own_entry_wins_over_the_mapping(sessions):
    view = pushed_view(sessions, billNo="MAP-1", buyerName="映射的抬头", buyerTaxpayerId=OTHER_SELLER)
    form = prefilled_form(view.order)
    assert form == {"title": "映射的抬头", "tax_id": OTHER_SELLER}
    assert 'value="映射的抬头"' in page(view, form)
    ev = submission_event(view, {"buyer_type": "individual", "title": "张三", "email": "a@b.cn"})
    assert ev.buyer.title == "张三" and ev.buyer.tax_id is None


def test_business_system_mode_keeps_the_orders_tax_id(sessions):
    org = OrgDoc(org_code="DEMO", seller_name="深圳市示例科技有限公司", tax_id="91440300MA5G9GK78Y")
    setting = SettingsRecord(
        type="qr",
        org=org,
        key="k1",
        kinds=["10xdp"],
        validity_days=30,
        link_mode="hmac",
        business_system_code="POS",
        query_url="http://merchant/orders",
    )
    lines = [
        {"goodsName": "*餐饮服务*餐费", "revenueCode": "3070401000000000000", "amount": "88.50", "taxRate": "0.06"}
    ]
    doc = {"sellerTaxpayerId": OTHER_SELLER, "totalAmount": "88.50", "billDetail": lines}
    got = obtain_order(
        sessions, MINTER, setting, "SO-1", Decimal("88.50"), "10xdp", lambda *a: doc, now=datetime.now(timezone.utc)
    )
    assert got.link, got.error
    view = scan_view(sessions, read_token(MINTER.secret, got.link.rsplit("/", 1)[1]).link_id)
    assert view.order.seller_tax_id == OTHER_SELLER  # not overwritten with the key's
    assert with_key_tax_id_check(view, org.tax_id).tax_id_notice == MISMATCH
