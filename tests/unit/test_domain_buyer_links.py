"""Buyer form rules (FACTS §3) and QR link tokens."""

from datetime import datetime, timedelta, timezone

import pytest

from fapiao.domain.buyer import check_buyer
from fapiao.domain.links import LinkExpired, LinkInvalid, make_token, new_link_id, read_token
from schemas.events import Buyer, InvoiceKind

NORMAL, SPECIAL, PAPER = InvoiceKind.digital_normal, InvoiceKind.digital_special, InvoiceKind.paper_special


def form(**kw):
    base = {"buyer_type": "individual", "title": "张三", "email": "a@b.cn"}
    base.update(kw)
    return base


@pytest.mark.parametrize(
    "kw,kind,field",
    [
        ({}, NORMAL, None),
        ({"buyer_type": "x"}, NORMAL, "buyer_type"),
        ({"title": ""}, NORMAL, "title"),
        ({"title": "抬" * 101}, NORMAL, "title"),
        ({"buyer_type": "enterprise", "title": "某公司"}, NORMAL, "tax_id"),
        ({"buyer_type": "enterprise", "tax_id": "91500107MAC3BEU123"}, NORMAL, "tax_id"),
        ({"buyer_type": "enterprise", "tax_id": "91440300358768292H"}, NORMAL, None),
        ({"buyer_type": "non_enterprise", "title": "某协会"}, NORMAL, None),
        ({"buyer_type": "non_enterprise"}, SPECIAL, "tax_id"),
        ({"buyer_type": "individual", "tax_id": "91440300358768292H"}, SPECIAL, "buyer_type"),
        ({"buyer_type": "enterprise", "tax_id": "91440300358768292H"}, SPECIAL, None),
        ({"buyer_type": "enterprise", "tax_id": "91440300358768292H"}, PAPER, "address_tel"),
        (
            {
                "buyer_type": "enterprise",
                "tax_id": "91440300358768292H",
                "address_tel": "深圳 0755",
                "bank_account": "招行 1",
            },
            PAPER,
            None,
        ),
        ({"email": "bad"}, NORMAL, "email"),
        ({"email": "", "phone": "13800138000"}, NORMAL, None),
        ({"email": "", "phone": "12345"}, NORMAL, "phone"),
        ({"email": ""}, NORMAL, "email"),
    ],
)
def test_buyer_rules(kw, kind, field):
    result = check_buyer(form(**kw), kind)
    if field is None:
        assert isinstance(result, Buyer), result
    else:
        assert isinstance(result, dict) and field in result, result
        assert all(result.values())


def test_buyer_tax_id_normalised():
    b = check_buyer(form(buyer_type="enterprise", tax_id=" 91440300358768292h "), NORMAL)
    assert b.tax_id == "91440300358768292H"


SECRET = b"s" * 32


def test_token_round_trip_and_opacity():
    link_id = new_link_id()
    exp = datetime.now(timezone.utc) + timedelta(days=1)
    token = make_token(SECRET, link_id, exp)
    assert len(token) == 32 - 2 or len(token) <= 32
    link = read_token(SECRET, token)
    assert link.link_id == link_id and int(link.expires_at.timestamp()) == int(exp.timestamp())


def test_token_tampered_forged_expired():
    link_id = new_link_id()
    exp = datetime.now(timezone.utc) + timedelta(days=1)
    token = make_token(SECRET, link_id, exp)
    flipped = token[:3] + ("A" if token[3] != "A" else "B") + token[4:]
    for bad in (flipped, "garbage", token[:-4], make_token(b"other-secret-xxxxxxxx", link_id, exp)):
        with pytest.raises(LinkInvalid):
            read_token(SECRET, bad)
    with pytest.raises(LinkExpired):
        read_token(SECRET, make_token(SECRET, link_id, datetime.now(timezone.utc) - timedelta(seconds=1)))
