"""Use case: the month-end report (`fapiao report --month 2026-11`, the admin page and its CSV/JSON download).

Per seller and kind: counts and sums of blue and red invoices issued in the month, the net, tax per rate (net of
red), and per seller the 授信额度: the monthly limit, what the month used (blue minus red, as the issuing quota
check counts it) and what is left. Months are UTC calendar months, like the quota check.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from fapiao.adapters.db import InvoiceRow, OrgRow
from fapiao.domain.order_rules import KIND_NAMES

ZERO = Decimal("0.00")


class BadMonth(ValueError):
    """The month is not ``YYYY-MM``."""


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) in UTC; raises BadMonth naming the rule."""
    m = re.fullmatch(r"(\d{4})-(\d{2})", (month or "").strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise BadMonth(f"month：应为 YYYY-MM（例如 2026-11），收到“{month}”")
    year, mon = int(m.group(1)), int(m.group(2))
    start = datetime(year, mon, 1, tzinfo=timezone.utc)
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=timezone.utc)
    return start, end


@dataclass
class Sums:
    count: int = 0
    amount: Decimal = ZERO
    tax: Decimal = ZERO
    with_tax: Decimal = ZERO

    def add(self, inv: dict) -> None:
        self.count += 1
        self.amount += Decimal(inv["total_amount"])
        self.tax += Decimal(inv["total_tax"])
        self.with_tax += Decimal(inv["total_with_tax"])


@dataclass
class ReportRow:
    seller_tax_id: str
    kind: str
    blue: Sums = field(default_factory=Sums)
    red: Sums = field(default_factory=Sums)
    tax_by_rate: dict[str, Decimal] = field(default_factory=dict)

    @property
    def net_with_tax(self) -> Decimal:
        return self.blue.with_tax + self.red.with_tax

    @property
    def kind_name(self) -> str:
        return KIND_NAMES.get(self.kind, self.kind)


@dataclass
class Quota:
    seller_tax_id: str
    limit: Decimal | None
    used: Decimal

    @property
    def left(self) -> Decimal | None:
        return None if self.limit is None else self.limit - self.used


@dataclass
class MonthReport:
    month: str
    rows: list[ReportRow]
    quotas: list[Quota]

    @property
    def rates(self) -> list[str]:
        return sorted({r for row in self.rows for r in row.tax_by_rate}, key=Decimal, reverse=True)


def _rate(text: str) -> str:
    return format(Decimal(text).normalize(), "f")


def month_report(sessions: sessionmaker, month: str, seller: str | None = None) -> MonthReport:
    """The report of ``month`` (``YYYY-MM``), of every seller or one. Reads only; raises BadMonth."""
    start, end = month_bounds(month)
    rows: dict[tuple[str, str], ReportRow] = {}
    with sessions() as s:
        q = select(InvoiceRow.seller_tax_id, InvoiceRow.red_of, InvoiceRow.invoice).where(
            InvoiceRow.status == "issued", InvoiceRow.issued_at >= start, InvoiceRow.issued_at < end
        )
        if seller:
            q = q.where(InvoiceRow.seller_tax_id == seller)
        for seller_tax_id, red_of, inv in s.execute(q.order_by(InvoiceRow.id)):
            row = rows.setdefault((seller_tax_id, inv["kind"]), ReportRow(seller_tax_id, inv["kind"]))
            (row.red if red_of else row.blue).add(inv)
            for line in inv["lines"]:
                rate = _rate(line["tax_rate"])
                row.tax_by_rate[rate] = row.tax_by_rate.get(rate, ZERO) + Decimal(line["tax_amount"])
        sellers = sorted({k[0] for k in rows} | ({seller} if seller else set()))
        limits: dict[str, Decimal | None] = {}
        for tax_id, limit in s.execute(select(OrgRow.tax_id, OrgRow.monthly_limit).where(OrgRow.tax_id.in_(sellers))):
            limits[tax_id] = limit if limits.get(tax_id) is None else limits[tax_id]
    used = {x: sum((r.net_with_tax for k, r in rows.items() if k[0] == x), ZERO) for x in sellers}
    quotas = [Quota(x, limits.get(x), used[x]) for x in sellers]
    return MonthReport(month, [rows[k] for k in sorted(rows)], quotas)


def as_json(report: MonthReport) -> dict:
    def sums(x: Sums) -> dict:
        return {"count": x.count, "amount": str(x.amount), "tax": str(x.tax), "with_tax": str(x.with_tax)}

    return {
        "month": report.month,
        "rows": [
            {
                "seller_tax_id": r.seller_tax_id,
                "kind": r.kind,
                "kind_name": r.kind_name,
                "blue": sums(r.blue),
                "red": sums(r.red),
                "net_with_tax": str(r.net_with_tax),
                "tax_by_rate": {k: str(v) for k, v in sorted(r.tax_by_rate.items())},
            }
            for r in report.rows
        ],
        "quotas": [
            {
                "seller_tax_id": q.seller_tax_id,
                "limit": None if q.limit is None else str(q.limit),
                "used": str(q.used),
                "left": None if q.left is None else str(q.left),
            }
            for q in report.quotas
        ],
    }


def as_csv(report: MonthReport) -> str:
    """One row per seller and kind; tax per rate in one column each (``tax_13%`` …); the seller's quota repeated."""
    rates = report.rates
    quotas = {q.seller_tax_id: q for q in report.quotas}
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(
        [
            "month",
            "seller_tax_id",
            "kind",
            "kind_name",
            "blue_count",
            "blue_amount",
            "blue_tax",
            "blue_with_tax",
            "red_count",
            "red_amount",
            "red_tax",
            "red_with_tax",
            "net_with_tax",
            *[f"tax_{format((Decimal(r) * 100).normalize(), 'f')}%" for r in rates],
            "quota_limit",
            "quota_used",
            "quota_left",
        ]
    )
    for r in report.rows:
        q = quotas[r.seller_tax_id]
        w.writerow(
            [
                report.month,
                r.seller_tax_id,
                r.kind,
                r.kind_name,
                r.blue.count,
                r.blue.amount,
                r.blue.tax,
                r.blue.with_tax,
                r.red.count,
                r.red.amount,
                r.red.tax,
                r.red.with_tax,
                r.net_with_tax,
                *[r.tax_by_rate.get(rate, ZERO) for rate in rates],
                "" if q.limit is None else q.limit,
                q.used,
                "" if q.left is None else q.left,
            ]
        )
    return out.getvalue()
