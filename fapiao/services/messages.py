"""The words of invoice e-mail and SMS, in Chinese, which a merchant can override per seller tax ID by dropping
files in FAPIAO_TEMPLATES_DIR/<seller tax id>/: email_subject.txt, email_body.txt, sms.txt. Templates are Jinja2
rendered in a sandbox (a merchant's file cannot reach Python objects); they see the invoice, `seller_name`,
`number`, `amount`, `amount_upper`, `buyer_title`, `date` and `link` (the signed download link)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import Template
from jinja2.sandbox import SandboxedEnvironment

from schemas.events import Invoice

DEFAULTS = {
    "email_subject": "您的电子发票（{{ seller_name }}，发票号码 {{ number }}）",
    "email_body": (
        "{{ buyer_title }}，您好：\n\n"
        "{{ seller_name }} 已为您开具电子发票。\n"
        "发票号码：{{ number }}\n开票日期：{{ date }}\n"
        "价税合计：¥{{ amount }}（{{ amount_upper }}）\n\n"
        "发票 PDF 见附件，也可在 {{ link }} 下载。\n此邮件由系统自动发送，请勿回复。\n"
    ),
    "sms": "【{{ seller_name }}】您的电子发票已开具，号码{{ number }}，价税合计¥{{ amount }}，下载：{{ link }}",
}

_env = SandboxedEnvironment(autoescape=False, keep_trailing_newline=True)


@lru_cache(maxsize=256)
def _compiled(source: str) -> Template:
    """A template compiled once per distinct source (compiling is most of a message's cost); a merchant's edited
    file is a new source, so it takes effect at once."""
    return _env.from_string(source)


class MessageTemplates:
    def __init__(self, directory: Path | None):
        self.directory = Path(directory) if directory else None

    def source(self, name: str, seller_tax_id: str) -> str:
        if self.directory:
            override = self.directory / seller_tax_id / f"{name}.txt"
            if override.is_file():
                return override.read_text(encoding="utf-8")
        return DEFAULTS[name]

    def render(self, name: str, invoice: Invoice, link: str) -> str:
        context = {
            "invoice": invoice,
            "seller_name": invoice.seller_name,
            "number": invoice.number,
            "amount": f"{invoice.total_with_tax:.2f}",
            "amount_upper": invoice.total_with_tax_upper,
            "buyer_title": invoice.buyer.title,
            "date": f"{invoice.issued_at:%Y-%m-%d}",
            "link": link,
        }
        return _compiled(self.source(name, invoice.seller_tax_id)).render(context)
