"""The one composition root: what a process builds once from its settings (database sessions, the link minter, the
issuer, the document store, the mailer and SMS gateway, the delivery configuration, the order-query client).

Workers (``workers/app.py``), the gateway (``create_gateway``) and the CLI (``AppContext``) all take their adapters
from a ``Bootstrap``; each part is built lazily on first use, so a process pays only for what it touches, and tests
may hand in a ``Bootstrap`` of their own. It sits above services and below the entrypoints."""

from __future__ import annotations

from functools import cached_property, partial
from typing import Callable

from sqlalchemy.orm import sessionmaker

from fapiao.adapters.db import make_engine, make_session_factory
from fapiao.adapters.documents import DocumentStore
from fapiao.adapters.issuer import HttpIssuer, SandboxIssuer
from fapiao.adapters.mail import HttpSmsGateway, SmtpMailer
from fapiao.adapters.order_query import query_order
from fapiao.config import Settings
from fapiao.services.deliver import DeliveryConfig
from fapiao.services.ingest import LinkMinter
from fapiao.services.messages import MessageTemplates


class Bootstrap:
    """Per-process singletons built from ``settings`` on first use; ``close()`` disposes the database engine."""

    def __init__(self, settings: Settings):
        self.settings = settings

    @cached_property
    def sessions(self) -> sessionmaker:
        return make_session_factory(make_engine(self.settings.db_url))

    @cached_property
    def minter(self) -> LinkMinter:
        return LinkMinter(self.settings.link_secret.get_secret_value().encode(), self.settings.base_url)

    @cached_property
    def order_query(self) -> Callable[[str, str, str], dict]:
        """``(query_url, secret, bill_no) -> answer``: asks a merchant's order-query interface, with the timeout set."""
        return partial(query_order, timeout=self.settings.order_query_timeout)

    @cached_property
    def issuer(self) -> SandboxIssuer | HttpIssuer:
        s = self.settings
        if s.issuer == "http":
            assert s.issuer_url, "Settings refuses FAPIAO_ISSUER=http without FAPIAO_ISSUER_URL"
            return HttpIssuer(
                s.issuer_url, s.issuer_token.get_secret_value() if s.issuer_token else None, s.issuer_timeout
            )
        return SandboxIssuer(self.sessions)

    @cached_property
    def documents(self) -> DocumentStore:
        return DocumentStore(self.settings.documents_dir)

    @cached_property
    def mailer(self) -> SmtpMailer:
        return SmtpMailer(self.settings)

    @cached_property
    def sms(self) -> HttpSmsGateway | None:
        s = self.settings
        return HttpSmsGateway(s.sms_gateway_url, s.sms_timeout) if s.sms_gateway_url else None

    @cached_property
    def delivery_config(self) -> DeliveryConfig:
        s = self.settings
        return DeliveryConfig(
            sender=s.mail_from,
            link_secret=s.link_secret.get_secret_value().encode(),
            base_url=s.base_url,
            link_days=s.download_link_days,
            templates=MessageTemplates(s.templates_dir),
            retry=s.delivery_retry,
        )

    def close(self) -> None:
        """Dispose the database engine if one was built (its pooled connections close); safe to call twice."""
        sessions = self.__dict__.get("sessions")
        if sessions is not None and sessions.kw.get("bind") is not None:
            sessions.kw["bind"].dispose()
