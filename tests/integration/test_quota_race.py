"""The monthly quota (授信额度) is checked serialised per seller: two issuers racing on two orders of one seller,
whose limit leaves room for one of them, issue exactly one (issue #12, item 8). Runs on SQLite, and on PostgreSQL
when FAPIAO_TEST_DATABASE_URL is set, where the race showed: both read the month's total before either wrote."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from sqlalchemy import func, select

from fapiao.adapters.db import InvoiceRow, OrgRow
from fapiao.adapters.issuer import SandboxIssuer
from fapiao.services.issue import handle_submission
from tests.support.services import _accepted_and_submission


class SlowIssuer(SandboxIssuer):
    """The sandbox, slow to answer (as a real platform is): widens the window between check and write."""

    def issue(self, idempotency_key, draft):
        time.sleep(0.3)
        return super().issue(idempotency_key, draft)

    def issue_within(self, s, items):
        time.sleep(0.3)
        return super().issue_within(s, items)


def test_two_issuers_cannot_both_pass_the_monthly_limit(sessions):
    events = [_accepted_and_submission(sessions, f"QUOTA-{i}")[1] for i in range(2)]
    with sessions() as s:
        s.scalar(select(OrgRow)).monthly_limit = Decimal("2000.00")  # room for one invoice of 1230.00
        s.commit()
    barrier = threading.Barrier(2)

    def issue(ev):
        barrier.wait()
        return handle_submission(sessions, SlowIssuer(sessions), ev)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(issue, events))
    stages = sorted(o.stage for r in results for o in r)
    assert stages == ["invoices.failed", "invoices.issued"], stages
    failed = next(o.event for r in results for o in r if o.stage == "invoices.failed")
    assert failed.code == "LIMIT_EXCEEDED"
    with sessions() as s:
        issued = s.scalar(select(func.sum(InvoiceRow.total_with_tax)).where(InvoiceRow.status == "issued"))
    assert issued <= Decimal("2000.00")
