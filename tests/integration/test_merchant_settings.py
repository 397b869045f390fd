"""Merchant settings end to end: validation through the API and CLI, 同步至移动云 to the compacted settings topic,
scans served from what the gateway consumed there, static QR regeneration, and QR images decoded back to links."""

import io
import json
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest
import zxingcpp
from click.testing import CliRunner
from PIL import Image

from fapiao.adapters.qr import qr_png, qr_terminal
from fapiao.cli import main
from fapiao.domain.system_links import build_link, kingdee_md5
from fapiao.services import settings_admin as svc

from tests.support.samples import ADMIN_TOKEN as TOKEN
from tests.support.http import api, eventually, fetch

ORG = {"org_code": "SZ01", "seller_name": "深圳市示例科技有限公司", "tax_id": "91440300MA5G9GK78Y"}


def test_services_validate_and_sync_records(sessions):
    assert "tax_id" in svc.create_org(sessions, {**ORG, "tax_id": "91500107MAC3BEU123"})
    assert svc.create_org(sessions, ORG).org_code == "SZ01"
    assert "org_code" in svc.create_org(sessions, ORG)  # duplicate
    assert "org_code" in svc.create_qr_setting(sessions, {"org_code": "NOPE", "kinds": ["10xdp"], "validity_days": "3"})
    a = svc.create_qr_setting(sessions, {"org_code": "SZ01", "kinds": ["10xdp"], "validity_days": "3"})
    b = svc.create_qr_setting(sessions, {"org_code": "SZ01", "kinds": ["08xdp"], "validity_days": "3"})
    assert len(a.key) >= 16 and a.key != b.key  # assigned, unique, unguessable
    assert svc.edit_qr_setting(sessions, a.key, {"validity_days": "7"}).validity_days == 7
    assert "validity_days" in svc.edit_qr_setting(sessions, a.key, {"validity_days": "0"})
    assert "key" in svc.edit_qr_setting(sessions, "no-such-key", {"enabled": "0"})
    assert svc.sync_status(sessions) == (None, True)
    first = svc.generate_static(sessions, "SZ01").static_id
    second = svc.generate_static(sessions, "SZ01").static_id
    records = dict(svc.sync_records(sessions))
    assert records[f"static:{first}".encode()] is None and records[f"static:{second}".encode()] is not None
    assert json.loads(records[f"qr:{a.key}".encode()])["org"]["tax_id"] == "91440300MA5G9GK78Y"
    svc.record_sync(sessions, len(records))
    last, unsynced = svc.sync_status(sessions)
    assert last is not None and not unsynced
    svc.edit_qr_setting(sessions, b.key, {"enabled": "否"})
    assert svc.sync_status(sessions)[1] is True


def test_cli(sessions, db_url, monkeypatch):
    monkeypatch.setenv("FAPIAO_DATABASE_URL", db_url)
    run = lambda *a: CliRunner().invoke(main, ["settings", *a])  # noqa: E731
    bad = run("add-org", "org_code=SZ01", "seller_name=示例", "tax_id=91500107MAC3BEU123")
    assert bad.exit_code == 1 and "tax_id: 税号校验位错误" in bad.output
    assert run("add-org", *(f"{k}={v}" for k, v in ORG.items())).exit_code == 0
    added = run("add-qr", "org_code=SZ01", "kinds=10xdp,08xdp", "validity_days=30", "scan_type=扫码提交抬头")
    key = added.output.split()[-1]
    assert added.exit_code == 0 and len(key) >= 16
    assert run("edit-qr", key, "validity_days=abc").exit_code == 1
    assert run("disable-qr", key).exit_code == 0
    listing = run("list").output
    assert key in listing and "enabled=False" in listing and "unsynced changes" in listing
    assert run("static", "SZ01").output.strip().startswith("http://127.0.0.1:8080/s/")
    assert run("static", "NOPE").exit_code == 1


def decode(png: bytes) -> str:
    [result] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    return result.text


def test_qr_images_decode_to_the_exact_link():
    link = "http://127.0.0.1:8080/?k=Evjf8VxmUW,SO-1,88.50,1795400000,81dd864a0c6e5f0776351a0c49b38423,$"
    assert decode(qr_png(link)) == link
    assert "█" in qr_terminal(link) or "▀" in qr_terminal(link)


@pytest.fixture
def gateway(admin_gateway):
    return admin_gateway()


@pytest.mark.kafka
def test_settings_sync_and_scans(gateway):
    s = gateway
    assert api(s, "POST", "/admin/api/orgs", ORG, token="wrong-token-1234")[0] == 401
    assert api(s, "POST", "/admin/api/orgs", {**ORG, "tax_id": "123"})[1]["errors"]["tax_id"]
    assert api(s, "POST", "/admin/api/orgs", ORG)[0] == 201
    status, system = api(s, "POST", "/admin/api/systems", {"code": "POS", "name": "收银"})
    assert status == 201 and len(system["secret"]) == 32
    status, body = api(s, "POST", "/admin/api/qr-settings", {"org_code": "SZ01", "kinds": []})
    assert status == 422 and set(body["errors"]) >= {"kinds", "validity_days"}
    status, hmac_setting = api(
        s,
        "POST",
        "/admin/api/qr-settings",
        {"org_code": "SZ01", "kinds": ["10xdp", "08xdp"], "validity_days": "30", "business_system_code": "POS"},
    )
    assert status == 201 and hmac_setting["link_mode"] == "hmac"
    status, md5_setting = api(
        s,
        "POST",
        "/admin/api/qr-settings",
        {"org_code": "SZ01", "kinds": ["10xdp"], "validity_days": "30", "link_mode": "kingdee_md5"},
    )
    key, md5_key = hmac_setting["key"], md5_setting["key"]

    now = int(datetime.now(timezone.utc).timestamp())
    good = build_link(s.base_url, key, "SO-1", "88.50", now, secret=system["secret"])
    assert fetch(good)[0] == 404  # created, not synced yet: the scan side does not know it
    assert api(s, "POST", "/admin/api/sync")[1]["synced"] == 2
    status, page, _ = eventually(lambda: (r := fetch(good))[0] == 200 and r)
    assert "SO-1" in page.decode() and "88.50" in page.decode() and "深圳市示例科技有限公司" in page.decode()
    assert fetch(good.replace("88.50", "8.50"))[0] == 400  # amount changed: signature fails
    assert fetch(build_link(s.base_url, key, "SO-1", "88.50", now, secret=None))[0] == 400  # md5 on an hmac key
    old = int((datetime.now(timezone.utc) - timedelta(days=31)).timestamp())
    assert fetch(build_link(s.base_url, key, "SO-1", "88.50", old, secret=system["secret"]))[0] == 410
    assert fetch(f"{s.base_url}/?k=unknownkey,SO,1.00,{now},{kingdee_md5('unknownkey')},$")[0] == 404
    md5_link = f"{s.base_url}/?k={md5_key},SO-9,10.00,{now * 1000},{kingdee_md5(md5_key).upper()},$"
    assert fetch(md5_link)[0] == 200
    assert fetch(f"{s.base_url}/?k=garbage")[0] == 400

    assert api(s, "PATCH", "/admin/api/systems/POS", {"callback_url": "ftp://nope"})[0] == 422
    bad = urllib.request.Request(
        f"{s.base_url}/admin/api/qr-settings",
        method="POST",
        data=b"{not json",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(bad, timeout=10)
    assert refused.value.code == 400 and "JSON" in json.loads(refused.value.read())["errors"]["body"]
    assert api(s, "DELETE", "/admin/api/systems/POS")[1]["enabled"] is False  # disabling the business system...
    api(s, "POST", "/admin/api/sync")
    eventually(lambda: fetch(good)[0] == 403)  # ...stops its links
    assert api(s, "PATCH", "/admin/api/systems/POS", {"enabled": "是"})[1]["enabled"] is True
    api(s, "POST", "/admin/api/sync")
    eventually(lambda: fetch(good)[0] == 200)

    assert api(s, "DELETE", f"/admin/api/qr-settings/{key}")[1]["enabled"] is False
    assert fetch(good)[0] == 200  # disabled but not synced: scans unchanged
    api(s, "POST", "/admin/api/sync")
    status, page, _ = eventually(lambda: (r := fetch(good))[0] == 403 and r)
    assert "已停用" in page.decode()

    first = api(s, "POST", "/admin/api/static/SZ01")[1]["link"]
    api(s, "POST", "/admin/api/sync")
    eventually(lambda: fetch(first)[0] == 200)
    status, png, headers = fetch(first + "/qr.png")
    assert status == 200 and headers["Content-Type"] == "image/png" and "max-age" in headers["Cache-Control"]
    assert decode(png) == first
    second = api(s, "POST", "/admin/api/static/SZ01")[1]["link"]
    assert second != first
    api(s, "POST", "/admin/api/sync")
    eventually(lambda: fetch(first)[0] == 404 and fetch(second)[0] == 200)  # regenerating revoked the old one


@pytest.mark.kafka
def test_pushed_order_link_stops_when_its_setting_is_disabled(gateway, sessions):
    from fapiao.services.ingest import LinkMinter, ingest_push
    from fapiao.services.merchants import ensure_demo_merchant
    from schemas.bill_push import parse_push
    from tests.support.samples import sample_push

    s = gateway
    with sessions() as db:
        key = ensure_demo_merchant(db).key
    minter = LinkMinter(s.link_secret.get_secret_value().encode(), s.base_url)
    [accepted] = ingest_push(sessions, parse_push(json.dumps(sample_push(billNo="DIS-1")).encode()), minter)
    link = accepted.event.link
    assert fetch(link)[0] == 200
    assert api(s, "DELETE", f"/admin/api/qr-settings/{key}")[0] == 200
    api(s, "POST", "/admin/api/sync")
    status, page, _ = eventually(lambda: (r := fetch(link))[0] == 403 and r)
    assert "已停用" in page.decode()


@pytest.mark.kafka
def test_merchant_issues_a_waiting_order(gateway, sessions, tmp_path):
    from sqlalchemy import select

    from fapiao.adapters.db import QrSettingRow
    from fapiao.adapters.issuer import SandboxIssuer
    from fapiao.services.issue import handle_submission
    from fapiao.testing import TopicReader
    from tests.support.services import _accepted_and_submission

    s = gateway
    link, ev = _accepted_and_submission(sessions, "PEND-1")
    with sessions() as db:
        setting = db.scalar(select(QrSettingRow))
        setting.scan_type, setting.default_issue = "submit_title", False
        db.commit()
    assert handle_submission(sessions, SandboxIssuer(sessions), ev) == []
    status, pending = api(s, "GET", "/admin/api/pending")
    assert status == 200 and [p["bill_no"] for p in pending] == ["PEND-1"]
    assert api(s, "POST", f"/admin/api/orders/{ev.order_key}/issue")[0] == 202
    assert api(s, "POST", "/admin/api/orders/91440300MA5G9GK78Y:NOPE/issue")[0] == 409
    reader = TopicReader(s, s.topics["buyer.submitted"])
    record = reader.wait_for(lambda r: r.key == ev.order_key.encode(), timeout=30)
    reader.close()
    assert json.loads(record.value)["merchant_approved"] is True


BILL = {
    "billNo": "SO-1",
    "includeTaxFlag": "1",
    "totalAmount": "88.50",
    "billDetail": [
        {"goodsName": "*餐饮服务*餐费", "revenueCode": "3070401000000000000", "amount": "88.50", "taxRate": "0.06"}
    ],
}


def post_form(url, fields):
    import urllib.parse

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    req = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode())
    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=15) as r:
            return r.status, r.read().decode(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers


@pytest.mark.kafka
def test_business_system_link_and_static_qr_fetch_the_order(gateway, http_stub):
    import hashlib
    import hmac
    import urllib.parse

    s = gateway
    api(s, "POST", "/admin/api/orgs", ORG)
    _, system = api(
        s, "POST", "/admin/api/systems", {"code": "POS", "name": "收银", "query_url": http_stub.url + "/orders"}
    )
    _, setting = api(
        s,
        "POST",
        "/admin/api/qr-settings",
        {"org_code": "SZ01", "kinds": ["10xdp", "08xdp"], "validity_days": "30", "business_system_code": "POS"},
    )
    static_link = api(s, "POST", "/admin/api/static/SZ01")[1]["link"]
    api(s, "POST", "/admin/api/sync")
    now = int(datetime.now(timezone.utc).timestamp())
    link = build_link(s.base_url, setting["key"], "SO-1", "88.50", now, secret=system["secret"])
    status, page, _ = eventually(lambda: (r := fetch(link))[0] == 200 and r)
    assert "数电票（增值税专用发票）" in page.decode() and "SO-1" in page.decode()

    http_stub.routes["/orders"] = (200, {"errorCode": "0", "data": BILL})
    http_stub.script = [(503, {}), (502, {})]  # the merchant is slow to come up: retried
    status, _, headers = post_form(link, {"invoice_kind": "10xdp"})
    assert status == 303 and "/q/" in headers["Location"]
    order_page = fetch(headers["Location"])[1].decode()
    assert "SO-1" in order_page and "*餐饮服务*餐费" in order_page and "数电票（普通发票）" in order_page
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(http_stub.requests[-1]["path"]).query)
    expected = hmac.new(system["secret"].encode(), f"SO-1,{query['timestamp'][0]}".encode(), hashlib.sha256)
    assert query["billNo"] == ["SO-1"] and query["sign"] == [expected.hexdigest()]
    asked = len(http_stub.requests)
    assert post_form(link, {"invoice_kind": "10xdp"})[2]["Location"] == headers["Location"]  # stored once
    assert len(http_stub.requests) == asked  # known now: the merchant is not asked again

    wrong = build_link(s.base_url, setting["key"], "SO-2", "80.00", now, secret=system["secret"])
    http_stub.routes["/orders"] = (200, {"errorCode": "0", "data": {**BILL, "billNo": "SO-2"}})
    status, page, _ = post_form(wrong, {"invoice_kind": "10xdp"})
    assert status == 422 and "不一致" in page
    http_stub.routes["/orders"] = (200, {"errorCode": "1", "message": "no such order"})
    missing = build_link(s.base_url, setting["key"], "SO-3", "10.00", now, secret=system["secret"])
    status, page, _ = post_form(missing, {"invoice_kind": "10xdp"})
    assert status == 422 and "没有该订单" in page
    status, page, _ = post_form(link, {"invoice_kind": "026"})
    assert status == 422 and "发票种类" in page

    eventually(lambda: fetch(static_link)[0] == 200)
    status, _, headers2 = post_form(static_link, {"bill_no": "SO-1", "amount": "88.50", "invoice_kind": "10xdp"})
    assert status == 303 and headers2["Location"] == headers["Location"]  # the same order, found
    status, page, _ = post_form(static_link, {"bill_no": "SO-1", "amount": "88.00", "invoice_kind": "10xdp"})
    assert status == 422 and "不一致" in page
    status, page, _ = post_form(static_link, {"bill_no": "SO-1", "amount": "八十八", "invoice_kind": "10xdp"})
    assert status == 422 and "金额" in page
