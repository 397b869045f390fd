"""Month-end report (`fapiao report --month`, the admin page's CSV/JSON) against a real database: per seller and
kind, blue and red counts and sums, tax per rate net of red, quota used and left; other months stay out."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from decimal import Decimal as D

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from fapiao.adapters.db import InvoiceRow, OrgRow
from fapiao.adapters.issuer import SandboxIssuer
from fapiao.cli import main
from fapiao.domain.reversal import LineRequest
from fapiao.services.issue import handle_submission
from fapiao.services.report import BadMonth, as_csv, as_json, month_report, month_bounds
from fapiao.services.reversal import ReversalAsk, issue_red, request_reversal
from tests.support.services import _accepted_and_submission

SELLER = "91440300MA5G9GK78Y"


def _issue(sessions, bill_no):
    _, ev = _accepted_and_submission(sessions, bill_no=bill_no)
    [out] = handle_submission(sessions, SandboxIssuer(sessions), ev)
    return out.event.invoice


def _month_data(sessions):
    a, b = _issue(sessions, "REP-1"), _issue(sessions, "REP-2")
    res = request_reversal(
        sessions,
        ReversalAsk(SELLER, a.number, "销售折让", "rep-r1", lines=[LineRequest(1, amount=D("113.00"))], confirmed=True),
    )
    issue_red(sessions, SandboxIssuer(sessions), res.outcomes[-1].event)
    _issue(sessions, "REP-OLD")
    with sessions() as s:  # one invoice of another month stays out
        s.execute(
            update(InvoiceRow)
            .where(InvoiceRow.invoice["bill_no"].as_string() == "REP-OLD")
            .values(issued_at=datetime(2020, 1, 5, tzinfo=timezone.utc))
        )
        s.execute(update(OrgRow).values(monthly_limit=D("10000.00")))
        s.commit()
    return a, b


def test_month_report_sums_blue_red_tax_and_quota(sessions):
    a, _ = _month_data(sessions)
    month = a.issued_at.strftime("%Y-%m")
    r = month_report(sessions, month)
    [row] = r.rows
    assert (row.seller_tax_id, row.kind) == (SELLER, "10xdp")
    assert (row.blue.count, row.blue.with_tax, row.blue.tax) == (2, D("2460.00"), D("271.32"))
    assert (row.red.count, row.red.with_tax, row.red.amount, row.red.tax) == (
        1,
        D("-113.00"),
        D("-100.00"),
        D("-13.00"),
    )
    assert row.net_with_tax == D("2347.00")
    assert row.tax_by_rate == {"0.13": D("247.00"), "0.06": D("11.32")}
    [q] = r.quotas
    assert (q.limit, q.used, q.left) == (D("10000.00"), D("2347.00"), D("7653.00"))
    doc = as_json(r)
    assert doc["rows"][0]["red"] == {"count": 1, "amount": "-100.00", "tax": "-13.00", "with_tax": "-113.00"}
    rows = list(csv.DictReader(io.StringIO(as_csv(r))))
    assert (
        rows[0]["net_with_tax"] == "2347.00" and rows[0]["tax_13%"] == "247.00" and rows[0]["quota_left"] == "7653.00"
    )
    assert month_report(sessions, "2020-01").rows[0].blue.count == 1
    assert month_report(sessions, month, seller="91440300358768292H").rows == []


@pytest.mark.parametrize("bad", ["2026-13", "2026-1", "11/2026", "", "2026-00"])
def test_bad_month_names_the_rule(bad):
    with pytest.raises(BadMonth) as exc:
        month_bounds(bad)
    assert "YYYY-MM" in str(exc.value)


def test_december_ends_at_new_year():
    assert month_bounds("2026-12") == (
        datetime(2026, 12, 1, tzinfo=timezone.utc),
        datetime(2027, 1, 1, tzinfo=timezone.utc),
    )


def test_cli_report(sessions, db_url, monkeypatch, tmp_path):
    a, _ = _month_data(sessions)
    month = a.issued_at.strftime("%Y-%m")
    monkeypatch.setenv("FAPIAO_DATABASE_URL", db_url)
    monkeypatch.setenv("FAPIAO_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    out = runner.invoke(main, ["report", "--month", month, "--format", "json"])
    assert out.exit_code == 0 and json.loads(out.output)["rows"][0]["net_with_tax"] == "2347.00"
    out = runner.invoke(main, ["report", "--month", month, "--format", "csv"])
    assert out.output.startswith("month,seller_tax_id,kind,") and f"{month},{SELLER},10xdp" in out.output
    out = runner.invoke(main, ["report", "--month", month])
    assert out.exit_code == 0 and "net ¥2347.00" in out.output and "left 7653.00" in out.output
    out = runner.invoke(main, ["report", "--month", "2026-13"])
    assert out.exit_code == 2 and "YYYY-MM" in out.output
    with sessions() as s:
        assert s.scalar(select(OrgRow.monthly_limit)) == D("10000.00")
