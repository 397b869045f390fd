"""Issue #15 point 4: taxpayer IDs as GB 32100 and GB 11643 define them, on the H5 form and in a push."""

import random

import pytest

from fapiao.domain.buyer import check_buyer
from fapiao.domain.taxid import buyer_id_problem, id_card_check_char, tax_id_problem, uscc_check_char
from schemas.events import Buyer, InvoiceKind


def random_id_card(rng: random.Random) -> str:
    first17 = (
        f"{rng.choice(['110101', '440305', '310104', '510107'])}{rng.randint(1950, 2005)}"
        f"{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    )
    return first17 + id_card_check_char(first17)


def uscc(first17: str) -> str:
    return first17 + uscc_check_char(first17)


def test_person_with_a_resident_id_card_is_checked_not_refused():
    rng = random.Random(15)
    refused = [
        n
        for n in (random_id_card(rng) for _ in range(500))
        if isinstance(
            check_buyer(
                {"buyer_type": "individual", "title": "张三", "tax_id": n, "email": "a@b.cn"},
                InvoiceKind.digital_normal,
            ),
            dict,
        )
    ]
    assert refused == []


def test_person_with_a_bad_id_card_check_digit_is_told_so():
    bad = "11010519491231002" + ("1" if id_card_check_char("11010519491231002") != "1" else "2")
    errors = check_buyer(
        {"buyer_type": "individual", "title": "张三", "tax_id": bad, "email": "a@b.cn"}, InvoiceKind.digital_normal
    )
    assert "身份证" in errors["tax_id"]


def test_enterprise_cannot_give_an_id_card():
    errors = check_buyer(
        {"buyer_type": "enterprise", "title": "某公司", "tax_id": "11010519491231002X", "email": "a@b.cn"},
        InvoiceKind.digital_normal,
    )
    assert "tax_id" in errors


@pytest.mark.parametrize("position", range(2, 8))
def test_uscc_region_code_is_digits(position):
    first17 = list("91440300MA5G9GK78")
    first17[position] = "A"
    assert tax_id_problem(uscc("".join(first17)))


@pytest.mark.parametrize("authority", ["1", "5", "9", "A", "N", "Y"])
def test_uscc_registration_authority_letters_still_accepted(authority):
    assert tax_id_problem(uscc(authority + "1440300MA5G9GK78")) is None


def test_buyer_id_problem_shapes():
    assert buyer_id_problem("91440300358768292H", person=False) is None
    assert buyer_id_problem("11010519491231002X", person=True) is None
    assert buyer_id_problem("91440300358768292H", person=True) is None  # an individual business's USCC
    assert buyer_id_problem("11010519491231002X", person=False)
    assert isinstance(
        check_buyer(
            {"buyer_type": "individual", "title": "李四", "tax_id": "11010519491231002x", "email": "a@b.cn"},
            InvoiceKind.digital_normal,
        ),
        Buyer,
    )
