"""``check_bill`` builds the ``Order`` without validating it a second time (``model_construct``, issue #11 point 5):
for every bill the rules accept, the order must be exactly what pydantic's validation would have made of the same
values (same fields, same types, same JSON), so skipping the second validation changes nothing downstream."""

import pytest

from fapiao.domain.order_rules import check_bill
from schemas.bill_push import Bill
from schemas.events import Order
from tests.support.samples import CTX, bill
from tests.unit.test_order_rules import CASES, discount_doc, zero_rate_bill

ACCEPTED = [
    *[(name, bill(**changes)) for name, changes, expected in CASES if expected is None],
    ("zero rate", zero_rate_bill("1")),
    ("discount line", discount_doc({"amount": "-113.00", "taxAmount": "-13.00"})),
    ("discount without tax", discount_doc({"amount": "-113.00"})),
    ("buyer fields", bill(buyerName="某某公司", buyerTaxpayerId="91440300358768292H", buyerRecipientMail="a@b.cn")),
]


def _types(model) -> dict:
    return {name: type(getattr(model, name)) for name in type(model).model_fields}


@pytest.mark.parametrize("doc", [d for _, d in ACCEPTED], ids=[n for n, _ in ACCEPTED])
def test_constructed_order_equals_validated(doc):
    order = check_bill(Bill.model_validate(doc), CTX)
    assert isinstance(order, Order), order
    validated = Order.model_validate(order.model_dump())
    assert order == validated
    assert order.model_dump_json() == validated.model_dump_json()
    assert order.model_fields_set == validated.model_fields_set
    assert _types(order) == _types(validated)
    for line, checked in zip(order.lines, validated.lines, strict=True):
        assert _types(line) == _types(checked)
        assert line.model_fields_set == checked.model_fields_set
