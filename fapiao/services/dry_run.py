"""``fapiao push --dry-run``: the intake rules run locally on a file, every violation printed, nothing published.

Merchant rules (business system, configured kinds, the org's tax ID) use the configured database when it holds
merchant data; without it those rules are skipped and the output says so.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import inspect
from sqlalchemy.orm import sessionmaker

from fapiao.domain.merchant import PushContext
from fapiao.domain.order_rules import check_bill
from fapiao.services.merchants import push_context
from schemas.bill_push import NotAnOrder, parse_push


def check_messages(
    sessions: sessionmaker, messages: list[bytes], line_tax_tolerance: Decimal
) -> tuple[list[str], list[str]]:
    """(notes, violations), one line each. Reads merchant settings through ``sessions``; writes nothing."""
    engine = sessions.kw["bind"]
    has_merchants = "orgs" in inspect(engine).get_table_names()
    out: list[str] = []
    notes = (
        []
        if has_merchants
        else [
            f"note: no merchant data in {engine.url.render_as_string(hide_password=True)}; "
            "business system and invoice-kind rules skipped"
        ]
    )
    for m, raw in enumerate(messages):
        try:
            push = parse_push(raw)
        except NotAnOrder as exc:
            out.append(f"message {m}: {exc}")
            continue
        for b, bill in enumerate(push.data):
            if has_merchants:
                with sessions() as s:
                    ctx = push_context(
                        s,
                        system_code=bill.businessSystemCode or push.businessSystemCode,
                        seller_tax_id=bill.sellerTaxpayerId,
                        qr_key=bill.qrKey,
                        line_tax_tolerance=line_tax_tolerance,
                    )
            else:
                ctx = PushContext(system=None, setting=None)
            result = check_bill(bill, ctx, push.businessSystemCode)
            if isinstance(result, list):
                for v in result:
                    if not has_merchants and v.code in ("00601", "00602", "00617"):
                        continue
                    out.append(f"message {m} bill {b} ({bill.billNo}): {v.code} {v.field}: {v.message}")
    return notes, out
