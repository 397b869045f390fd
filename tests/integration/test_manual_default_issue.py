"""Issue #15 point 1, seed 000 默认开票: "设置后，系统将根据当前填写信息生成默认的预置销售单". A setting keeps a preset
(goods name, 19-digit code, rate, unit, optional fixed or maximum amount); a scan of its QR lets the buyer enter the
amount and get an invoice for a sales order built from it, with no pushed order and no order-query interface."""

import re
import urllib.parse
import urllib.request
from decimal import Decimal

import pytest

from fapiao.adapters.issuer import SandboxIssuer
from fapiao.domain.links import read_token
from fapiao.domain.preset import amount_problem, check_preset
from fapiao.services import settings_admin as svc
from fapiao.services.ingest import LinkMinter
from fapiao.services.issue import handle_submission
from fapiao.services.scan import scan_view, submission_event
from fapiao.services.system_scan import obtain_order, obtain_preset_order, preset_nonce
from schemas.settings import SettingsRecord

MINTER = LinkMinter(b"k" * 32, "http://h")
PRESET = {
    "preset_goods_name": "*餐饮服务*餐费",
    "preset_revenue_code": "3070401000000000000",
    "preset_tax_rate": "6%",
    "preset_units": "次",
}
ORG = {"org_code": "SZ01", "seller_name": "深圳市示例科技有限公司", "tax_id": "91440300MA5G9GK78Y"}


def test_preset_rules():
    doc, errors = check_preset(
        {
            "goods_name": "*餐饮服务*餐费",
            "revenue_code": "3070401000000000000",
            "tax_rate": "0.06",
            "amount_mode": "max",
            "amount": "500",
        }
    )
    assert errors == {} and doc["tax_rate"] == "0.06" and doc["amount"] == "500.00"
    _, errors = check_preset({"goods_name": "餐费", "revenue_code": "307", "tax_rate": "0.17", "amount_mode": "fixed"})
    assert set(errors) == {"preset_goods_name", "preset_revenue_code", "preset_tax_rate", "preset_amount"}
    _, errors = check_preset({"goods_name": "*农产品*大米", "revenue_code": "1010101000000000000", "tax_rate": "0"})
    assert set(errors) == {"preset_zero_rate_flag"}
    assert amount_problem(doc, Decimal("500.00")) is None and "500.00" in amount_problem(doc, Decimal("500.01"))
    fixed = {**doc, "amount_mode": "fixed"}
    assert amount_problem(fixed, Decimal("499")) and amount_problem(fixed, Decimal("500")) is None


def synced(sessions, **form) -> SettingsRecord:
    assert not isinstance(svc.create_org(sessions, ORG), dict)
    row = svc.create_qr_setting(
        sessions, {"org_code": "SZ01", "kinds": "10xdp 08xdp", "validity_days": "30", "default_issue": "是", **form}
    )
    assert not isinstance(row, dict), row
    [(key, value)] = [r for r in svc.sync_records(sessions) if r[0].startswith(b"qr:")]
    return SettingsRecord.model_validate_json(value)


def test_admin_keeps_the_preset_and_requires_it_with_default_issue(sessions):
    assert not isinstance(svc.create_org(sessions, ORG), dict)
    errors = svc.create_qr_setting(
        sessions, {"org_code": "SZ01", "kinds": "10xdp", "validity_days": "30", "default_issue": "是"}
    )
    assert "preset_goods_name" in errors
    errors = svc.create_qr_setting(
        sessions,
        {
            "org_code": "SZ01",
            "kinds": "10xdp",
            "validity_days": "30",
            "default_issue": "是",
            **PRESET,
            "preset_revenue_code": "1",
        },
    )
    assert set(errors) == {"preset_revenue_code"}
    row = svc.create_qr_setting(
        sessions,
        {
            "org_code": "SZ01",
            "kinds": "10xdp",
            "validity_days": "30",
            "default_issue": "是",
            "preset": {"goods_name": "*餐饮服务*餐费", "revenue_code": "3070401000000000000", "tax_rate": "0.06"},
        },
    )
    assert row.preset["goods_name"] == "*餐饮服务*餐费" and row.preset["amount_mode"] == "any"
    edited = svc.edit_qr_setting(sessions, row.key, {"preset_amount_mode": "fixed", "preset_amount": "30", **PRESET})
    assert edited.preset["amount"] == "30.00"
    assert svc.edit_qr_setting(sessions, row.key, {"enabled": "0"}).preset == edited.preset  # kept
    from fapiao.domain.order_rules import KIND_NAMES
    from fapiao.gateway.rendering import render

    page = render(
        "admin_settings.html",
        rows=svc.list_qr_settings(sessions),
        orgs=[],
        kinds=KIND_NAMES,
        errors={},
        form={},
        last_synced=None,
        unsynced=False,
        synced=None,
    ).text
    assert "预置销售单" in page and f'href="/p/{row.key}"' in page and "固定 ¥30.00" in page


def test_scan_builds_the_order_from_the_preset_and_issues(sessions, tmp_path):
    setting = synced(sessions, **PRESET, preset_amount_mode="max", preset_amount="200")
    assert setting.preset and setting.default_issue and not setting.query_url
    nonce = preset_nonce(MINTER.secret)
    too_much = obtain_preset_order(sessions, MINTER, setting, "200.01", "10xdp", nonce)
    assert too_much.error and "200.00" in too_much.error
    assert "发票种类" in obtain_preset_order(sessions, MINTER, setting, "88.50", "026", nonce).error
    assert "失效" in obtain_preset_order(sessions, MINTER, setting, "88.50", "10xdp", "0" * 32).error
    got = obtain_preset_order(sessions, MINTER, setting, "88.50", "10xdp", nonce)
    assert got.link, got.error
    assert obtain_preset_order(sessions, MINTER, setting, "88.50", "10xdp", nonce).link == got.link  # double tap
    view = scan_view(sessions, read_token(MINTER.secret, got.link.rsplit("/", 1)[1]).link_id)
    order = view.order
    assert re.fullmatch(r"YS\d{8}[0-9A-F]{16}", order.bill_no) and order.total_amount == Decimal("88.50")
    [line] = order.lines
    assert (line.goods_name, line.revenue_code, line.units, line.tax_rate) == (
        "*餐饮服务*餐费",
        "3070401000000000000",
        "次",
        Decimal("0.06"),
    )
    ev = submission_event(view, {"buyer_type": "individual", "title": "张三", "email": "a@b.cn"})
    [issued, *_] = handle_submission(sessions, SandboxIssuer(sessions), ev)
    assert issued.stage == "invoices.issued"
    inv = issued.event.invoice
    assert inv.total_with_tax == Decimal("88.50") and inv.total_tax == Decimal("5.01")


def test_business_system_link_without_query_interface_uses_the_preset(sessions):
    setting = synced(sessions, **PRESET)
    got = obtain_order(
        sessions,
        MINTER,
        setting,
        "SO-7",
        Decimal("66.00"),
        "08xdp",
        query=lambda *a: pytest.fail("no order-query interface is called"),
    )
    assert got.link, got.error
    view = scan_view(sessions, read_token(MINTER.secret, got.link.rsplit("/", 1)[1]).link_id)
    assert view.order.bill_no == "SO-7" and view.order.lines[0].goods_name == "*餐饮服务*餐费"


@pytest.mark.kafka
def test_preset_qr_page_through_the_gateway(admin_gateway):
    from tests.support.http import api, eventually, fetch

    s = admin_gateway()
    assert api(s, "POST", "/admin/api/orgs", ORG)[0] == 201
    status, body = api(
        s,
        "POST",
        "/admin/api/qr-settings",
        {
            "org_code": "SZ01",
            "kinds": ["10xdp"],
            "validity_days": "30",
            "default_issue": True,
            "preset": {
                "goods_name": "*餐饮服务*餐费",
                "revenue_code": "3070401000000000000",
                "tax_rate": "0.06",
                "amount_mode": "fixed",
                "amount": "25",
            },
        },
    )
    assert status == 201 and body["preset"]["amount"] == "25.00", body
    page_url = f"{s.base_url}/p/{body['key']}"
    api(s, "POST", "/admin/api/sync")
    status, page, _ = eventually(lambda: (r := fetch(page_url))[0] == 200 and r)
    html = page.decode()
    assert "*餐饮服务*餐费" in html and "¥25.00" in html and 'name="amount"' not in html
    nonce = re.search(r'name="nonce" value="([0-9a-f]{32})"', html).group(1)
    data = urllib.parse.urlencode({"nonce": nonce, "invoice_kind": "10xdp"}).encode()
    with urllib.request.urlopen(urllib.request.Request(page_url, data=data), timeout=10) as r:
        assert "/q/" in r.url and "申请开票" in r.read().decode()
    assert fetch(f"{page_url}/qr.svg")[0] == 200
    assert fetch(f"{s.base_url}/p/nosuchkey")[0] == 404


def test_cli_sets_and_lists_the_preset(sessions, db_url, monkeypatch):
    from click.testing import CliRunner

    from fapiao.cli import main

    monkeypatch.setenv("FAPIAO_DATABASE_URL", db_url)
    run = lambda *a: CliRunner().invoke(main, ["settings", *a])  # noqa: E731
    assert run("add-org", *(f"{k}={v}" for k, v in ORG.items())).exit_code == 0
    missing = run("add-qr", "org_code=SZ01", "kinds=10xdp", "validity_days=30", "default_issue=是")
    assert missing.exit_code == 1 and "preset_goods_name" in missing.output
    added = run(
        "add-qr",
        "org_code=SZ01",
        "kinds=10xdp",
        "validity_days=30",
        "default_issue=是",
        *(f"{k}={v}" for k, v in PRESET.items()),
        "preset_amount_mode=max",
        "preset_amount=300",
    )
    assert added.exit_code == 0, added.output
    key = added.output.split()[-1]
    listing = run("list").output
    assert "*餐饮服务*餐费 3070401000000000000 6% 次 最高 ¥300.00" in listing and f"/p/{key}" in listing
    assert run("edit-qr", key, "preset_tax_rate=17%").exit_code == 1
