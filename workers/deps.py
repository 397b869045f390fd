"""Adapters the workers share, built once per process from settings."""

from __future__ import annotations

from functools import cached_property

from fapiao.adapters.db import make_engine, make_session_factory
from fapiao.adapters.documents import DocumentStore
from fapiao.adapters.issuer import SandboxIssuer
from fapiao.adapters.mail import SmtpMailer
from fapiao.config import Settings
from fapiao.services.ingest import LinkMinter


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
    def issuer(self) -> SandboxIssuer:
        return SandboxIssuer(self.sessions)

    @cached_property
    def documents(self) -> DocumentStore:
        return DocumentStore(self.settings.documents_dir)

    @cached_property
    def mailer(self) -> SmtpMailer:
        return SmtpMailer(self.settings)
