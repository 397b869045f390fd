"""Tax maths (FACTS §3): 价税分离 both directions at every rate, the worked examples, 大写, tax IDs."""

from datetime import datetime
from decimal import Decimal as D

import pytest

from fapiao.domain.invoice import invoice_number
from fapiao.domain.money import round2, to_chinese_upper
from fapiao.domain.tax import ALLOWED_RATES, split_exclusive, split_inclusive
from fapiao.domain.taxid import id_card_problem, normalise, tax_id_problem, uscc_check_char


@pytest.mark.parametrize(
    "total,rate,amount,tax",
    [
        ("1130", "0.13", "1000.00", "130.00"),
        ("100", "0.09", "91.74", "8.26"),
        ("9.54", "0.06", "9.00", "0.54"),
        ("1.00", "0.01", "0.99", "0.01"),
        ("105", "0.05", "100.00", "5.00"),
        ("103", "0.03", "100.00", "3.00"),
        ("101.5", "0.015", "100.00", "1.50"),
        ("100", "0", "100.00", "0.00"),
    ],
)
def test_inclusive_worked_examples(total, rate, amount, tax):
    s = split_inclusive(D(total), D(rate))
    assert (s.amount, s.tax) == (D(amount), D(tax))


@pytest.mark.parametrize(
    "amount,rate,tax",
    [
        ("1000", "0.13", "130.00"),
        ("91.74", "0.09", "8.26"),
        ("9.00", "0.06", "0.54"),
        ("0.99", "0.01", "0.01"),
        ("0.05", "0.13", "0.01"),
        ("0.03", "0.13", "0.00"),
        ("100", "0.015", "1.50"),
        ("33.33", "0.05", "1.67"),
        ("33.33", "0.03", "1.00"),
        ("250", "0", "0.00"),
    ],
)
def test_exclusive(amount, rate, tax):
    assert split_exclusive(D(amount), D(rate)).tax == D(tax)


@pytest.mark.parametrize("rate", sorted(ALLOWED_RATES))
def test_amount_first_and_tax_first_agree_and_sum(rate):
    one = D(1)
    cents = 1
    while cents <= 2_000_000:
        total = D(cents) / 100
        s = split_inclusive(total, rate)
        tax_first = round2(total * rate / (one + rate))
        assert s.amount + s.tax == total
        assert s.tax == tax_first, (total, rate)
        cents += 37  # a stride through 0.01 .. 20,000.00 that hits every last-digit pattern
    assert isinstance(s.amount, D)


def test_round_half_up_not_bankers():
    assert round2(D("0.125")) == D("0.13")
    assert round2(D("0.135")) == D("0.14")
    assert round2(D("-0.125")) == D("-0.13")


@pytest.mark.parametrize(
    "amount,text",
    [
        ("1230.00", "壹仟贰佰叁拾圆整"),
        ("1130", "壹仟壹佰叁拾圆整"),
        ("100.05", "壹佰圆零伍分"),
        ("0.5", "伍角"),
        ("10010.10", "壹万零壹拾圆壹角"),
        ("100000000", "壹亿圆整"),
        ("1001", "壹仟零壹圆整"),
        ("0", "零圆整"),
        ("-8.26", "（负数）捌圆贰角陆分"),
        ("20304.07", "贰万零叁佰零肆圆零柒分"),
    ],
)
def test_chinese_upper(amount, text):
    assert to_chinese_upper(D(amount)) == text


@pytest.mark.parametrize(
    "tid",
    [
        "91440300MA5G9GK78Y",
        "91440300358768292H",
        "91440300687582704U",
        "91310104084123648T",
        "91450100MA5NCWQ56A",
        " ９１４４０３００ＭＡ５Ｇ９ＧＫ７８ｙ ",
        "110101199003071",
        "12345678901234567890",
    ],
)
def test_valid_tax_ids(tid):
    assert tax_id_problem(tid) is None


@pytest.mark.parametrize("tid", ["91500107MAC3BEU123", "91440300MA5G9GK78Z", "9144030OMA5G9GK78Y", "1234", ""])
def test_invalid_tax_ids(tid):
    assert tax_id_problem(tid)


def test_documented_example_check_char():
    assert uscc_check_char("91500107MAC3BEU12") == "F"
    assert normalise(" ９１ab ") == "91AB"


def test_id_card():
    assert id_card_problem("11010519491231002X") is None
    assert id_card_problem("110105194912310021")


def test_invoice_number_structure():
    n = invoice_number(datetime(2024, 5, 1), "95", "2", 28787793)
    assert n == "24952000000028787793" and len(n) == 20
    with pytest.raises(ValueError):
        invoice_number(datetime(2024, 5, 1), "9", "2", 1)
