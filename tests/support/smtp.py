"""Real SMTP servers (aiosmtpd) for the tests: one that counts what it receives, one that can be stopped and restarted."""

from __future__ import annotations

import collections

from fapiao.adapters.kafka import free_port


class CountingSmtp:
    """A real SMTP server (aiosmtpd) on a free port that keeps what it receives."""

    def __init__(self, refuse: tuple[str, ...] = ()):
        self.messages: list = []
        self.refuse = refuse

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        from email import message_from_bytes, policy

        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted"


REFUSED = "nobody@refused.example"


class RestartableSmtp(CountingSmtp):
    """A real SMTP server that can be stopped and started again on the same port."""

    def __init__(self):
        super().__init__(refuse=(REFUSED,))
        self.port = free_port()
        self.controller = None

    def start(self):
        from aiosmtpd.controller import Controller

        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        self.controller.stop()
        self.controller = None

    def ids(self):
        return collections.Counter(m["Message-ID"] for m in self.messages)
