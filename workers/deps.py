"""Adapters the workers share, built once per process from settings."""

from __future__ import annotations

from functools import cached_property

from fapiao.adapters.db import make_engine, make_session_factory
from fapiao.adapters.documents import DocumentStore
from fapiao.adapters.issuer import HttpIssuer, SandboxIssuer
from fapiao.adapters.mail import HttpSmsGateway, SmtpMailer
from fapiao.config import Settings
from fapiao.services.deliver import DeliveryConfig
from fapiao.services.ingest import LinkMinter
from fapiao.services.messages import MessageTemplates


class Deps:
    def __init__(self, settings: Settings):
        self.settings = settings

    @cached_property
    def sessions(self):
        return make_session_factory(make_engine(self.settings.db_url))

    @cached_property
    def minter(self) -> LinkMinter:
        return LinkMinter(self.settings.link_secret.get_secret_value().encode(), self.settings.base_url)

    @cached_property
    def issuer(self) -> SandboxIssuer | HttpIssuer:
        s = self.settings
        if s.issuer == "http":
            return HttpIssuer(s.issuer_url, s.issuer_token.get_secret_value() if s.issuer_token else None,
                              s.issuer_timeout)
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
        return DeliveryConfig(sender=s.mail_from, link_secret=s.link_secret.get_secret_value().encode(),
                              base_url=s.base_url, link_days=s.download_link_days,
                              templates=MessageTemplates(s.templates_dir), retry=s.delivery_retry)
