"""Issue #12 item 5: text fields are normalised (NFC, trimmed); control, bidi and zero-width characters are refused
with the field named; e-mail addresses are checked by email-validator, not a regex."""

import unicodedata

import pytest

from fapiao.domain.buyer import check_buyer
from fapiao.domain.text import TextRefused, clean_text, text_problem
from schemas.events import Buyer, InvoiceKind

NORMAL = InvoiceKind.digital_normal
HOSTILE = {
    "CR/LF": "某某公司\r\n附加行",
    "LF": "某某\n公司",
    "NUL": "某某\x00公司",
    "tab": "某某\t公司",
    "RLO U+202E": "某某公司\u202egnp.exe",
    "LRE U+202A": "\u202a某某公司",
    "isolate U+2066": "某某\u2066公司",
    "PDI U+2069": "某某\u2069公司",
    "ZWSP U+200B": "某某\u200b公司",
    "ZWJ U+200D": "某某\u200d公司",
    "word joiner U+2060": "某某\u2060公司",
    "BOM U+FEFF": "\ufeff某某公司",
    "DEL": "某某\x7f公司",
}


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_domain_rule_refuses_and_names_the_field(value):
    assert text_problem(value)
    with pytest.raises(TextRefused) as refused:
        clean_text(value, "title", label="发票抬头")
    assert refused.value.field == "title" and "发票抬头" in refused.value.message and "U+" in refused.value.message


def test_normalised_nfc_and_trimmed():
    decomposed = unicodedata.normalize("NFD", "  Café 某某公司 ")
    assert clean_text(decomposed, "title") == "Café 某某公司"
    assert clean_text(None, "title") == ""
    with pytest.raises(TextRefused, match="100"):
        clean_text("抬" * 101, "title", max_length=100)


FIELDS = ["title", "tax_id", "address_tel", "bank_account", "email", "phone"]


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("char", ["\r\n", "\u202e", "\u200b", "\x00"], ids=["crlf", "rlo", "zwsp", "nul"])
def test_buyer_form_refuses_hostile_characters(field, char):
    form = {
        "buyer_type": "enterprise",
        "title": "某某科技有限公司",
        "tax_id": "91440300358768292H",
        "address_tel": "深圳市南山区 0755-1234",
        "bank_account": "招商银行 6225",
        "email": "a@b.cn",
        "phone": "13800138000",
    }
    form[field] = form[field][:3] + char + form[field][3:]
    result = check_buyer(form, NORMAL)
    assert isinstance(result, dict) and field in result, result


def test_buyer_title_normalised():
    buyer = check_buyer(
        {"buyer_type": "individual", "title": unicodedata.normalize("NFD", " Zoë 张三 "), "email": "a@b.cn"}, NORMAL
    )
    assert isinstance(buyer, Buyer) and buyer.title == "Zoë 张三"


BAD_EMAILS = [
    "a..b@qq.com",
    "a@qq.com;",
    "<a@qq.com>",
    "a@qq.com,b@qq.com",
    ".a@qq.com",
    "a.@qq.com",
    "a@qq",
    "a@-qq.com",
    "a b@qq.com",
    "a@qq..com",
    "a@@qq.com",
    '"a"@qq.com\n',
    "a@qq.com>",
    "Bob <a@qq.com>",
    "a@[1.2.3.4]",
    "a@qq.com\r\nBcc: x@y.cn",
]


@pytest.mark.parametrize("email", BAD_EMAILS)
def test_malformed_emails_refused(email):
    result = check_buyer({"buyer_type": "individual", "title": "张三", "email": email}, NORMAL)
    assert isinstance(result, dict) and "email" in result, (email, result)


@pytest.mark.parametrize(
    "email", ["a@qq.com", "zhang.san+fapiao@example.com.cn", "Buyer@Example.CN", "a_b-c@sub.example.org"]
)
def test_good_emails_accepted(email):
    result = check_buyer({"buyer_type": "individual", "title": "张三", "email": email}, NORMAL)
    assert isinstance(result, Buyer), result


@pytest.mark.parametrize(
    "field,char",
    [
        ("sellerName", "\u202e"),
        ("remark", "\r\n"),
        ("buyerName", "\u200b"),
        ("line0__goodsName", "\x00"),
        ("line0__specification", "\u2066"),
    ],
)
def test_pushed_order_free_text_refused_with_00634(field, char):
    from fapiao.domain.order_rules import check_bill
    from schemas.bill_push import Bill
    from schemas.events import Order
    from tests.support.samples import bill, CTX

    value = {
        "sellerName": "深圳市示例科技有限公司",
        "remark": "备注",
        "buyerName": "某某公司",
        "line0__goodsName": "*文化办公用设备*打印机",
        "line0__specification": "A4",
    }[field]
    result = check_bill(Bill.model_validate(bill(**{field: value[:2] + char + value[2:]})), CTX)
    assert not isinstance(result, Order), result
    [hit] = [v for v in result if v.code == "00634"]
    assert hit.field == field.replace("line0__", "billDetail[0].") and "U+" in hit.message
    assert isinstance(check_bill(Bill.model_validate(bill()), CTX), Order)
