"""Settings rules and the business-system link formats, including Kingdee's documented test vector."""

from datetime import datetime, timedelta, timezone

import pytest

from fapiao.domain.links import LinkExpired, LinkInvalid
from fapiao.domain.settings_rules import check_business_system, check_org, check_qr_setting
from fapiao.domain.system_links import build_link, kingdee_md5, parse_link, verify


def test_kingdee_test_vector():
    assert ("Evjf8VxmUW" + "Evjf8VxmUW")[::-1] == "WUmxV8fjvEWUmxV8fjvE"
    assert kingdee_md5("Evjf8VxmUW") == "81dd864a0c6e5f0776351a0c49b38423"


def k_of(url):
    return url.split("?k=", 1)[1]


def test_md5_link_accepted_in_either_case_and_both_timestamp_units():
    now = datetime.now(timezone.utc)
    for stamp in (int(now.timestamp()), int(now.timestamp() * 1000)):
        k = f"Evjf8VxmUW,SO-1,88.50,{stamp},81DD864A0C6E5F0776351A0C49B38423,$"
        link = parse_link(k)
        verify(link, "88.50", str(stamp), "kingdee_md5", "", 30)
        assert link.bill_no == "SO-1" and str(link.amount) == "88.50"


def test_hmac_link_covers_order_amount_and_time():
    stamp = int(datetime.now(timezone.utc).timestamp())
    k = k_of(build_link("http://h", "KEY123", "SO-2", "100.00", stamp, secret="sys-secret"))
    verify(parse_link(k), "100.00", str(stamp), "hmac", "sys-secret", 30)
    tampered = k.replace("100.00", "1.00")
    with pytest.raises(LinkInvalid):
        verify(parse_link(tampered), "1.00", str(stamp), "hmac", "sys-secret", 30)
    md5_for_hmac_key = k_of(build_link("http://h", "KEY123", "SO-2", "1.00", stamp, secret=None))
    with pytest.raises(LinkInvalid):  # a forgeable MD5 link is refused on an HMAC key
        verify(parse_link(md5_for_hmac_key), "1.00", str(stamp), "hmac", "sys-secret", 30)


def test_link_expiry_and_malformed():
    old = int((datetime.now(timezone.utc) - timedelta(days=31)).timestamp())
    with pytest.raises(LinkExpired):
        verify(parse_link(f"K,SO,1.00,{old},{kingdee_md5('K')},$"), "1.00", str(old), "kingdee_md5", "", 30)
    for bad in (
        "K,SO,1.00,123,abc",
        "K,SO,-1,1700000000,x,$",
        "K,SO,1.001,1700000000,x,$",
        "K,,1,1700000000,x,$",
        "K,SO,1.00,17000000000000000,x,$",
    ):
        with pytest.raises(LinkInvalid):
            parse_link(bad)


ORG = {"org_code": "SZ01", "seller_name": "深圳市示例科技有限公司", "tax_id": "91440300MA5G9GK78Y"}


@pytest.mark.parametrize(
    "change,field",
    [
        ({}, None),
        ({"org_code": "有空格 x"}, "org_code"),
        ({"seller_name": ""}, "seller_name"),
        ({"tax_id": "91500107MAC3BEU123"}, "tax_id"),
        ({"monthly_limit": "-1"}, "monthly_limit"),
        ({"monthly_limit": "100000.005"}, "monthly_limit"),
        ({"drawer": "张" * 21}, "drawer"),
    ],
)
def test_org_rules(change, field):
    values, errors = check_org({**ORG, **change})
    assert (field in errors) if field else (errors == {} and values["tax_id"] == "91440300MA5G9GK78Y")


@pytest.mark.parametrize(
    "change,field",
    [
        ({}, None),
        ({"code": ""}, "code"),
        ({"callback_url": "ftp://x"}, "callback_url"),
        ({"enabled": "maybe"}, "enabled"),
    ],
)
def test_business_system_rules(change, field):
    values, errors = check_business_system(
        {"code": "POS", "name": "收银", "callback_url": "https://shop.example/cb", **change}
    )
    assert (field in errors) if field else (errors == {} and values["enabled"] is True)


SETTING = {
    "org_code": "SZ01",
    "scan_type": "扫码开票",
    "kinds": ["10xdp"],
    "validity_days": "30",
    "default_issue": "否",
}


@pytest.mark.parametrize(
    "change,field",
    [
        ({}, None),
        ({"org_code": "NOPE"}, "org_code"),
        ({"org_code": ""}, "org_code"),
        ({"scan_type": "扫一扫"}, "scan_type"),
        ({"kinds": []}, "kinds"),
        ({"kinds": ["10xdp", "999"]}, "kinds"),
        ({"validity_days": "0"}, "validity_days"),
        ({"validity_days": "1.5"}, "validity_days"),
        ({"default_issue": "maybe"}, "default_issue"),
        ({"link_mode": "sha1"}, "link_mode"),
        ({"kinds": "10xdp,08xdp"}, None),
    ],
)
def test_qr_setting_rules(change, field):
    values, errors = check_qr_setting({**SETTING, **change}, {"SZ01"})
    if field:
        assert field in errors and errors[field]
    else:
        assert errors == {} and values["scan_type"] == "issue" and values["validity_days"] == 30
        assert values["link_mode"] == "hmac"


def test_readme_link_example_builds_a_valid_link(monkeypatch):
    """The integrators' example in the README builds a link fapiao accepts."""
    import re
    import time as time_module
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    code = re.search(r"Building a link in Python.*?```python\n(.*?)```", readme, re.S).group(1)
    printed = []
    namespace = {"print": printed.append}
    exec(code, namespace)  # noqa: S102 - our own README
    stamp = int(time_module.time())
    link = namespace["fapiao_link"]("https://fapiao.example.com", "KEY1", "SO-1", "88.50", "sys-secret")
    k = link.split("?k=", 1)[1]
    parsed = parse_link(k)
    verify(parsed, "88.50", k.split(",")[3], "hmac", "sys-secret", 30)
    assert abs(int(k.split(",")[3]) - stamp) <= 2 and printed
