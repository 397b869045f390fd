"""Every BILL.PUSH rule, table-driven: each row changes the valid sample bill and names the code it must get
(or None: the change is allowed). All violations of a bill are reported at once."""

import json
from decimal import Decimal

import pytest

from fapiao.domain.merchant import BusinessSystemView, PushContext
from fapiao.domain.order_rules import check_bill, key_tax_id_warning
from schemas.bill_push import Bill, NotAnOrder, parse_push
from schemas.events import Order
from tests.support.samples import sample_push
from tests.support.samples import bill, CTX, DELETE, SETTING


def codes(doc: dict, ctx: PushContext = CTX) -> set[str]:
    result = check_bill(Bill.model_validate(doc), ctx)
    return set() if isinstance(result, Order) else {v.code for v in result}


CASES = [
    # (id, changes, expected code or None for "passes")
    ("bill no missing", {"billNo": ""}, "00552"),
    ("bill no 40", {"billNo": "X" * 40}, None),
    ("bill no 41", {"billNo": "X" * 41}, "00548"),
    ("date missing", {"billDate": DELETE}, "00553"),
    ("date unpadded", {"billDate": "2025-7-4"}, None),
    ("date slashes", {"billDate": "2025/07/04"}, None),
    ("date invalid", {"billDate": "2025-13-40"}, "00612"),
    ("kind missing", {"invoiceType": ""}, "00554"),
    ("kind unknown", {"invoiceType": "99x"}, "00614"),
    ("kind not configured", {"invoiceType": "026"}, "00603"),
    ("kind special configured", {"invoiceType": "08xdp"}, None),
    ("include tax flag bad", {"includeTaxFlag": "Y"}, "00615"),
    ("total missing", {"totalAmount": None}, "00551"),
    ("total as number", {"totalAmount": 1230}, None),
    ("total three places", {"totalAmount": "1230.001"}, "00613"),
    ("total not number", {"totalAmount": "abc"}, "00613"),
    ("lines do not sum", {"totalAmount": "1230.02"}, "00569"),
    ("seller name missing", {"sellerName": " "}, "00616"),
    ("seller tax id missing", {"sellerTaxpayerId": ""}, "0520"),
    ("seller tax id bad check", {"sellerTaxpayerId": "91500107MAC3BEU123"}, "00604"),
    ("seller tax id not an org", {"sellerTaxpayerId": "91440300358768292H"}, "00605"),
    ("seller tax id full width", {"sellerTaxpayerId": "９１４４０３００ＭＡ５Ｇ９ＧＫ７８Ｙ"}, None),
    ("remark 230", {"remark": "备" * 230}, None),
    ("remark 231", {"remark": "备" * 231}, "00549"),
    ("buyer title 101", {"buyerName": "买" * 101}, "00504"),
    ("buyer address 101", {"buyerAddressAndTel": "址" * 101}, "00506"),
    ("buyer bank 101", {"buyerBankAndAccount": "行" * 101}, "00505"),
    ("buyer mail long", {"buyerRecipientMail": "a" * 95 + "@b.com"}, "00579"),
    ("buyer phone long", {"buyerRecipientPhone": "1" * 21}, "00544"),
    ("buyer tax id long", {"buyerTaxpayerId": "9" * 21}, "0581"),
    ("term validity bad", {"termValidity": "-1"}, "00618"),
    ("term validity ok", {"termValidity": "7"}, None),
    ("no lines", {"billDetail": []}, "00556"),
    ("goods name missing", {"line0__goodsName": ""}, "00559"),
    ("goods name 91", {"line0__goodsName": "品" * 91}, "00507"),
    ("spec 41", {"line0__specification": "s" * 41}, "00508"),
    ("units 21", {"line0__units": "u" * 21}, "00509"),
    ("revenue code 18", {"line0__revenueCode": "109062701000000000"}, "00560"),
    ("revenue code letters", {"line0__revenueCode": "10906270100000000AB"}, "00560"),
    ("line amount missing", {"line0__amount": DELETE}, "00563"),
    ("tax rate missing", {"line0__taxRate": DELETE}, "00564"),
    ("tax rate not allowed", {"line0__taxRate": "0.17"}, "00606"),
    ("tax rate as percent", {"line0__taxRate": "13"}, None),
    ("qty x price off by 0.02", {"line0__price": "1130.02"}, "00607"),
    ("qty x price off by 0.01", {"line0__price": "1130.01"}, None),
    ("tax off by 0.07", {"line0__taxAmount": "130.07"}, "00608"),
    ("tax off by 0.05", {"line0__taxAmount": "130.05"}, None),
    ("tax amount omitted is computed", {"line0__taxAmount": DELETE}, None),
    ("preferential flag bad", {"line0__preferentialPolicyFlag": "2"}, "00561"),
    ("preferential flag 0", {"line0__preferentialPolicyFlag": "0"}, None),
    ("preferential flag 1 without special management", {"line0__preferentialPolicyFlag": "1"}, "00562"),
    (
        "preferential flag 1 with special management",
        {"line0__preferentialPolicyFlag": "1", "line0__vatSpecialManagement": "免税"},
        None,
    ),
    ("invoice amount equals total", {"invoiceAmount": "1230.00"}, None),
    ("invoice amount differs from total", {"invoiceAmount": "1200.00"}, "00568"),
    ("buyer tax id bad check digit", {"buyerTaxpayerId": "91500107MAC3BEU123"}, "00622"),
    ("buyer tax id valid", {"buyerTaxpayerId": "91440300358768292H"}, None),
    ("buyer tax id a resident id card", {"buyerTaxpayerId": "11010519491231002X"}, None),
    ("buyer tax id region letters", {"buyerTaxpayerId": "91A40300358768292H"}, "00622"),
    ("scanh5Url yes", {"scanh5Url": "1"}, None),
    ("scanh5Url bad", {"scanh5Url": "maybe"}, "00623"),
]


@pytest.mark.parametrize("changes,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule(changes, expected):
    got = codes(bill(**changes))
    if expected is None:
        assert got == set()
    else:
        assert expected in got, got


def test_valid_sample_normalises():
    order = check_bill(Bill.model_validate(bill(billDate="2026-1-5")), CTX)
    assert isinstance(order, Order)
    assert order.bill_date == "2026-01-05"
    assert order.total_amount == Decimal("1230.00")
    assert str(order.lines[1].amount) == "100.00"  # given as the JSON number 100: exact, with its two places


def zero_rate_bill(flag):
    line = {
        "lineProperty": "2",
        "goodsName": "*图书*教材",
        "revenueCode": "1060101000000000000",
        "amount": "50",
        "taxRate": "0",
    }
    if flag is not None:
        line["zeroRateFlag"] = flag
    return bill(totalAmount="1280.00", billDetail=[*bill()["billDetail"], line])


@pytest.mark.parametrize("flag,expected", [(None, "00583"), ("1", None), ("2", None), ("3", None), ("9", "00583")])
def test_zero_rate_flag(flag, expected):
    got = codes(zero_rate_bill(flag))
    assert (expected in got) if expected else got == set()


def test_zero_rate_flag_on_taxed_line():
    assert "00620" in codes(bill(line0__zeroRateFlag="1"))


def discount_doc(discount: dict, position: int = 1) -> dict:
    b = bill()
    lines = b["billDetail"]
    d = {
        "lineProperty": "1",
        "goodsName": lines[0]["goodsName"],
        "revenueCode": lines[0]["revenueCode"],
        "taxRate": "0.13",
        **discount,
    }
    lines.insert(position, d)
    amt = sum(Decimal(str(l["amount"])) for l in lines)
    b["totalAmount"] = str(amt)
    if "taxAmount" not in discount:
        pass
    return b


def test_discount_line_valid():
    assert codes(discount_doc({"amount": "-113.00", "taxAmount": "-13.00"})) == set()


@pytest.mark.parametrize(
    "discount,position,code",
    [
        ({"amount": "-113.00", "quantity": "1", "price": "-113"}, 1, "00611"),
        ({"amount": "113.00"}, 1, "00611"),
        ({"amount": "-113.00"}, 0, "00610"),
        ({"amount": "-2000.00"}, 1, "00567"),
        ({"amount": "-106.00", "taxRate": "0.06"}, 1, "00619"),
    ],
)
def test_discount_line_rules(discount, position, code):
    assert code in codes(discount_doc(discount, position))


def test_discount_marks_discounted_line():
    order = check_bill(Bill.model_validate(discount_doc({"amount": "-113.00"})), CTX)
    assert [l.line_property for l in order.lines] == ["discounted", "discount", "normal"]


def test_cumulative_tax_difference():
    lines = [
        {
            "goodsName": "*餐饮服务*餐费",
            "revenueCode": "3070401000000000000",
            "amount": "10.00",
            "taxRate": "0.06",
            "taxAmount": "0.65",
        }
        for _ in range(30)
    ]  # each off by 0.05: within 0.06
    doc = bill(includeTaxFlag="0", totalAmount="300.00", billDetail=lines)
    assert "00609" in codes(doc)  # 30 × 0.05 = 1.50 > 1.27
    assert "00609" not in codes(bill(includeTaxFlag="0", totalAmount="200.00", billDetail=lines[:20]))


def test_stricter_line_tolerance():
    strict = PushContext(
        system=CTX.system, setting=SETTING, known_org_tax_ids=CTX.known_org_tax_ids, line_tax_tolerance=Decimal("0.01")
    )
    exclusive = dict(
        includeTaxFlag="0", totalAmount="1100.00", line0__amount="1000.00", line0__price="1000", line1__taxAmount="6.00"
    )
    assert codes(bill(**exclusive, line0__taxAmount="130.00"), strict) == set()
    assert "00608" in codes(bill(**exclusive, line0__taxAmount="130.02"), strict)
    assert codes(bill(**exclusive, line0__taxAmount="130.01"), strict) == set()
    assert codes(bill(**exclusive, line0__taxAmount="130.06")) == set()  # default tolerance 0.06


def test_business_system_unknown_and_disabled():
    assert "00601" in codes(bill(), PushContext(system=None, setting=SETTING))
    disabled = PushContext(system=BusinessSystemView("DEMO-POS", "POS", False), setting=SETTING)
    assert "00602" in codes(bill(), disabled)
    assert "00617" in codes(bill(), PushContext(system=CTX.system, setting=None))


def test_all_violations_reported_at_once():
    result = check_bill(
        Bill.model_validate(bill(billNo="", invoiceType="", line0__revenueCode="1", totalAmount="x")), CTX
    )
    assert {"00552", "00554", "00560", "00613"} <= {v.code for v in result}
    assert all(v.message and v.field for v in result)


def test_key_tax_id_mismatch_message():
    w = key_tax_id_warning("91440300358768292H", "91440300MA5G9GK78Y")
    assert w.message == "二维码key值对应税号和订单税号不一致，请联系商家提供新的二维码"
    assert key_tax_id_warning("91440300MA5G9GK78Y", "91440300ma5g9gk78y") is None


def test_parse_push_shapes():
    env = parse_push(json.dumps(sample_push()).encode())
    assert len(env.data) == 1 and env.businessSystemCode == "DEMO-POS"
    single = parse_push(json.dumps(bill()).encode())
    assert single.data[0].billNo == "DEMO-0001"
    assert parse_push(b'{"billNo": "1", "totalAmount": 12.30, "extra": {"x": 1}}').data[0].totalAmount == "12.30"
    for poison in (b"\xff\xfe", b"not json", b"[1,2]", b'{"hello": 1}', b'{"data": []}', b'{"data": [1]}'):
        with pytest.raises(NotAnOrder):
            parse_push(poison)


def discounted_order(**changes) -> dict:
    """1130 printer with a 30.00 discount line, 100 service: 销售单金额 1230, 折扣 30, 开票金额 1200."""
    doc = discount_doc(
        {
            "lineProperty": "1",
            "goodsName": "*文化办公用设备*打印机",
            "revenueCode": "1090627010000000000",
            "amount": "-30.00",
            "taxRate": "0.13",
            "taxAmount": "-3.45",
        }
    )
    doc.update(
        {"totalAmount": "1230.00", "totalDiscountAmount": "30.00", "discountType": "1", "invoiceAmount": "1200.00"}
    )
    doc.update(changes)
    return doc


def test_order_discount_rules_00580_00568_00550():
    ok = check_bill(Bill.model_validate(discounted_order()), CTX)
    assert isinstance(ok, Order) and ok.total_amount == Decimal("1200.00"), ok
    assert codes(discounted_order(discountType="")) == {"00580"}
    assert codes(discounted_order(invoiceAmount="1230.00")) == {"00568"}
    assert codes(discounted_order(invoiceAmount=None)) == {"00550"}
    assert codes(discounted_order(totalDiscountAmount="20.00", invoiceAmount="1210.00")) == {"00569"}


def test_push_answer_codes_are_kingdees():
    from fapiao.domain.order_rules import NOT_SAVED, SAVED

    assert SAVED == ("0000", "保存数据成功") and NOT_SAVED == ("0001", "保存数据失败")
