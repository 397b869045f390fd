"""Issue #12 item 2: every malformed request gets a 4xx with a message naming the field and the rule; no input
reaches a 500. Against the real gateway process (real broker, real database): amounts that overflow on a
business-system link or a static-QR submission (00613), broken and hostile bodies on the buyer's form and the admin,
oversized bodies, and a small fuzz over every route."""

from __future__ import annotations

import itertools
import json
import time
from datetime import datetime, timezone

import httpx
import pytest

from fapiao.domain.system_links import build_link, kingdee_md5
from tests.support.samples import ADMIN_TOKEN, sample_push

pytestmark = pytest.mark.kafka

ORG = {"org_code": "SZ01", "seller_name": "深圳市示例科技有限公司", "tax_id": "91440300MA5G9GK78Y"}
BAD_AMOUNTS = [
    "1e30",
    "1E+30",
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "1e999999999",
    "-5.00",
    "0",
    "1e20",
    "9999999999999.00",
    "1.005",
    "0x10",
    "１２",
    "88.50.1",
    "",
    " ",
]


@pytest.fixture
def site(admin_gateway, sessions):
    """A running gateway with an organisation, a business system, an hmac 动态二维码设置 and a static QR synced,
    and a pushed order's link."""
    from fapiao.services.ingest import LinkMinter, ingest_push
    from fapiao.services.merchants import ensure_demo_merchant
    from schemas.bill_push import parse_push

    s = admin_gateway()
    http = httpx.Client(base_url=s.base_url, timeout=15, follow_redirects=False)
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert http.post("/admin/api/orgs", json=ORG, headers=auth).status_code == 201
    system = http.post("/admin/api/systems", json={"code": "POS", "name": "收银"}, headers=auth).json()
    setting = http.post(
        "/admin/api/qr-settings",
        headers=auth,
        json={"org_code": "SZ01", "kinds": ["10xdp"], "validity_days": "30", "business_system_code": "POS"},
    ).json()
    md5 = http.post(
        "/admin/api/qr-settings",
        headers=auth,
        json={"org_code": "SZ01", "kinds": ["10xdp"], "validity_days": "30", "link_mode": "kingdee_md5"},
    ).json()
    preset = http.post(
        "/admin/api/qr-settings",
        headers=auth,
        json={
            "org_code": "SZ01",
            "kinds": ["10xdp"],
            "validity_days": "30",
            "default_issue": True,
            "preset": {
                "goods_name": "*餐饮服务*餐费",
                "revenue_code": "3070401000000000000",
                "tax_rate": "0.06",
                "units": "次",
                "amount_mode": "max",
                "amount": "500",
            },
        },
    ).json()
    static = http.post("/admin/api/static/SZ01", headers=auth).json()["link"]
    with sessions() as db:
        ensure_demo_merchant(db)
    minter = LinkMinter(s.link_secret.get_secret_value().encode(), s.base_url)
    [accepted] = ingest_push(sessions, parse_push(json.dumps(sample_push(billNo="HOSTILE-1")).encode()), minter)
    assert http.post("/admin/api/sync", headers=auth).status_code == 200
    deadline = time.monotonic() + 20
    while http.get(static).status_code != 200:
        assert time.monotonic() < deadline, "static QR not synced in time"
        time.sleep(0.2)
    yield {
        "s": s,
        "http": http,
        "auth": auth,
        "system": system,
        "key": setting["key"],
        "md5_key": md5["key"],
        "preset": preset["key"],
        "static": static.removeprefix(s.base_url),
        "order": accepted.event.link.removeprefix(s.base_url),
    }
    http.close()


def _is_answer(r: httpx.Response) -> bool:
    return 400 <= r.status_code < 500 and len(r.content) > 0


def test_amounts_refused_with_00613(site):
    """On a business-system link (hmac and Kingdee md5, GET and POST) and on a static-QR submission."""
    now = int(datetime.now(timezone.utc).timestamp())
    wrong = []
    for amount in BAD_AMOUNTS:
        hmac_link = build_link("", site["key"], "SO-1", amount, now, secret=site["system"]["secret"])
        md5_link = f"/?k={site['md5_key']},SO-1,{amount},{now},{kingdee_md5(site['md5_key'])},$"
        for link in (hmac_link, md5_link):
            for method in ("GET", "POST"):
                r = site["http"].request(method, link, data={"invoice_kind": "10xdp"} if method == "POST" else None)
                if not (r.status_code == 400 and "00613" in r.text and "金额" in r.text):
                    wrong.append((method, link, r.status_code))
        r = site["http"].post(site["static"], data={"bill_no": "SO-1", "amount": amount, "invoice_kind": "10xdp"})
        if not (r.status_code == 422 and ("00613" in r.text or not amount.strip()) and "金额" in r.text):
            wrong.append(("static", amount, r.status_code))  # a blank amount: "please fill in", not 00613
        r = site["http"].post(f"/p/{site['preset']}", data={"amount": amount, "invoice_kind": "10xdp"})
        if not (r.status_code == 422 and "金额" in r.text):
            wrong.append(("preset", amount, r.status_code))
    assert not wrong, wrong


BUYER = {"buyer_type": "individual", "title": "张三", "email": "a@b.cn"}
BOUNDARY = "fapiaoBoundary"


def _multipart(*parts: bytes, close: bool = True) -> bytes:
    body = b"".join(b"--" + BOUNDARY.encode() + b"\r\n" + p + b"\r\n" for p in parts)
    return body + (b"--" + BOUNDARY.encode() + b"--\r\n" if close else b"")


def _field(name: str, value: str) -> bytes:
    return f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}'.encode()


FORM = "application/x-www-form-urlencoded"
MULTI = f"multipart/form-data; boundary={BOUNDARY}"
HOSTILE_BODIES = {
    "ff-fe bytes as a form": (FORM, b"\xff\xfe"),
    "ff-fe inside a field": (FORM, b"title=\xff\xfe&buyer_type=individual"),
    "percent-encoded invalid utf-8": (FORM, b"title=%ff%fe&buyer_type=individual&email=a%40b.cn"),
    "broken multipart (no closing boundary, no blank line)": (MULTI, b"--" + BOUNDARY.encode() + b"\r\nxx"),
    "multipart, unclosed": (MULTI, _multipart(_field("title", "张三"), close=False)),
    "multipart without boundary": ("multipart/form-data", _multipart(_field("title", "张三"))),
    "multipart with a file part": (
        MULTI,
        _multipart(
            _field("buyer_type", "individual"),
            _field("email", "a@b.cn"),
            b'Content-Disposition: form-data; name="title"; filename="x.exe"\r\nContent-Type: application/octet-stream'
            b"\r\n\r\nMZ\x00\x01binary",
        ),
    ),
    "multipart with ff-fe field": (MULTI, _multipart(b'Content-Disposition: form-data; name="title"\r\n\r\n\xff\xfe')),
    "json instead of a form": ("application/json", json.dumps(BUYER).encode()),
    "text/plain": ("text/plain", b"title=x"),
    "no content type": (None, b"title=x"),
    "xml": ("application/xml", b"<a/>"),
    "bad charset": ("application/x-www-form-urlencoded; charset=no-such-charset", b"title=x"),
}


def test_buyer_form_hostile_bodies_are_4xx(site):
    wrong = []
    for name, (ctype, body) in HOSTILE_BODIES.items():
        headers = {"Content-Type": ctype} if ctype else {}
        for path in (site["order"], site["static"], f"/p/{site['preset']}"):
            r = site["http"].post(path, content=body, headers=headers)
            if not _is_answer(r):
                wrong.append((name, path, r.status_code, r.text[-200:]))
    assert not wrong, wrong


def test_buyer_form_oversized_body_and_field(site):
    http = site["http"]
    r = http.post(site["order"], content=b"title=" + b"a" * (3 << 20), headers={"Content-Type": FORM})
    assert r.status_code == 413 and "过大" in r.text
    r = http.post(site["order"], data={**BUYER, "title": "抬" * 5000})
    assert r.status_code in (413, 422) and "title" in r.text or "发票抬头" in r.text
    r = http.post(site["order"], data={**BUYER, "title": "抬" * 101})
    assert r.status_code == 422 and "100" in r.text
    r = http.post(site["order"], data={**BUYER, "email": "a..b@qq.com"})
    assert r.status_code == 422 and "邮箱" in r.text
    r = http.post(site["order"], data={**BUYER, "title": "张三\u202e"})
    assert r.status_code == 422 and "U+202E" in r.text


def test_admin_hostile_bodies_are_4xx(site):
    http, auth = site["http"], site["auth"]
    for path in ("/admin/api/orgs", "/admin/api/qr-settings", "/admin/api/systems"):
        for ctype, body in [
            ("application/json", b"\xff\xfe"),
            ("application/json", b"[1, 2]"),
            ("application/json", b'{"org_code": ["x"], "kinds": "10xdp"}'),
            ("application/json", b'{"org_code": null, "validity_days": 1e999}'),
            (MULTI, b"--" + BOUNDARY.encode() + b"\r\nxx"),
            (FORM, b"\xff\xfe"),
            ("application/json", b"{" + b'"a":' * 5000 + b"1" + b"}" * 5000),
        ]:
            r = http.post(path, content=body, headers={**auth, "Content-Type": ctype})
            assert _is_answer(r), (path, ctype, body[:40], r.status_code, r.text[-300:])
    r = http.patch(
        f"/admin/api/qr-settings/{site['key']}",
        content=b'{"validity_days": "1e30"}',
        headers={**auth, "Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text


PLACEHOLDERS = {
    "token": ["{order}", "AAAA", "%FF%FE", "x" * 5000],
    "static_id": ["{static}", "nope", "%00"],
    "fmt": ["svg", "png", "pdf", "exe"],
    "key": ["{key}", "{preset}", "nope"],
    "code": ["POS", "NOPE"],
    "org_code": ["SZ01", "NOPE", "%E2%80%AE"],
    "order_key": ["91440300MA5G9GK78Y:HOSTILE-1", "x"],
    "name": ["x.eml", "..%2F..%2Fetc%2Fpasswd"],
}
FUZZ_BODIES = [
    (None, None),
    (FORM, b"\xff\xfe"),
    (MULTI, b"--" + BOUNDARY.encode() + b"\r\nxx"),
    ("application/json", b"\xff\xfe"),
    ("application/json", b"null"),
    (FORM, b"a=" + b"%" * 200),
    (FORM, b"amount=1e30&bill_no=SO-1&invoice_kind=10xdp&title=%00&email=%3Ca%40qq.com%3E"),
]


def test_fuzz_no_route_answers_5xx(site):
    """Every route of the gateway, with odd path values, query strings and bodies: never a 5xx."""
    from fapiao.config import Settings
    from fapiao.gateway.app import create_gateway

    app = create_gateway(Settings(_env_file=None))
    routes = sorted({(r.method, r.resource.canonical) for r in app.router.routes() if r.method != "HEAD"})
    assert len(routes) > 20
    order_token = site["order"].removeprefix("/q/")
    fill = {
        "{order}": order_token,
        "{static}": site["static"].removeprefix("/s/"),
        "{key}": site["key"],
        "{preset}": site["preset"],
    }
    now = int(datetime.now(timezone.utc).timestamp())
    queries = [
        "",
        "?k=garbage",
        f"?k={site['key']},SO-1,1e30,{now},abc,$",
        "?k=%FF%FE",
        "?k=,,,,,$",
        "?resent=%00",
        "?k=" + "x" * 10000,
    ]
    failures = []
    for method, canonical in routes:
        names = [seg[1:-1].split(":")[0] for seg in canonical.replace(".", "/").split("/") if seg.startswith("{")]
        for values in itertools.product(*(PLACEHOLDERS.get(n, ["x"]) for n in names)):
            path = canonical
            for n, v in zip(names, values):
                path = path.replace("{" + n + "}", fill.get(v, v), 1)
            for query, (ctype, body), auth in itertools.product(
                queries[:3] if path != "/" else queries,
                FUZZ_BODIES if method != "GET" else [(None, None)],
                [site["auth"], {}],
            ):
                headers = {**auth, **({"Content-Type": ctype} if ctype else {})}
                try:
                    r = site["http"].request(method, path + query, content=body, headers=headers)
                except httpx.HTTPError as exc:
                    failures.append((method, path + query, ctype, f"no answer: {exc}"))
                    continue
                if r.status_code >= 500:
                    failures.append((method, path + query, ctype, r.status_code))
    assert not failures, failures[:20]


def test_hostile_merchant_order_answers_are_422(admin_gateway, http_stub):
    """The merchant's order-query interface answers garbage: the buyer gets a message, never a 500."""
    s = admin_gateway()
    http = httpx.Client(
        base_url=s.base_url, timeout=15, follow_redirects=False, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    http.post("/admin/api/orgs", json=ORG)
    system = http.post(
        "/admin/api/systems", json={"code": "POS", "name": "收银", "query_url": http_stub.url + "/orders"}
    ).json()
    key = http.post(
        "/admin/api/qr-settings",
        json={"org_code": "SZ01", "kinds": ["10xdp"], "validity_days": "30", "business_system_code": "POS"},
    ).json()["key"]
    http.post("/admin/api/sync")
    browser = httpx.Client(base_url=s.base_url, timeout=15, follow_redirects=False)
    now = int(datetime.now(timezone.utc).timestamp())
    answers = [
        {"billDetail": "x"},
        {"billDetail": [1, 2]},
        {"totalAmount": {"a": 1}, "billDetail": []},
        {
            "totalAmount": "1e30",
            "includeTaxFlag": "1",
            "billDetail": [
                {
                    "goodsName": "*餐饮服务*餐费",
                    "revenueCode": "3070401000000000000",
                    "amount": "1e30",
                    "taxRate": "0.06",
                }
            ],
        },
        {"totalAmount": "NaN", "billDetail": [{"amount": "NaN", "taxRate": "abc"}]},
    ]
    wrong = []
    for i, data in enumerate(answers):
        http_stub.routes["/orders"] = (200, {"errorCode": "0", "data": data})
        link = build_link("", key, f"SO-{i}", "88.50", now, secret=system["secret"])
        deadline = time.monotonic() + 20
        while (r := browser.get(link)).status_code != 200:
            assert time.monotonic() < deadline, r.status_code
            time.sleep(0.2)
        r = browser.post(link, data={"invoice_kind": "10xdp"})
        if r.status_code != 422 or "商家" not in r.text:
            wrong.append((data, r.status_code, r.text[-200:]))
    assert not wrong, wrong
    http.close()
    browser.close()


@pytest.mark.parametrize("amount", ["1e30", "1E+400", "NaN", "-Infinity"])
def test_pushed_amount_overflow_is_00613_not_a_handler_error(amount):
    """order_ingest's rules: an amount too large to round used to raise decimal.InvalidOperation (a DLQ handler
    error); it is a violation now."""
    from fapiao.domain.order_rules import check_bill
    from schemas.bill_push import Bill
    from tests.support.samples import bill, CTX

    for doc in (bill(totalAmount=amount), bill(line0__amount=amount)):
        result = check_bill(Bill.model_validate(doc), CTX)
        assert isinstance(result, list) and "00613" in {v.code for v in result}, (doc, result)
    assert isinstance(check_bill(Bill.model_validate(bill(line0__price=amount)), CTX), list)  # refused (00607)
